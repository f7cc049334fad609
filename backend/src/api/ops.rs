//! Liveness and readiness probes for load balancers and orchestrators.
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Json},
    IntoResponse, Response,
};
use serde_json::json;

use crate::{coordination::Coordinator, state::AppState, store};

/// 200 while the process runs.
#[handler]
pub async fn healthz() -> &'static str {
    "ok"
}

/// 200 when the database answers, 503 otherwise. Redis only degrades the answer
/// (`"coordination": {"status": "degraded"}`): every use of it fails open, and one Redis
/// outage must not pull every instance out of the load balancer.
#[handler]
pub async fn readyz(state: Data<&AppState>) -> Response {
    let (db, redis, pending) = tokio::join!(
        store::ping(&state.db),
        state.coord.ping(),
        store::emails::pending_count(&state.db)
    );
    let (db, redis) = (db.is_ok(), redis.is_ok());
    let redis_kind = match state.coord.as_ref() {
        Coordinator::Redis(_) => "redis",
        Coordinator::Memory(_) => "in-process",
    };
    let body = json!({
        "status": if db { "ready" } else { "not_ready" },
        "database": if db { "ok" } else { "unavailable" },
        "coordination": { "kind": redis_kind, "status": if redis { "ok" } else { "degraded" } },
        // Never a reason to be unready: queued emails wait for a worker with SMTP_URL.
        "emails": { "smtp": state.email_sending.as_str(), "pending": pending.ok() },
    });
    let status = if db {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(body).with_status(status).into_response()
}

/// Adds `/healthz` and `/readyz` to the OpenAPI document. They live at the root (`root`:
/// `/`, or PUBLIC_URL's), not under `/api`, so each carries its own `servers` entry.
pub fn document(doc: &mut serde_json::Value, root: &str) {
    let probe = |summary: &str, description: &str, responses: serde_json::Value| {
        json!({
            "servers": [{"url": root}],
            "get": {
                "tags": ["Operations"],
                "summary": summary,
                "description": description,
                "operationId": summary.to_lowercase().replace(' ', "_"),
                "responses": responses,
            }
        })
    };
    let readiness = json!({
        "type": "object",
        "required": ["status", "database", "coordination"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not_ready"]},
            "database": {"type": "string", "enum": ["ok", "unavailable"]},
            "coordination": {
                "type": "object",
                "required": ["kind", "status"],
                "properties": {
                    "kind": {"type": "string", "enum": ["redis", "in-process"]},
                    "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]}
                }
            },
            "emails": {
                "type": "object",
                "description": "Notification emails: whether this process sends them (`configured`: its worker has SMTP_URL; `not_configured`: its worker has none, so they stay queued; `worker_off`: it runs no worker) and how many wait to be sent (null when it could not be counted).",
                "properties": {
                    "smtp": {"type": "string", "enum": ["configured", "not_configured", "worker_off"]},
                    "pending": {"type": "integer", "nullable": true, "minimum": 0}
                }
            }
        }
    });
    if let Some(tags) = doc.get_mut("tags").and_then(|t| t.as_array_mut()) {
        tags.push(json!({"name": "Operations", "description": "Probes for load balancers and orchestrators (no key)."}));
    }
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    paths.insert(
        "/healthz".into(),
        probe(
            "Liveness",
            "200 `ok` while the process runs. No authentication.",
            json!({"200": {"description": "The process is alive.", "content": {"text/plain": {"schema": {"type": "string", "example": "ok"}}}}}),
        ),
    );
    paths.insert(
        "/readyz".into(),
        probe(
            "Readiness",
            "200 when the database answers; 503 when it does not. Redis is never a reason to be unready: without it locks and limits fall back to the process (`coordination.status` says so). No authentication.",
            json!({
                "200": {"description": "Ready to serve.", "content": {"application/json": {"schema": readiness.clone()}}},
                "503": {"description": "The database does not answer.", "content": {"application/json": {"schema": readiness}}}
            }),
        ),
    );
}
