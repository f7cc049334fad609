//! What every signed-in page shares: its frame's context and the stylesheet.
use minijinja::{context, Value};
use poem::{handler, http::header, IntoResponse, Response};

pub(crate) use crate::templates::render;
use crate::{accounts::SignedIn, replica::Freshness};

const STYLESHEET: &str = include_str!("../../templates/dashboard/dashboard.css");

/// What the frame of every signed-in page shows (user, role, mode, CSRF token, active
/// navigation entry), merged with the page's own `ctx`.
pub(crate) fn frame(s: &SignedIn, nav: &str, ctx: Value) -> Value {
    context! {
        email => &s.user.email,
        role => s.user.role.as_str(),
        mode => s.mode.as_str(),
        csrf => &s.csrf,
        nav => nav,
        ..ctx
    }
}

/// A replica this far behind, or less, counts as current: no banner.
const CURRENT_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// The freshness banner of a page read from `freshness`: nothing when the data is current
/// (the primary, or a replica less than [`CURRENT_WITHIN`] behind), else how old it may be.
pub(crate) fn freshness_banner(freshness: &Freshness) -> Option<String> {
    match freshness {
        Freshness::Primary => None,
        Freshness::Replica { lag: Some(lag) } if *lag < CURRENT_WITHIN => None,
        Freshness::Replica { lag: Some(lag) } => {
            Some(format!("Data as of {} ago (read replica).", ago(*lag)))
        }
        Freshness::Replica { lag: None } => {
            Some("Data from the read replica, which cannot tell yet how far behind it is.".into())
        }
    }
}

/// `12 s`, `3 min 5 s`, `2 h 10 min`: whole units, rounded down.
fn ago(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// [`frame`] of a page that reports, with its freshness banner.
pub(crate) fn report_frame(s: &SignedIn, nav: &str, freshness: &Freshness, ctx: Value) -> Value {
    frame(
        s,
        nav,
        context! { freshness => freshness_banner(freshness), ..ctx },
    )
}

#[handler]
pub(crate) async fn stylesheet() -> Response {
    STYLESHEET
        .with_content_type("text/css; charset=utf-8")
        .with_header(header::CACHE_CONTROL, "public, max-age=300")
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_banner_shows_only_when_a_replica_is_behind() {
        assert_eq!(freshness_banner(&Freshness::Primary), None);
        let behind = |ms| Freshness::Replica {
            lag: Some(Duration::from_millis(ms)),
        };
        assert_eq!(freshness_banner(&behind(0)), None);
        assert_eq!(freshness_banner(&behind(999)), None);
        assert_eq!(
            freshness_banner(&behind(12_400)).as_deref(),
            Some("Data as of 12 s ago (read replica).")
        );
        assert_eq!(
            freshness_banner(&behind(185_000)).as_deref(),
            Some("Data as of 3 min 5 s ago (read replica).")
        );
        assert_eq!(
            freshness_banner(&behind(7_800_000)).as_deref(),
            Some("Data as of 2 h 10 min ago (read replica).")
        );
        assert!(freshness_banner(&Freshness::Replica { lag: None })
            .is_some_and(|b| b.contains("read replica")));
    }
}
