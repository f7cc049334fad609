//! Per-route request limits (GCRA, one mechanism for every limited route) counted per API
//! key and per client address, answered with `429`, `Retry-After` and the IETF
//! `RateLimit-Policy` / `RateLimit` headers.
use std::{sync::Arc, time::Duration};

use poem::{
    http::{header::AUTHORIZATION, HeaderValue, Method, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};

use super::ClientAddr;
use crate::{
    admin::LimitOverrides,
    api::error::ApiError,
    coordination::{self, Coordinator, GcraDecision, Quota},
    crypto::sha256_hex,
    state::AppState,
};

/// The limits of POST /api/process-payment (0 turns a limit off).
#[derive(Clone, Copy, Debug)]
pub struct PaymentLimits {
    /// Requests per API key per minute, every shopper of a shop together.
    pub per_key: u32,
    /// Requests per client address per minute.
    pub per_client: u32,
}

/// Middleware limiting the widget's routes (payments and voucher checks) with one
/// mechanism, GCRA in the [`Coordinator`]; other routes pass untouched.
///
/// The limits are the server's (`PAY_RATE_LIMIT_*`, `CHECK_RATE_LIMIT`) unless the key's
/// merchant overrides them (`superpayment admin set-limits`), read through the key cache.
pub struct RouteLimits {
    state: AppState,
    payments: PaymentLimits,
    /// Voucher checks per API key and client address per minute (0: no limit).
    checks: u32,
}

impl RouteLimits {
    pub fn new(state: AppState, payments: PaymentLimits, checks: u32) -> Self {
        Self {
            state,
            payments,
            checks,
        }
    }
}

impl<E: Endpoint> Middleware<E> for RouteLimits {
    type Output = RouteLimitsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RouteLimitsEndpoint {
            inner,
            coord: self.state.coord.clone(),
            state: self.state.clone(),
            payments: self.payments,
            checks: self.checks,
        }
    }
}

/// The endpoint produced by [`RouteLimits`].
pub struct RouteLimitsEndpoint<E> {
    inner: E,
    coord: Arc<Coordinator>,
    state: AppState,
    payments: PaymentLimits,
    checks: u32,
}

/// One limit that applies to a request: its policy name, counter key and quota, and the
/// label its refusals are counted under (`superpayment_rate_limit_rejections_total`).
struct Applied {
    policy: &'static str,
    key: String,
    quota: Quota,
    metric: &'static str,
}

/// The limited operations, told apart by method and path (before routing).
#[derive(Clone, Copy)]
enum Limited {
    Payment,
    Check,
}

impl Limited {
    fn of(req: &Request) -> Option<Self> {
        if req.method() != Method::POST {
            return None;
        }
        let path = req.uri().path().trim_end_matches('/');
        if path.ends_with("/process-payment") {
            Some(Self::Payment)
        } else if path.ends_with("/vouchers/check") {
            Some(Self::Check)
        } else {
            None
        }
    }

    /// The operation a refusal is answered for (its documentation covers the 429).
    fn operation_id(self) -> &'static str {
        match self {
            Self::Payment => "processPayment",
            Self::Check => "checkVoucher",
        }
    }
}

impl<E: Endpoint> RouteLimitsEndpoint<E> {
    /// The limits of `route` for this request; `merchant` overrides the server's.
    fn limits_of(&self, req: &Request, route: Limited, merchant: LimitOverrides) -> Vec<Applied> {
        let per_client = merchant.pay_per_client.unwrap_or(self.payments.per_client);
        let per_key = merchant.pay_per_key.unwrap_or(self.payments.per_key);
        let checks = merchant.checks.unwrap_or(self.checks);
        let minute = Duration::from_secs(60);
        let client = ClientAddr::of_request(req)
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown".into());
        // The key's hash stands for the key: no database lookup before the limit.
        let token = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty())
            .map(|t| sha256_hex(t)[..32].to_owned());
        let mut out = Vec::new();
        match route {
            Limited::Payment => {
                if per_client > 0 {
                    out.push(Applied {
                        policy: "per-client",
                        key: coordination::key("rl", &format!("pay:a:{client}"), ""),
                        quota: Quota::new(per_client, minute),
                        metric: "per-client",
                    });
                }
                if let (Some(token), true) = (&token, per_key > 0) {
                    out.push(Applied {
                        policy: "per-key",
                        key: coordination::key("rl", &format!("pay:k:{token}"), ""),
                        quota: Quota::new(per_key, minute),
                        metric: "per-key",
                    });
                }
            }
            // One shopper (address) of one shop (key): checks answer whether a code exists.
            Limited::Check if checks > 0 => {
                let token = token.as_deref().unwrap_or("none");
                out.push(Applied {
                    policy: "per-client",
                    key: coordination::key("rl", &format!("check:{token}:{client}"), ""),
                    quota: Quota::new(checks, minute),
                    metric: "voucher_check",
                });
            }
            Limited::Check => {}
        }
        out
    }
}

impl<E: Endpoint> Endpoint for RouteLimitsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let Some(route) = Limited::of(&req) else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        let bearer = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.get(..7)
                    .filter(|s| s.eq_ignore_ascii_case("bearer "))
                    .map(|_| &v[7..])
            });
        let merchant = match bearer {
            Some(token) => match crate::auth::limit_overrides(&self.state, token).await {
                Ok(found) => found.unwrap_or_default(),
                // The operation would look the key up again and fail alike (a database
                // that cannot be reached): answer now rather than wait for it twice.
                Err(err) => return Ok(error_answer(err.into(), route.operation_id())),
            },
            None => LimitOverrides::default(),
        };
        let limits = self.limits_of(&req, route, merchant);
        if limits.is_empty() {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let mut decisions = Vec::with_capacity(limits.len());
        for limit in &limits {
            decisions.push(self.coord.gcra(&limit.key, limit.quota).await);
        }
        let policy = limits
            .iter()
            .map(|l| {
                format!(
                    "\"{}\";q={};w={}",
                    l.policy,
                    l.quota.limit,
                    l.quota.period.as_secs()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        // The header reports the limit closest to refusing.
        let (tightest, decision) = limits
            .iter()
            .zip(&decisions)
            .min_by_key(|(_, d)| (d.allowed, d.remaining))
            .expect("at least one limit");
        let state = format!(
            "\"{}\";r={};t={}",
            tightest.policy,
            decision.remaining,
            secs(decision.reset)
        );
        let mut resp = if decision.allowed {
            self.inner
                .call(req)
                .await
                .map(IntoResponse::into_response)?
        } else {
            crate::monitoring::rate_limited(tightest.metric);
            too_many(decision, route.operation_id())
        };
        let headers = resp.headers_mut();
        for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        Ok(resp)
    }
}

fn too_many(decision: &GcraDecision, operation_id: &'static str) -> Response {
    error_answer(
        ApiError::RateLimited {
            retry_after: decision.retry_after,
        },
        operation_id,
    )
}

/// An error answered for the operation, though before it ran: its documentation covers it.
fn error_answer(err: ApiError, operation_id: &'static str) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = poem_openapi::payload::Json(err.to_body())
        .with_status(status)
        .into_response();
    if let Some(retry) = err.retry_after_secs() {
        resp.headers_mut().insert("retry-after", retry.into());
    }
    resp.set_data(poem_openapi::OperationId(operation_id));
    resp
}

/// Whole seconds, rounded up.
fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}
