//! Voucher lifecycle: activities and history, for the operator (ADMIN_TOKEN) and for the
//! merchant a voucher was issued for (secret key).
use poem_openapi::{
    param::{Header, Path},
    payload::Json,
    ApiResponse, Object, OpenApi,
};
use superpayment_core::KeyKind;

use super::{
    error::{ApiError, ErrorBody},
    security::{AdminToken, SecretKey},
    ApiTags,
};
use crate::{
    auth::{authenticate, Caller},
    error_responses,
    lifecycle::{
        self, ActivityOutcome, ActivityReceipt, ActivityRequest, Actor, History, HistoryEntry,
        Owner,
    },
    secret_key_response,
    state::AppState,
};

/// Voucher activities and history.
pub struct VoucherActivitiesApi {
    state: AppState,
}

impl VoucherActivitiesApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// An activity to record on a voucher.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateActivity {
    /// `activate`, `deactivate`, `block`, `unblock`, `adjust_increment`,
    /// `adjust_decrement`, `load` (reloadable vouchers only) or `clear_balance`.
    pub kind: String,
    /// Decimal string in the voucher's currency, e.g. `"10.00"`: required by
    /// `adjust_increment`, `adjust_decrement` and `load`, refused by the others.
    #[oai(skip_serializing_if_is_none)]
    pub amount: Option<super::amount::DecimalString>,
    /// Why (at most 500 characters): required by `adjust_increment`, `adjust_decrement`
    /// and `clear_balance`; kept in the voucher's history.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
}

/// A recorded activity.
#[derive(Object)]
pub struct ActivityBody {
    pub id: i64,
    pub voucher_id: i64,
    pub kind: String,
    /// Signed decimal string: what the balance moved by (`"0.00"` for a status change).
    pub amount: String,
    /// The balance after the activity.
    pub balance: String,
    pub currency: String,
    /// The voucher's status after it: `active`, `inactive`, `blocked` or `used`.
    pub status: String,
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// `admin`, `api_key` or `system`.
    pub actor: String,
    /// The API key id (`api_key`) or the rule (`system`).
    #[oai(skip_serializing_if_is_none)]
    pub actor_id: Option<String>,
    pub created_at: String,
}

impl From<ActivityReceipt> for ActivityBody {
    fn from(r: ActivityReceipt) -> Self {
        ActivityBody {
            id: r.id,
            voucher_id: r.voucher_id,
            kind: r.kind,
            amount: r.amount,
            balance: r.balance,
            currency: r.currency,
            status: r.status,
            reason: r.reason,
            actor: r.actor,
            actor_id: r.actor_id,
            created_at: r.created_at,
        }
    }
}

/// A voucher with its history, oldest first.
#[derive(Object)]
pub struct HistoryBody {
    pub voucher_id: i64,
    pub last4: String,
    pub currency: String,
    pub mode: String,
    pub status: String,
    pub balance: String,
    pub entries: Vec<HistoryEntryBody>,
}

/// One line of a voucher's history.
#[derive(Object)]
pub struct HistoryEntryBody {
    /// An activity (`block`, `adjust_increment`, `load`, `clear_balance` ...) or a ledger
    /// journal (`issue`, `payment`, `authorization`, `capture`, `cancel`, `expiry`,
    /// `refund`).
    pub kind: String,
    /// Signed: what the balance moved by.
    pub amount: String,
    /// Signed: what moved into (a hold) or out of (its capture or release) the held amount.
    pub held: String,
    pub balance_after: String,
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// `admin`, `api_key` or `system` for activities; absent for payments, refunds and
    /// holds (their transaction says who).
    #[oai(skip_serializing_if_is_none)]
    pub actor: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub actor_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub transaction_id: Option<String>,
    pub created_at: String,
}

impl From<History> for HistoryBody {
    fn from(h: History) -> Self {
        HistoryBody {
            voucher_id: h.voucher_id,
            last4: h.last4,
            currency: h.currency,
            mode: h.mode,
            status: h.status,
            balance: h.balance,
            entries: h.entries.into_iter().map(HistoryEntryBody::from).collect(),
        }
    }
}

impl From<HistoryEntry> for HistoryEntryBody {
    fn from(e: HistoryEntry) -> Self {
        HistoryEntryBody {
            kind: e.kind,
            amount: e.amount,
            held: e.held,
            balance_after: e.balance_after,
            reason: e.reason,
            actor: e.actor,
            actor_id: e.actor_id,
            transaction_id: e.transaction_id,
            created_at: e.created_at,
        }
    }
}

secret_key_response! {
    pub enum CreateActivityResponse {
        /// Recorded. A replay of an earlier request carries `Idempotent-Replayed: true`.
        #[oai(status = 200)]
        Ok(
            Json<ActivityBody>,
            #[oai(header = "Idempotent-Replayed")] Option<String>,
        ),
        /// Unknown kind, missing reason (`reason_required`), missing or invalid amount, a malformed body, or an Idempotency-Key reused with another body.
        #[oai(status = 400)]
        BadRequest(Json<ErrorBody>),
        /// No voucher with this id issued for this merchant in this mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
        /// The voucher's state does not allow it (`voucher_status_conflict`, `voucher_not_reloadable`, `adjustment_exceeds_balance`), or the Idempotency-Key is still in flight.
        #[oai(status = 409)]
        Conflict(Json<ErrorBody>),
    }
    errors { 400 => BadRequest, 404 => NotFound, 409 => Conflict }
}

secret_key_response! {
    pub enum ListActivitiesResponse {
        /// The voucher and its history, oldest first.
        #[oai(status = 200)]
        Ok(Json<HistoryBody>),
        /// No voucher with this id issued for this merchant in this mode.
        #[oai(status = 404)]
        NotFound(Json<ErrorBody>),
    }
    errors { 404 => NotFound }
}

#[derive(ApiResponse)]
pub enum AdminCreateActivityResponse {
    /// Recorded. A replay of an earlier request carries `Idempotent-Replayed: true`.
    #[oai(status = 200)]
    Ok(
        Json<ActivityBody>,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
    /// Unknown kind, missing reason (`reason_required`), missing or invalid amount, a malformed body, or an Idempotency-Key reused with another body.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No voucher with this id.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The voucher's state does not allow it, or the Idempotency-Key is still in flight.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        #[oai(header = "Retry-After")] u64,
        #[oai(header = "RateLimit-Policy")] Option<String>,
        #[oai(header = "RateLimit")] Option<String>,
    ),
    /// Unexpected error; quote `request_id`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached right now (`service_unavailable`); retry after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    ServiceUnavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}
error_responses!(AdminCreateActivityResponse { 400 => BadRequest, 401 => Unauthorized, 404 => NotFound, 409 => Conflict, 429 => RateLimited });

#[derive(ApiResponse)]
pub enum AdminListActivitiesResponse {
    /// The voucher and its history, oldest first.
    #[oai(status = 200)]
    Ok(Json<HistoryBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No voucher with this id.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Too many requests from this client address (`rate_limited`, see the
    /// `RateLimit-Policy` and `RateLimit` headers), or too many wrong tokens from it
    /// (`too_many_failed_authentications`); wait `Retry-After` seconds.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        #[oai(header = "Retry-After")] u64,
        #[oai(header = "RateLimit-Policy")] Option<String>,
        #[oai(header = "RateLimit")] Option<String>,
    ),
    /// Unexpected error; quote `request_id`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached right now (`service_unavailable`); retry after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    ServiceUnavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}
error_responses!(AdminListActivitiesResponse { 401 => Unauthorized, 404 => NotFound, 429 => RateLimited });

fn request(id: String, body: CreateActivity) -> ActivityRequest {
    ActivityRequest {
        voucher_id: id,
        kind: body.kind,
        amount: body.amount.map(|a| a.0),
        reason: body.reason,
    }
}

fn merchant_owner(caller: &Caller) -> Owner {
    Owner::Merchant {
        merchant_id: caller.merchant_id.clone(),
        mode: caller.mode,
    }
}

fn replayed(outcome: ActivityOutcome) -> (ActivityBody, Option<String>) {
    match outcome {
        ActivityOutcome::Done(r) => (r.into(), None),
        ActivityOutcome::Replayed(r) => (r.into(), Some("true".into())),
    }
}

#[OpenApi]
impl VoucherActivitiesApi {
    /// Record an activity on a voucher you issued
    ///
    /// Activate, deactivate, block, unblock, adjust the balance up or down (with a reason),
    /// load (top up) a reloadable voucher, or clear its balance (with a reason). Each is
    /// one ledger journal and one line of the voucher's history. Only vouchers issued for
    /// your account, in the mode of your key; any other answers 404. Send an
    /// `Idempotency-Key`.
    #[oai(
        path = "/vouchers/:id/activities",
        method = "post",
        operation_id = "createVoucherActivity",
        tag = "ApiTags::IssuedVouchers"
    )]
    async fn create(
        &self,
        auth: SecretKey,
        /// The voucher's id (given at issuance).
        id: Path<String>,
        /// A unique key per activity (e.g. a UUID); replays the first answer for 24 h.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<CreateActivity>,
    ) -> CreateActivityResponse {
        async {
            let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?;
            let outcome = lifecycle::record(
                &self.state,
                &caller,
                merchant_owner(&caller),
                Actor::ApiKey(caller.key_id.clone()),
                request(id.0, body.0),
                idempotency_key.0,
            )
            .await?;
            let (body, replay) = replayed(outcome);
            Ok(CreateActivityResponse::Ok(Json(body), replay))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// A voucher you issued, with its history
    ///
    /// Every activity in order: issuance, payments, holds and their ends, refunds, and the
    /// lifecycle activities with their reasons and actors.
    #[oai(
        path = "/vouchers/:id/activities",
        method = "get",
        operation_id = "listVoucherActivities",
        tag = "ApiTags::IssuedVouchers"
    )]
    async fn list(&self, auth: SecretKey, id: Path<String>) -> ListActivitiesResponse {
        async {
            let caller = authenticate(&self.state, Some(&auth.0.token), KeyKind::Secret).await?;
            let h = lifecycle::history(&self.state.db, &merchant_owner(&caller), &id.0).await?;
            Ok(ListActivitiesResponse::Ok(Json(h.into())))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Record an activity on any voucher
    ///
    /// As `POST /vouchers/{id}/activities`, for every voucher (the actor is `admin`).
    #[oai(
        path = "/admin/vouchers/:id/activities",
        method = "post",
        operation_id = "adminCreateVoucherActivity",
        tag = "ApiTags::Admin"
    )]
    async fn admin_create(
        &self,
        auth: AdminToken,
        /// The voucher's id (given at issuance).
        id: Path<String>,
        /// A unique key per activity (e.g. a UUID); replays the first answer for 24 h.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<CreateActivity>,
    ) -> AdminCreateActivityResponse {
        async {
            super::admin::check_admin(&self.state, &auth)?;
            let outcome = lifecycle::record(
                &self.state,
                &Caller::operator(),
                Owner::Operator,
                Actor::Admin,
                request(id.0, body.0),
                idempotency_key.0,
            )
            .await?;
            let (body, replay) = replayed(outcome);
            Ok(AdminCreateActivityResponse::Ok(Json(body), replay))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }

    /// Any voucher with its history
    #[oai(
        path = "/admin/vouchers/:id/activities",
        method = "get",
        operation_id = "adminListVoucherActivities",
        tag = "ApiTags::Admin"
    )]
    async fn admin_list(&self, auth: AdminToken, id: Path<String>) -> AdminListActivitiesResponse {
        async {
            super::admin::check_admin(&self.state, &auth)?;
            let h = lifecycle::history(&self.state.db, &Owner::Operator, &id.0).await?;
            Ok(AdminListActivitiesResponse::Ok(Json(h.into())))
        }
        .await
        .unwrap_or_else(|e: ApiError| e.into())
    }
}
