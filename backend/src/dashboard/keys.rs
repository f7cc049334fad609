//! API keys: the list (prefix and last 4 only), create, roll with overlap, revoke, through
//! the merchant API's own key functions. A new key is shown once, in the answer to the
//! form that made it (never in a URL).
use minijinja::context;
use poem::{
    handler,
    http::StatusCode,
    web::{cookie::CookieJar, Data, Form, Path},
    Response,
};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{frame, primary, reads, report, see_other, signed_in, signed_in_for, PageError};
use crate::{
    accounts::{Action, SignedIn},
    keys::{self, KeyError},
    replica::ReadDb,
    state::AppState,
    timestamps::rfc3339,
};

/// The overlaps offered when rolling a key, in seconds, with their labels.
const OVERLAPS: [(u64, &str); 4] = [
    (0, "none: the old key stops now"),
    (3600, "1 hour"),
    (86_400, "24 hours"),
    (604_800, "7 days"),
];

async fn page(
    state: &AppState,
    read: &ReadDb,
    s: &SignedIn,
    status: StatusCode,
    new_key: Option<(&str, String)>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let caller = s.as_caller(state).await?;
    let now = OffsetDateTime::now_utc();
    let rows = keys::list_in(&read.db, &caller)
        .await
        .map_err(|e| PageError::Internal(e.into()))?;
    let keys: Vec<_> = rows
        .iter()
        .map(|k| {
            let state = match (k.revoked_at, k.expires_at) {
                (Some(_), _) => "revoked".to_owned(),
                (None, Some(at)) if at <= now => "expired".to_owned(),
                (None, Some(at)) => format!("rolled: works until {}", rfc3339(at)),
                (None, None) => "active".to_owned(),
            };
            context! {
                id => &k.id,
                kind => &k.kind,
                shown => format!("{}…{}", k.prefix, k.last4),
                created_at => rfc3339(k.created_at),
                state,
                active => k.revoked_at.is_none() && k.expires_at.is_none(),
            }
        })
        .collect();
    let overlaps: Vec<_> = OVERLAPS
        .iter()
        .map(|(secs, label)| context! { secs, label, default => *secs == 86_400 })
        .collect();
    let body = frame::render(
        "dashboard/keys.html",
        frame::report_frame(
            s,
            "keys",
            &read.freshness,
            context! {
                keys,
                overlaps,
                error,
                new_key => new_key.map(|(label, key)| context! { label, key }),
                can_manage => s.can(Action::ManageKeys),
            },
        ),
    )?;
    Ok(report(status, body, &read.freshness))
}

fn refusal(s: SignedIn, e: KeyError) -> Result<(SignedIn, String), PageError> {
    match e {
        KeyError::NotFound => Err(PageError::NotFound(Box::new(s))),
        KeyError::Internal(e) => Err(PageError::Internal(e)),
        KeyError::Inactive => Ok((s, "That key is already revoked or rolled.".into())),
        KeyError::OverlapTooLong => Ok((s, "The overlap may be at most 7 days.".into())),
        KeyError::InvalidKind => Ok((s, "A key is publishable or secret.".into())),
    }
}

#[handler]
pub(crate) async fn list(state: Data<&AppState>, jar: &CookieJar) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    let read = reads(&state, jar).await;
    page(&state, &read, &s, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
}

#[handler]
pub(crate) async fn create(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::ManageKeys).await?;
    let caller = s.as_caller(&state).await?;
    let result = match keys::kind_from_request(&form.kind) {
        Ok(kind) => keys::create(&state, &caller, kind).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((row, key)) => {
            let label = format!("New {} key {}", row.kind, row.id);
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::OK,
                Some((&label, key.expose().to_owned())),
                None,
            )
            .await
        }
        Err(e) => {
            let (s, msg) = refusal(s, e)?;
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::BAD_REQUEST,
                None,
                Some(msg),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RollForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    overlap: u64,
}

#[handler]
pub(crate) async fn roll(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(id): Path<String>,
    Form(form): Form<RollForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::ManageKeys).await?;
    let caller = s.as_caller(&state).await?;
    let overlap = std::time::Duration::from_secs(form.overlap);
    match keys::roll(&state, &caller, &id, overlap).await {
        Ok((new, key, _old)) => {
            let label = format!("Key {id} rolled: its replacement {}", new.id);
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::OK,
                Some((&label, key.expose().to_owned())),
                None,
            )
            .await
        }
        Err(e) => {
            let (s, msg) = refusal(s, e)?;
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::CONFLICT,
                None,
                Some(msg),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub(crate) async fn revoke(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::ManageKeys).await?;
    let caller = s.as_caller(&state).await?;
    match keys::revoke(&state, &caller, &id).await {
        Ok(_) => Ok(see_other("/dashboard/keys")),
        Err(e) => {
            let (s, msg) = refusal(s, e)?;
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::CONFLICT,
                None,
                Some(msg),
            )
            .await
        }
    }
}
