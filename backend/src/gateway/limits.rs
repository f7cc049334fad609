//! Per-route request limits (GCRA, one mechanism for every limited route) counted per API
//! key and per client address, answered with `429`, `Retry-After` and the IETF
//! `RateLimit-Policy` / `RateLimit` headers; and the lockout of client addresses that keep
//! presenting bad credentials.
//!
//! Which limits apply is read from the operation the request reaches (its id and security
//! scheme in the generated spec, [`PathTable`]), so that every documented operation is
//! covered and a new one is limited by its scheme without a line here.
use std::{sync::Arc, time::Duration};

use poem::{
    http::{header::AUTHORIZATION, HeaderValue, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};

use super::{
    lockout::{Attempt, LockoutPolicy},
    ClientAddr,
};
use crate::{
    admin::LimitOverrides,
    api::{
        error::ApiError,
        framework::{Operation, PathTable, Scheme},
    },
    auth::{self, BearerToken, KeyStanding},
    coordination::{self, Coordinator, GcraDecision, Quota},
    crypto::secrets_equal,
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

/// Every limit of the API, requests per minute (0 turns a limit off).
#[derive(Clone, Debug)]
pub struct Limits {
    pub payments: PaymentLimits,
    /// Voucher checks per API key and client address (CHECK_RATE_LIMIT).
    pub checks: u32,
    /// Requests per API key on every other keyed operation (API_RATE_LIMIT_PER_KEY).
    pub per_key: u32,
    /// How many instances share `per_key` (API_RATE_LIMIT_INSTANCES): it is counted in
    /// each process, each allowing its share, so that the hot path (verify, listings)
    /// makes no Redis round trip for it.
    pub instances: u32,
    /// Expensive operations ([`EXPENSIVE`]), per API key or, for the operator's, per client
    /// address (API_RATE_LIMIT_EXPENSIVE), on top of their class's limit.
    pub expensive: u32,
    /// Operator requests per client address (ADMIN_RATE_LIMIT).
    pub admin: u32,
    /// Bad credentials per client address before it is refused (AUTH_LOCKOUT_THRESHOLD,
    /// in the window and for the cool-down of the guessing lockout).
    pub auth_failures: LockoutPolicy,
}

/// The operations with the lower budget: report exports, voucher issuance, payouts and
/// breakage runs (large reads or writes), and the ones that make outbound webhook calls.
pub const EXPENSIVE: &[&str] = &[
    "adminLiabilityReport",
    "adminCommissionReport",
    "adminSettlementReport",
    "adminIssueVouchers",
    "adminCreatePayout",
    "adminRecogniseBreakage",
    "sendTestWebhook",
    "redeliverEvent",
];

/// Middleware limiting every API operation with one mechanism, GCRA in the
/// [`Coordinator`] (or, for the per-instance share of the per-key limit, in process).
///
/// The limits are the server's unless the key's merchant overrides them (`superpayment
/// admin set-limits`), read through the key cache.
pub struct RouteLimits {
    state: AppState,
    limits: Arc<Limits>,
    paths: Arc<PathTable>,
}

impl RouteLimits {
    pub fn new(state: AppState, limits: Limits, paths: Arc<PathTable>) -> Self {
        Self {
            state,
            limits: Arc::new(limits),
            paths,
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
            limits: self.limits.clone(),
            paths: self.paths.clone(),
        }
    }
}

/// The endpoint produced by [`RouteLimits`].
pub struct RouteLimitsEndpoint<E> {
    inner: E,
    coord: Arc<Coordinator>,
    state: AppState,
    limits: Arc<Limits>,
    paths: Arc<PathTable>,
}

/// One limit that applies to a request: its policy name, counter key and quota, whether it
/// is counted in this process only, and the label its refusals are counted under
/// (`superpayment_rate_limit_rejections_total{limit,route}`).
struct Applied {
    policy: &'static str,
    key: String,
    quota: Quota,
    local: bool,
    metric: &'static str,
}

/// What the gateway learnt of the request's credential.
struct Credential {
    /// The merchant's overrides, for a live key.
    overrides: LimitOverrides,
    /// A live key or the right admin token.
    live: bool,
}

/// The bearer token of a request, if it sends one.
fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.get(..7)
                .filter(|s| s.eq_ignore_ascii_case("bearer "))
                .map(|_| v[7..].trim())
        })
        .filter(|t| !t.is_empty())
}

impl<E: Endpoint> RouteLimitsEndpoint<E> {
    /// The standing of the request's credential. Bad credentials are counted against the
    /// client address; an address past AUTH_LOCKOUT_THRESHOLD is refused before any key
    /// lookup (a key this instance already knows as live still works from it).
    async fn credential(
        &self,
        op: Operation,
        token: Option<&BearerToken<'_>>,
        client: &str,
    ) -> std::result::Result<Credential, ApiError> {
        let none = Credential {
            overrides: LimitOverrides::default(),
            live: false,
        };
        // A missing credential costs nothing and guesses nothing: the operation answers it.
        let Some(token) = token else { return Ok(none) };
        let guard = Attempt::authentication(&self.limits.auth_failures, client);
        let mut checked = false;
        let live = match op.scheme {
            Scheme::None => return Ok(none),
            Scheme::Admin => match &self.state.admin_token {
                Some(expected) => secrets_equal(expected.expose(), token.as_str()).then_some(None),
                None => None,
            },
            Scheme::Publishable | Scheme::Secret => {
                let standing = match auth::cached_standing(&self.state, token) {
                    Some(standing) => standing,
                    None => {
                        // Only a lookup can tell: refuse a locked-out address before it.
                        refuse_if_locked(&guard, &self.coord).await?;
                        checked = true;
                        auth::key_standing(&self.state, token)
                            .await
                            .map_err(ApiError::from)?
                    }
                };
                match standing {
                    KeyStanding::Live(overrides) => Some(Some(overrides)),
                    KeyStanding::Dead => None,
                }
            }
        };
        match live {
            Some(overrides) => Ok(Credential {
                overrides: overrides.unwrap_or_default(),
                live: true,
            }),
            None => {
                if !checked {
                    refuse_if_locked(&guard, &self.coord).await?;
                }
                guard.failed(&self.coord, None).await;
                Ok(none)
            }
        }
    }

    /// The limits of operation `op` for this request.
    fn limits_of(
        &self,
        op: Operation,
        client: &str,
        token: Option<&BearerToken<'_>>,
        credential: &Credential,
    ) -> Vec<Applied> {
        let merchant = credential.overrides;
        let l = &*self.limits;
        let minute = Duration::from_secs(60);
        // The key's hash stands for the key: no database lookup before the limit.
        let token = token.map(|t| t.digest()[..32].to_owned());
        let mut out = Vec::new();
        match (op.id, op.scheme) {
            ("processPayment", _) => {
                let per_client = merchant.pay_per_client.unwrap_or(l.payments.per_client);
                let per_key = merchant.pay_per_key.unwrap_or(l.payments.per_key);
                if per_client > 0 {
                    out.push(Applied {
                        policy: "per-client",
                        key: coordination::key("rl", &format!("pay:a:{client}"), ""),
                        quota: Quota::new(per_client, minute),
                        local: false,
                        metric: "per-client",
                    });
                }
                if let (Some(token), true) = (&token, per_key > 0) {
                    out.push(Applied {
                        policy: "per-key",
                        key: coordination::key("rl", &format!("pay:k:{token}"), ""),
                        quota: Quota::new(per_key, minute),
                        local: false,
                        metric: "per-key",
                    });
                }
            }
            // One shopper (address) of one shop (key): checks answer whether a code exists.
            ("checkVoucher", _) => {
                let checks = merchant.checks.unwrap_or(l.checks);
                if checks > 0 {
                    let token = token.as_deref().unwrap_or("none");
                    out.push(Applied {
                        policy: "per-client",
                        key: coordination::key("rl", &format!("check:{token}:{client}"), ""),
                        quota: Quota::new(checks, minute),
                        local: false,
                        metric: "voucher_check",
                    });
                }
            }
            (id, Scheme::Publishable | Scheme::Secret) => {
                // Only live keys are counted per key: a made-up key is the lockout's.
                let Some(token) = token.filter(|_| credential.live) else {
                    return out;
                };
                let per_key = merchant.api_per_key.unwrap_or(l.per_key);
                if per_key > 0 {
                    out.push(Applied {
                        policy: "per-key",
                        key: coordination::key("rl", &format!("api:k:{token}"), ""),
                        quota: Quota::new(per_key.div_ceil(l.instances.max(1)), minute),
                        local: true,
                        metric: "per-key",
                    });
                }
                if EXPENSIVE.contains(&id) && l.expensive > 0 {
                    out.push(Applied {
                        policy: "expensive",
                        key: coordination::key("rl", &format!("exp:k:{token}"), ""),
                        quota: Quota::new(l.expensive, minute),
                        local: false,
                        metric: "expensive",
                    });
                }
            }
            (id, Scheme::Admin) => {
                if l.admin > 0 {
                    out.push(Applied {
                        policy: "per-client",
                        key: coordination::key("rl", &format!("admin:a:{client}"), ""),
                        quota: Quota::new(l.admin, minute),
                        local: false,
                        metric: "admin",
                    });
                }
                if EXPENSIVE.contains(&id) && l.expensive > 0 {
                    out.push(Applied {
                        policy: "expensive",
                        key: coordination::key("rl", &format!("exp:a:{client}"), ""),
                        quota: Quota::new(l.expensive, minute),
                        local: false,
                        metric: "expensive",
                    });
                }
            }
            (_, Scheme::None) => {}
        }
        out
    }
}

/// Refuses a client address locked out for bad credentials.
async fn refuse_if_locked(
    guard: &Attempt<'_>,
    coord: &Coordinator,
) -> std::result::Result<(), ApiError> {
    match guard.refused_for(coord).await {
        Some(retry_after) => Err(ApiError::TooManyFailedAuthentications { retry_after }),
        None => Ok(()),
    }
}

impl<E: Endpoint> Endpoint for RouteLimitsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let Some(op) = self.paths.operation(req.method(), req.uri().path()) else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        let client = ClientAddr::of_request(&req)
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown".into());
        let token = bearer(&req).map(str::to_owned);
        // Hashed once: the key lookup and the counters' keys both use the digest.
        let token = token.as_deref().map(BearerToken::new);
        let credential = match self.credential(op, token.as_ref(), &client).await {
            Ok(credential) => credential,
            // Locked out, or the key lookup failed (a database that cannot be reached: the
            // operation would fail alike): answer now rather than wait for it twice.
            Err(err) => return Ok(error_answer(err, op.id)),
        };
        let limits = self.limits_of(op, &client, token.as_ref(), &credential);
        if limits.is_empty() {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        // The shared limits in one round trip; the per-instance shares without one.
        let shared: Vec<(&str, Quota)> = limits
            .iter()
            .filter(|l| !l.local)
            .map(|l| (l.key.as_str(), l.quota))
            .collect();
        let mut shared = self.coord.gcra_many(&shared).await.into_iter();
        let decisions: Vec<GcraDecision> = limits
            .iter()
            .map(|l| {
                if l.local {
                    self.coord.gcra_local(&l.key, l.quota)
                } else {
                    shared.next().expect("a decision per shared limit")
                }
            })
            .collect();
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
            crate::monitoring::rate_limited(tightest.metric, op.id);
            too_many(decision, op.id)
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
