//! The activity log page: who did what and when, filterable by action, exportable as CSV.
use minijinja::context;
use poem::{
    handler,
    http::{header, StatusCode},
    web::{cookie::CookieJar, Data, Query},
    IntoResponse, Response,
};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};

use super::{frame, reads, report, signed_in, with_freshness, PageError};
use crate::{
    accounts::SignedIn, activity::Action as Activity, state::AppState, store, timestamps::rfc3339,
};

const PAGE: u64 = 100;
/// Most entries one export holds (the log of a busy year fits many times over).
const EXPORT_MAX: u64 = 50_000;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActivityQuery {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

#[derive(Serialize)]
struct Row {
    id: i64,
    at: String,
    who: String,
    action: String,
    target: String,
    detail: String,
}

async fn rows(
    db: &DatabaseConnection,
    s: &SignedIn,
    q: &ActivityQuery,
    limit: u64,
) -> Result<(Vec<Row>, Option<&'static str>), PageError> {
    let action = q
        .action
        .as_deref()
        .filter(|a| !a.is_empty())
        .and_then(Activity::parse);
    let entries = store::activity::list(
        db,
        &s.user.merchant_id,
        s.mode.as_str(),
        action.map(Activity::as_str),
        q.before,
        limit,
    )
    .await?;
    let users = store::accounts::users_of(db, &s.user.merchant_id).await?;
    let rows = entries
        .into_iter()
        .map(|e| Row {
            id: e.id,
            at: rfc3339(e.created_at),
            who: users
                .iter()
                .find(|u| u.id == e.actor)
                .map(|u| u.email.clone())
                .unwrap_or_else(|| format!("API key {}", e.actor)),
            action: e.action,
            target: e.target.unwrap_or_default(),
            detail: e.detail.unwrap_or_default(),
        })
        .collect();
    Ok((rows, action.map(Activity::as_str)))
}

#[handler]
pub(crate) async fn page(
    state: Data<&AppState>,
    jar: &CookieJar,
    Query(q): Query<ActivityQuery>,
) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    let read = reads(&state, jar).await;
    let (rows, action) = rows(&read.db, &s, &q, PAGE + 1).await?;
    let more = rows.len() as u64 > PAGE;
    let rows: Vec<Row> = rows.into_iter().take(PAGE as usize).collect();
    let next = more.then(|| {
        let before = rows.last().map(|r| r.id).unwrap_or_default();
        match action {
            Some(a) => format!("?action={a}&before={before}"),
            None => format!("?before={before}"),
        }
    });
    let actions: Vec<&str> = Activity::ALL.iter().map(|a| a.as_str()).collect();
    let body = frame::render(
        "dashboard/activity.html",
        frame::report_frame(
            &s,
            "activity",
            &read.freshness,
            context! { rows, next, actions, action, export => action.map(|a| format!("?action={a}")).unwrap_or_default() },
        ),
    )?;
    Ok(report(StatusCode::OK, body, &read.freshness))
}

#[handler]
pub(crate) async fn export(
    state: Data<&AppState>,
    jar: &CookieJar,
    Query(q): Query<ActivityQuery>,
) -> Result<Response, PageError> {
    let s = signed_in(&state, jar).await?;
    let read = reads(&state, jar).await;
    let (rows, _) = rows(&read.db, &s, &q, EXPORT_MAX).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in &rows {
        w.serialize(r).map_err(anyhow::Error::from)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(with_freshness(
        bytes
            .with_content_type("text/csv; charset=utf-8")
            .with_header(
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"activity.csv\"",
            )
            .with_header(header::CACHE_CONTROL, "no-store")
            .into_response(),
        &read.freshness,
    ))
}
