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

/// 200 when the database and Redis answer; 503 (with which one failed) otherwise.
#[handler]
pub async fn readyz(state: Data<&AppState>) -> Response {
    let db = store::ping(&state.db).await.is_ok();
    let redis = state.coord.ping().await.is_ok();
    let redis_kind = match state.coord.as_ref() {
        Coordinator::Redis(_) => "redis",
        Coordinator::Memory(_) => "in-process",
    };
    let body = json!({
        "status": if db && redis { "ready" } else { "not_ready" },
        "database": if db { "ok" } else { "unavailable" },
        "coordination": { "kind": redis_kind, "status": if redis { "ok" } else { "unavailable" } },
    });
    let status = if db && redis {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(body).with_status(status).into_response()
}
