//! Prometheus metrics: the one list of metric names, the functions that record them, and
//! the `/metrics` listener of `serve` and `worker` (on METRICS_BIND, never the API port).
//!
//! Every label value is a `&'static str` chosen by the code (an operation id, a route
//! template, a decline code), so no series can be created by what a client sends: the
//! number of series is bounded, and no id, key or voucher code ever reaches the exposition.
//!
//! # Names (all prefixed `superpayment_`)
//! | metric | type | labels |
//! |---|---|---|
//! | `http_requests_total` | counter | `route` (operation id under /api, path template elsewhere), `method`, `status` |
//! | `http_request_duration_seconds` | histogram | `route`, `method` |
//! | `payments_total` | counter | `mode`, `outcome` (`succeeded`, `replayed`, `declined`, `refused`, `error`), `reason` (the decline or refusal code, `none`) |
//! | `webhook_attempts_total` | counter | `outcome` (`succeeded`, `failed`, `refused`) |
//! | `webhook_attempt_duration_seconds` | histogram | `outcome` |
//! | `email_attempts_total` | counter | `outcome` (`sent`, `failed`, `rejected`) |
//! | `replica_fallbacks_total` | counter | — (list reads served by the primary because the replica failed) |
//! | `webhook_deliveries_released_total` | counter | — (claims handed back at shutdown) |
//! | `webhook_deliveries_in_flight` | gauge | — (this process) |
//! | `webhook_queue_depth` | gauge | `state`: `undispatched` (events not yet relayed), `due` (deliveries due now), `pending` (every pending delivery, retries scheduled later included) |
//! | `webhook_queue_oldest_age_seconds` | gauge | — (how long the oldest due work has waited; 0 when none) |
//! | `rate_limit_rejections_total` | counter | `limit` ([`rate_limited`]) |
//! | `lockouts_total` | counter | `scope` ([`locked_out`]) |
//! | `fraud_flags_total` | counter | `rule` ([`fraud_flagged`]; counted by the process that screened) |
//! | `redis_errors_total` | counter | `operation` |
//! | `db_pool_connections` | gauge | `pool` (`primary`, `replica`), `state` (`in_use`, `idle`) |
//!
//! Queue and pool gauges are read from the database and the pools at each scrape.
use std::{net::SocketAddr, sync::OnceLock, time::Duration};

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::{
    get, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
    EndpointExt, IntoResponse, Request, Response, Route, Server,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

use crate::{crypto::secrets_equal, secret::Secret};

pub const HTTP_REQUESTS: &str = "superpayment_http_requests_total";
pub const HTTP_DURATION: &str = "superpayment_http_request_duration_seconds";
pub const PAYMENTS: &str = "superpayment_payments_total";
pub const WEBHOOK_ATTEMPTS: &str = "superpayment_webhook_attempts_total";
pub const WEBHOOK_ATTEMPT_DURATION: &str = "superpayment_webhook_attempt_duration_seconds";
pub const WEBHOOK_RELEASED: &str = "superpayment_webhook_deliveries_released_total";
pub const WEBHOOK_IN_FLIGHT: &str = "superpayment_webhook_deliveries_in_flight";
pub const WEBHOOK_QUEUE_DEPTH: &str = "superpayment_webhook_queue_depth";
pub const WEBHOOK_QUEUE_OLDEST: &str = "superpayment_webhook_queue_oldest_age_seconds";
pub const EMAIL_ATTEMPTS: &str = "superpayment_email_attempts_total";
pub const REPLICA_FALLBACKS: &str = "superpayment_replica_fallbacks_total";
pub const RATE_LIMIT_REJECTIONS: &str = "superpayment_rate_limit_rejections_total";
pub const LOCKOUTS: &str = "superpayment_lockouts_total";
pub const FRAUD_FLAGS: &str = "superpayment_fraud_flags_total";
pub const REDIS_ERRORS: &str = "superpayment_redis_errors_total";
pub const DB_POOL: &str = "superpayment_db_pool_connections";

/// Latency buckets in seconds: from a cached answer to a slow receiver.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle). Until
/// it is installed, recording is a no-op, as in the CLI commands that never serve metrics.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(WEBHOOK_ATTEMPT_DURATION.into()),
                        BUCKETS,
                    )
                })
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; ours then stays unused.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request."
    );
    describe_counter!(
        PAYMENTS,
        "Payment attempts by outcome and decline or refusal reason."
    );
    describe_counter!(WEBHOOK_ATTEMPTS, "Webhook delivery attempts by outcome.");
    describe_histogram!(
        WEBHOOK_ATTEMPT_DURATION,
        Unit::Seconds,
        "Duration of one webhook delivery attempt."
    );
    describe_counter!(
        WEBHOOK_RELEASED,
        "Claimed webhook deliveries handed back unattempted at shutdown."
    );
    describe_gauge!(
        WEBHOOK_IN_FLIGHT,
        "Webhook deliveries this process is attempting now."
    );
    describe_gauge!(
        WEBHOOK_QUEUE_DEPTH,
        "Webhook work waiting: undispatched events, due deliveries, all pending deliveries."
    );
    describe_gauge!(
        WEBHOOK_QUEUE_OLDEST,
        Unit::Seconds,
        "How long the oldest due webhook work has been waiting."
    );
    describe_counter!(EMAIL_ATTEMPTS, "Notification email attempts by outcome.");
    describe_counter!(
        REPLICA_FALLBACKS,
        "Replica reads that failed and were served by the primary."
    );
    describe_counter!(RATE_LIMIT_REJECTIONS, "Requests refused by a rate limit.");
    describe_counter!(LOCKOUTS, "Clients locked out after repeated failures.");
    describe_counter!(
        FRAUD_FLAGS,
        "Payments flagged by the fraud screener, by rule."
    );
    describe_counter!(REDIS_ERRORS, "Redis calls that failed or timed out.");
    describe_gauge!(DB_POOL, "Database pool connections in use and idle.");
}

/// One HTTP answer (recorded by [`crate::telemetry::RequestId`]).
pub fn http_request(route: &'static str, method: &str, status: u16, elapsed: Duration) {
    let method = bounded_method(method);
    metrics::counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status.to_string())
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method)
        .record(elapsed.as_secs_f64());
}

/// Methods outside the usual ones share one label value (a client may send any token).
fn bounded_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// One payment attempt: `outcome` is `succeeded`, `replayed`, `declined`, `refused` or
/// `error`; `reason` the decline or refusal code (`none` otherwise).
pub fn payment(mode: &'static str, outcome: &'static str, reason: &'static str) {
    metrics::counter!(PAYMENTS, "mode" => mode, "outcome" => outcome, "reason" => reason)
        .increment(1);
}

/// One webhook attempt: `outcome` is the attempt's recorded outcome.
pub fn webhook_attempt(outcome: &'static str, elapsed: Duration) {
    metrics::counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
    metrics::histogram!(WEBHOOK_ATTEMPT_DURATION, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

/// One SMTP attempt of a notification email: `outcome` as recorded.
pub fn email_attempt(outcome: &'static str) {
    metrics::counter!(EMAIL_ATTEMPTS, "outcome" => outcome).increment(1);
}

/// A replica read that failed and was served by the primary instead.
pub fn replica_fallback() {
    metrics::counter!(REPLICA_FALLBACKS).increment(1);
}

/// Claimed deliveries handed back at shutdown.
pub fn webhook_released(n: u64) {
    metrics::counter!(WEBHOOK_RELEASED).increment(n);
}

/// A delivery attempt started (`+1.0`) or ended (`-1.0`) in this process.
pub fn webhook_in_flight(delta: f64) {
    metrics::gauge!(WEBHOOK_IN_FLIGHT).increment(delta);
}

/// A request to operation `route` (`processPayment`, `verifyTransaction`, ...) refused by
/// the gateway's limit named `limit` (`per-client`, `per-key`, `voucher_check`, `admin`,
/// `expensive`).
pub fn rate_limited(limit: &'static str, route: &'static str) {
    metrics::counter!(RATE_LIMIT_REJECTIONS, "limit" => limit, "route" => route).increment(1);
}

/// A client locked out in `scope` (e.g. `voucher_guessing`) after repeated failures.
pub fn locked_out(scope: &'static str) {
    metrics::counter!(LOCKOUTS, "scope" => scope).increment(1);
}

/// A payment flagged by the fraud screener for breaking `rule`.
pub fn fraud_flagged(rule: &'static str) {
    metrics::counter!(FRAUD_FLAGS, "rule" => rule).increment(1);
}

/// A Redis call that failed or timed out (`operation`: `lock`, `unlock`, `rate_limit`, `ping`).
pub fn redis_error(operation: &'static str) {
    metrics::counter!(REDIS_ERRORS, "operation" => operation).increment(1);
}

/// What a scrape reads besides the recorded values: the pools and the webhook queue.
#[derive(Clone)]
pub struct Sources {
    /// Pools by name (`primary`, `replica`).
    pub pools: Vec<(&'static str, DatabaseConnection)>,
    /// The database whose webhook queue is reported.
    pub queue: DatabaseConnection,
    /// Bearer token a scrape must send, if any (METRICS_TOKEN).
    pub token: Option<Secret<String>>,
}

/// Binds `addr` and serves `GET /metrics` there until the process ends. Bound before it
/// returns, so a taken address stops the start like the API's own.
pub async fn serve(addr: SocketAddr, sources: Sources) -> anyhow::Result<u16> {
    let handle = install();
    let acceptor = TcpListener::bind(addr)
        .into_acceptor()
        .await
        .with_context(|| format!("binding METRICS_BIND {addr}"))?;
    let port = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().map(|s| s.port()))
        .unwrap_or(addr.port());
    let app = Route::new()
        .at("/metrics", get(metrics_page))
        .data(handle.clone())
        .data(sources);
    tokio::spawn(async move {
        if let Err(e) = Server::new_with_acceptor(acceptor).run(app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    // Histograms are drained into their buckets by upkeep; scrapes also run it.
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            handle.run_upkeep();
        }
    });
    tracing::info!(port, "metrics listening");
    Ok(port)
}

#[handler]
async fn metrics_page(
    req: &Request,
    handle: Data<&PrometheusHandle>,
    sources: Data<&Sources>,
) -> Response {
    if let Some(token) = &sources.token {
        let sent = req
            .headers()
            .get(poem::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !secrets_equal(sent, token.expose()) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    refresh(&sources).await;
    handle.run_upkeep();
    handle
        .render()
        .with_content_type("text/plain; version=0.0.4; charset=utf-8")
        .into_response()
}

/// Reads the gauges that live outside this process's counters.
async fn refresh(sources: &Sources) {
    for (name, db) in &sources.pools {
        let (size, idle) = match db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => continue,
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
        metrics::gauge!(DB_POOL, "pool" => *name, "state" => "in_use").set(f64::from(size - idle));
        metrics::gauge!(DB_POOL, "pool" => *name, "state" => "idle").set(f64::from(idle));
    }
    let now = time::OffsetDateTime::now_utc();
    match crate::store::webhooks::queue_stats(&sources.queue, now).await {
        Ok(q) => {
            metrics::gauge!(WEBHOOK_QUEUE_DEPTH, "state" => "undispatched")
                .set(q.undispatched as f64);
            metrics::gauge!(WEBHOOK_QUEUE_DEPTH, "state" => "due").set(q.due as f64);
            metrics::gauge!(WEBHOOK_QUEUE_DEPTH, "state" => "pending").set(q.pending as f64);
            let age = q
                .oldest_due
                .map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
            metrics::gauge!(WEBHOOK_QUEUE_OLDEST).set(age);
        }
        Err(e) => tracing::warn!(error = %e, "reading the webhook queue for metrics failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_method_a_client_invents_shares_one_label() {
        assert_eq!(bounded_method("POST"), "POST");
        assert_eq!(bounded_method("PROPFIND"), "other");
        assert_eq!(bounded_method("X-ANYTHING-AT-ALL"), "other");
    }

    #[test]
    fn recorded_values_render_as_prometheus_text_with_their_help() {
        let handle = install();
        let again = install();
        locked_out("unit_test_scope");
        locked_out("unit_test_scope");
        http_request("unit_test_route", "GET", 200, Duration::from_millis(3));
        again.run_upkeep();
        let text = handle.render();
        assert!(
            text.contains(r#"superpayment_lockouts_total{scope="unit_test_scope"} 2"#),
            "{text}"
        );
        assert!(text.contains("# HELP superpayment_lockouts_total"));
        assert!(text.contains(r#"superpayment_http_request_duration_seconds_bucket{route="unit_test_route",method="GET",le="0.005"} 1"#), "{text}");
    }
}
