//! Webhooks: the endpoint (URL, status), secret rotation with overlap, the delivery log
//! (status, HTTP code, duration, response excerpt) and redelivery, through the merchant
//! API's own webhook functions. A secret is shown once, in the answer to its form.
use minijinja::context;
use poem::{
    handler,
    http::StatusCode,
    web::{cookie::CookieJar, Data, Form, Path, Query},
    Response,
};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{frame, primary, reads, report, see_other, signed_in, signed_in_for, PageError};
use crate::{
    accounts::{Action, SignedIn},
    replica::ReadDb,
    state::AppState,
    store,
    timestamps::rfc3339,
    webhooks::{endpoints, events, WebhookError},
};

/// Events per page of the delivery log.
const PAGE: u64 = 25;

/// The overlaps offered when rotating the secret, in seconds, with their labels.
const OVERLAPS: [(u64, &str); 3] = [
    (0, "none: the old secret stops now"),
    (86_400, "24 hours"),
    (604_800, "7 days"),
];

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogQuery {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    redelivered: Option<String>,
}

async fn page(
    state: &AppState,
    read: &ReadDb,
    s: &SignedIn,
    status: StatusCode,
    q: &LogQuery,
    secret: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let caller = s.as_caller(state).await?;
    let now = OffsetDateTime::now_utc();
    let endpoint = match endpoints::get_endpoint_in(&read.db, &caller).await {
        Ok(v) => Some(context! {
            url => &v.row.url,
            status => v.row.status.as_str(),
            disabled_reason => &v.row.disabled_reason,
            previous_until => v.previous_secret_active(now)
                .then(|| v.row.previous_secret_expires_at.map(rfc3339)).flatten(),
        }),
        Err(WebhookError::EndpointNotFound) => None,
        Err(e) => return Err(PageError::Internal(e.into())),
    };
    let (views, more) = events::list_in(&read.db, &caller, None, q.after.as_deref(), PAGE)
        .await
        .map_err(|e| PageError::Internal(e.into()))?;
    // Every attempt of the page's events in one query, not one per event.
    let ids: Vec<String> = views.iter().map(|v| v.event.id.clone()).collect();
    let all_attempts = store::webhooks::attempts_of_events(&read.db, &ids).await?;
    let mut log = Vec::new();
    for v in &views {
        let attempts = all_attempts.iter().filter(|a| a.event_id == v.event.id);
        let last = v.deliveries.last();
        log.push(context! {
            id => &v.event.id,
            kind => v.event.kind.as_str(),
            created_at => rfc3339(v.event.created_at),
            status => last.map(|d| d.status.as_str()).unwrap_or("not sent (no endpoint)"),
            attempts => attempts.map(|a| context! {
                number => a.attempt_number,
                started_at => rfc3339(a.started_at),
                outcome => a.outcome.as_str(),
                status_code => a.status_code,
                duration_ms => a.duration_ms,
                excerpt => a.response_excerpt.as_deref().map(|x| x.chars().take(200).collect::<String>()),
            }).collect::<Vec<_>>(),
        });
    }
    let next = if more {
        views.last().map(|v| format!("?after={}", v.event.id))
    } else {
        None
    };
    let overlaps: Vec<_> = OVERLAPS
        .iter()
        .map(|(secs, label)| context! { secs, label, default => *secs == 86_400 })
        .collect();
    let notice = q
        .redelivered
        .as_deref()
        .filter(|id| views.iter().any(|v| v.event.id == *id))
        .map(|id| format!("Event {id} queued for delivery again."));
    let body = frame::render(
        "dashboard/webhooks.html",
        frame::report_frame(
            s,
            "webhooks",
            &read.freshness,
            context! {
                endpoint, log, next, overlaps, secret, error, notice,
                can_manage => s.can(Action::ManageWebhooks),
            },
        ),
    )?;
    Ok(report(status, body, &read.freshness))
}

fn refusal(s: SignedIn, e: WebhookError) -> Result<(SignedIn, String), PageError> {
    match e {
        WebhookError::EventNotFound => Err(PageError::NotFound(Box::new(s))),
        WebhookError::Internal(e) => Err(PageError::Internal(e)),
        WebhookError::InvalidUrl(d) => Ok((s, d.to_string())),
        WebhookError::OverlapTooLong => Ok((s, "The overlap may be at most 7 days.".into())),
        WebhookError::EndpointNotFound => Ok((s, "Set an endpoint URL first.".into())),
        WebhookError::EndpointDisabled | WebhookError::NoEnabledEndpoint => Ok((
            s,
            "The endpoint is disabled: set its URL again to enable it.".into(),
        )),
    }
}

#[handler]
pub(crate) async fn show(
    state: Data<&AppState>,
    jar: &CookieJar,
    Query(q): Query<LogQuery>,
) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    let read = reads(&state, jar).await;
    page(&state, &read, &s, StatusCode::OK, &q, None, None).await
}

#[derive(Deserialize)]
pub(crate) struct EndpointForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
}

#[handler]
pub(crate) async fn set_endpoint(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<EndpointForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::ManageWebhooks).await?;
    let caller = s.as_caller(&state).await?;
    let q = LogQuery::default();
    match endpoints::set_endpoint(&state, &caller, &form.url).await {
        Ok(v) => {
            let secret = v.secret.map(|x| x.expose().to_owned());
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::OK,
                &q,
                secret,
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
                &q,
                None,
                Some(msg),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RotateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    overlap: u64,
}

#[handler]
pub(crate) async fn rotate(
    state: Data<&AppState>,
    jar: &CookieJar,
    Form(form): Form<RotateForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::ManageWebhooks).await?;
    let caller = s.as_caller(&state).await?;
    let q = LogQuery::default();
    let overlap = std::time::Duration::from_secs(form.overlap);
    match endpoints::rotate_secret(&state, &caller, overlap).await {
        Ok(v) => {
            let secret = v.secret.map(|x| x.expose().to_owned());
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::OK,
                &q,
                secret,
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
                &q,
                None,
                Some(msg),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RedeliverForm {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub(crate) async fn redeliver(
    state: Data<&AppState>,
    jar: &CookieJar,
    Path(id): Path<String>,
    Form(form): Form<RedeliverForm>,
) -> Result<Response, PageError> {
    let s = signed_in_for(&state, jar, &form.csrf, Action::ManageWebhooks).await?;
    let caller = s.as_caller(&state).await?;
    match events::redeliver(&state, &caller, &id).await {
        Ok(_) => Ok(see_other(&format!("/dashboard/webhooks?redelivered={id}"))),
        Err(e) => {
            let (s, msg) = refusal(s, e)?;
            let q = LogQuery::default();
            page(
                &state,
                &primary(&state),
                &s,
                StatusCode::CONFLICT,
                &q,
                None,
                Some(msg),
            )
            .await
        }
    }
}
