//! Liveness and readiness probes for load balancers and orchestrators.
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Json},
    IntoResponse, Response,
};
use serde_json::json;

use crate::{cache::Coordinator, startup::AppState, store};

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
    let (db, redis) = tokio::join!(store::ping(&state.db), state.coord.ping());
    let (db, redis) = (db.is_ok(), redis.is_ok());
    let redis_kind = match state.coord.as_ref() {
        Coordinator::Redis(_) => "redis",
        Coordinator::Memory(_) => "in-process",
    };
    let body = json!({
        "status": if db { "ready" } else { "not_ready" },
        "database": if db { "ok" } else { "unavailable" },
        "coordination": { "kind": redis_kind, "status": if redis { "ok" } else { "degraded" } },
    });
    let status = if db {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(body).with_status(status).into_response()
}
