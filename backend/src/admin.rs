//! Operator actions shared by the CLI and /api/admin: merchants, keys, voucher issuance, blocking.
use sea_orm::DatabaseConnection;
use serde_json::Value;
use superpayment_core::{
    ApiKey, BasisPoints, Currency, FieldError, KeyKind, Mode, Money, VoucherCode,
};
use time::OffsetDateTime;

use crate::store::entities::text::AsText;
use crate::{
    crypto::{random_bytes, voucher_hmac},
    ids::new_id,
    payments::rules::VoucherRules,
    secret::Secret,
    store::{
        self,
        entities::{
            api_key,
            merchant::{self, MerchantStatus},
            voucher::{self, VoucherState},
        },
        ledger::{Account, Lines},
    },
};

/// Why an operator action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A field is not valid (`FieldError` says which and why).
    #[error("invalid request")]
    Invalid(FieldError),
    /// No such merchant.
    #[error("merchant not found")]
    MerchantNotFound,
    /// No voucher with this code.
    #[error("voucher not found")]
    VoucherNotFound,
    /// Anything unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

crate::internal_on_db_error!(AdminError);

impl AdminError {
    /// Each way creating a merchant is refused, for the documentation.
    pub fn merchant_examples() -> impl Iterator<Item = AdminError> {
        let commission = BasisPoints::new(10_001)
            .err()
            .map(|e| field_error("commission_bps", e.code(), &e.to_string()));
        std::iter::once(field_error("name", "invalid_name", INVALID_NAME)).chain(commission)
    }

    /// Each way an issuance is refused beyond the amount and currency, for the
    /// documentation.
    pub fn issue_examples() -> impl Iterator<Item = AdminError> {
        [
            field_error("count", "invalid_count", &invalid_count()),
            field_error("expires_at", "expiry_in_past", EXPIRY_IN_PAST),
            field_error("merchant_id", "unknown_merchant", UNKNOWN_MERCHANT),
            field_error("count", "amount_too_large", TOTAL_TOO_LARGE),
            field_error("issuer_merchant_id", "unknown_merchant", UNKNOWN_MERCHANT),
            field_error("count", "too_many_pins", &too_many_pins()),
        ]
        .into_iter()
    }

    /// Each way setting a notification address is refused, for the documentation.
    pub fn notify_email_examples() -> impl Iterator<Item = AdminError> {
        [
            field_error("email", "invalid_email", INVALID_EMAIL),
            AdminError::MerchantNotFound,
        ]
        .into_iter()
    }

    /// Each way blocking is refused, for the documentation.
    pub fn block_examples() -> impl Iterator<Item = AdminError> {
        [
            field_error("code", "voucher_used", VOUCHER_USED),
            AdminError::VoucherNotFound,
        ]
        .into_iter()
    }
}

const INVALID_NAME: &str = "The name must have 1 to 200 characters.";
const EXPIRY_IN_PAST: &str = "expires_at must be in the future.";
const UNKNOWN_MERCHANT: &str = "No such merchant.";
const TOTAL_TOO_LARGE: &str = "count x amount is too large.";
const INVALID_EMAIL: &str = "Not a valid email address (name@domain, without a display name).";
const VOUCHER_USED: &str = "A used single-use voucher cannot change status.";

fn invalid_count() -> String {
    format!("count must be between 1 and {MAX_ISSUE_COUNT}.")
}

fn field_error(field: &str, code: &'static str, message: &str) -> AdminError {
    AdminError::Invalid(FieldError::new(field, code, message))
}

/// Largest batch of vouchers one call may issue.
pub const MAX_ISSUE_COUNT: u32 = 10_000;

/// A new merchant and its keys; the keys are shown this once and never again.
#[derive(Debug)]
pub struct NewMerchant {
    pub merchant: merchant::Model,
    pub publishable_key: ApiKey,
    pub secret_key: ApiKey,
}

/// Creates a merchant with a publishable and a secret key of `mode`.
#[tracing::instrument(skip(db))]
pub async fn create_merchant(
    db: &DatabaseConnection,
    name: &str,
    commission_bps: u32,
    mode: Mode,
) -> Result<NewMerchant, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(field_error("name", "invalid_name", INVALID_NAME));
    }
    let bps = BasisPoints::new(commission_bps)
        .map_err(|e| field_error("commission_bps", e.code(), &e.to_string()))?;
    let now = OffsetDateTime::now_utc();
    let merchant = merchant::Model {
        id: new_id("mer"),
        name: name.to_owned(),
        commission_bps: i32::from(bps.get()),
        hold_period_seconds: crate::payments::holds::DEFAULT_HOLD_PERIOD.whole_seconds(),
        pay_limit_per_client: None,
        pay_limit_per_key: None,
        check_limit: None,
        api_limit_per_key: None,
        status: MerchantStatus::Active,
        notify_email: None,
        require_two_factor: false,
        created_at: now,
    };
    let tx = store::begin(db).await?;
    store::merchants::insert_merchant(&tx, merchant.clone()).await?;
    let (_, publishable_key) =
        insert_key(&tx, &merchant.id, KeyKind::Publishable, mode, now).await?;
    let (_, secret_key) = insert_key(&tx, &merchant.id, KeyKind::Secret, mode, now).await?;
    tx.commit().await?;
    tracing::info!(merchant_id = %merchant.id, "merchant created");
    Ok(NewMerchant {
        merchant,
        publishable_key,
        secret_key,
    })
}

/// Creates a key pair of another mode (a merchant going live gets live keys); the
/// merchant's notification address is told.
pub async fn create_keys(
    db: &DatabaseConnection,
    merchant_id: &str,
    mode: Mode,
) -> Result<(ApiKey, ApiKey), AdminError> {
    store::merchants::find_merchant(db, merchant_id)
        .await?
        .ok_or(AdminError::MerchantNotFound)?;
    let now = OffsetDateTime::now_utc();
    let tx = store::begin(db).await?;
    let (pk_row, pk) = insert_key(&tx, merchant_id, KeyKind::Publishable, mode, now).await?;
    let (sk_row, sk) = insert_key(&tx, merchant_id, KeyKind::Secret, mode, now).await?;
    crate::keys::notify_created(&tx, merchant_id, mode, &[&pk_row, &sk_row]).await?;
    tx.commit().await?;
    Ok((pk, sk))
}

async fn insert_key(
    db: &impl sea_orm::ConnectionTrait,
    merchant_id: &str,
    kind: KeyKind,
    mode: Mode,
    now: OffsetDateTime,
) -> Result<(api_key::Model, ApiKey), AdminError> {
    Ok(crate::keys::insert(db, merchant_id, kind, mode, now).await?)
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct IssueSpec {
    pub currency: Currency,
    pub amount: String,
    pub count: u32,
    pub expires_at: Option<OffsetDateTime>,
    pub mode: Mode,
    pub rules: VoucherRules,
    /// The merchant the vouchers are issued for: it manages them through the merchant API.
    pub issuer_merchant_id: Option<String>,
}

/// A freshly issued voucher; `code` and `pin` exist only in this value and are never stored.
#[derive(Debug)]
pub struct IssuedVoucher {
    pub id: i64,
    pub code: VoucherCode,
    /// Its PIN, for kinds that require one.
    pub pin: Option<Secret<String>>,
    pub amount: Money,
    pub expires_at: Option<OffsetDateTime>,
    pub mode: Mode,
}

/// Issues `count` vouchers in one database transaction, each with its issuance journal.
#[tracing::instrument(skip(db, pepper, spec), fields(count = spec.count, currency = %spec.currency))]
pub async fn issue_vouchers(
    db: &DatabaseConnection,
    pepper: &Secret<String>,
    spec: IssueSpec,
) -> Result<Vec<IssuedVoucher>, AdminError> {
    let amount = Money::parse(&spec.amount, spec.currency)
        .map_err(|e| field_error("amount", e.code(), &e.to_string()))?;
    if spec.count == 0 || spec.count > MAX_ISSUE_COUNT {
        return Err(field_error("count", "invalid_count", &invalid_count()));
    }
    let now = OffsetDateTime::now_utc();
    if spec.expires_at.is_some_and(|e| e <= now) {
        return Err(field_error("expires_at", "expiry_in_past", EXPIRY_IN_PAST));
    }
    if let Some(issuer) = &spec.issuer_merchant_id {
        if store::merchants::find_merchant(db, issuer).await?.is_none() {
            return Err(field_error(
                "issuer_merchant_id",
                "unknown_merchant",
                UNKNOWN_MERCHANT,
            ));
        }
    }
    if let Some(merchants) = &spec.rules.merchants {
        for m in merchants {
            if store::merchants::find_merchant(db, m).await?.is_none() {
                return Err(field_error(
                    "merchant_id",
                    "unknown_merchant",
                    UNKNOWN_MERCHANT,
                ));
            }
        }
    }
    if spec.rules.pin_required && spec.count > MAX_PIN_ISSUE_COUNT {
        return Err(field_error("count", "too_many_pins", &too_many_pins()));
    }
    let rules: Value = serde_json::to_value(&spec.rules).map_err(anyhow::Error::from)?;
    let codes: Vec<VoucherCode> = (0..spec.count)
        .map(|_| VoucherCode::generate(random_bytes::<10>()))
        .collect();
    let pins = if spec.rules.pin_required {
        issue_pins(pepper, codes.len()).await?
    } else {
        Vec::new()
    };
    let rows = codes
        .iter()
        .enumerate()
        .map(|(i, c)| voucher::Model {
            id: 0,
            code_hmac: voucher_hmac(pepper, c),
            last4: c.last4().into(),
            mode: AsText(spec.mode),
            currency: AsText(spec.currency),
            initial_minor: amount.minor(),
            balance_minor: amount.minor(),
            status: VoucherState::Active,
            expires_at: spec.expires_at,
            rules: rules.clone(),
            created_at: now,
            updated_at: now,
            issuer_merchant_id: spec.issuer_merchant_id.clone(),
            first_used_at: None,
            pin_hash: pins.get(i).map(|(_, hash)| hash.clone()),
        })
        .collect();
    let tx = store::begin(db).await?;
    let ids = store::vouchers::insert_many(&tx, rows).await?;
    // One balanced journal per issuance: each voucher's liability against the float.
    let total = amount
        .minor()
        .checked_mul(i64::from(spec.count))
        .ok_or_else(|| field_error("count", "amount_too_large", TOTAL_TOO_LARGE))?;
    let mut lines = Lines::new(spec.mode.as_str(), spec.currency.code());
    for id in &ids {
        lines.add(
            Account::VoucherLiability { voucher_id: *id },
            amount.minor(),
        );
    }
    lines.add(Account::VoucherFloat, -total);
    store::ledger::post(&tx, "issue", None, &lines, now).await?;
    tx.commit().await?;
    tracing::info!(count = ids.len(), "vouchers issued");
    let mut pins = pins.into_iter().map(|(pin, _)| pin);
    Ok(ids
        .into_iter()
        .zip(codes)
        .map(|(id, code)| IssuedVoucher {
            id,
            code,
            pin: pins.next(),
            amount,
            expires_at: spec.expires_at,
            mode: spec.mode,
        })
        .collect())
}

/// Largest batch of vouchers with PINs one call may issue: each PIN costs an Argon2id hash.
pub const MAX_PIN_ISSUE_COUNT: u32 = 1_000;

fn too_many_pins() -> String {
    format!("At most {MAX_PIN_ISSUE_COUNT} vouchers with PINs are issued per call.")
}

/// `n` new PINs with their stored hashes, hashed off the async workers (each is a slow hash).
async fn issue_pins(
    pepper: &Secret<String>,
    n: usize,
) -> Result<Vec<(Secret<String>, String)>, AdminError> {
    let pepper = pepper.clone();
    let pins = tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|_| {
                let pin = crate::crypto::random_pin();
                crate::crypto::pin_hash(&pepper, &pin).map(|hash| (pin, hash))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await
    .map_err(anyhow::Error::from)??;
    Ok(pins)
}

/// The longest hold a merchant may be given (31 days).
pub const MAX_HOLD_PERIOD: time::Duration = time::Duration::days(31);

/// Sets how long a merchant's authorized payments stay held before they are released
/// (applies to holds placed from then on; a key already in the cache picks it up when
/// the cache entry expires).
pub async fn set_hold_period(
    db: &DatabaseConnection,
    merchant_id: &str,
    seconds: i64,
) -> Result<(), AdminError> {
    if !(1..=MAX_HOLD_PERIOD.whole_seconds()).contains(&seconds) {
        return Err(field_error(
            "seconds",
            "invalid_hold_period",
            &format!(
                "A hold period is 1 to {} seconds.",
                MAX_HOLD_PERIOD.whole_seconds()
            ),
        ));
    }
    if !store::merchants::set_hold_period(db, merchant_id, seconds).await? {
        return Err(AdminError::MerchantNotFound);
    }
    tracing::info!(merchant_id, seconds, "hold period set");
    Ok(())
}

/// One merchant's overrides of the gateway's limits, requests per minute (`None`: the
/// server's default; `Some(0)`: off for this merchant).
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitOverrides {
    pub pay_per_client: Option<u32>,
    pub pay_per_key: Option<u32>,
    pub checks: Option<u32>,
    /// Requests per secret key on the merchant's server routes (API_RATE_LIMIT_PER_KEY).
    pub api_per_key: Option<u32>,
}

/// Stores a merchant's limit overrides; instances apply them within KEY_CACHE_TTL (they
/// are read with the merchant through the key cache).
pub async fn set_rate_limits(
    db: &DatabaseConnection,
    merchant_id: &str,
    limits: LimitOverrides,
) -> Result<(), AdminError> {
    let column = |field: &str, v: Option<u32>| -> Result<Option<i32>, AdminError> {
        v.map(|n| {
            i32::try_from(n).map_err(|_| {
                field_error(
                    field,
                    "invalid_rate_limit",
                    "A limit is 0 to 2147483647 requests a minute.",
                )
            })
        })
        .transpose()
    };
    let found = store::merchants::set_rate_limits(
        db,
        merchant_id,
        column("pay_per_client", limits.pay_per_client)?,
        column("pay_per_key", limits.pay_per_key)?,
        column("checks", limits.checks)?,
        column("api_per_key", limits.api_per_key)?,
    )
    .await?;
    if !found {
        return Err(AdminError::MerchantNotFound);
    }
    tracing::info!(merchant_id, ?limits, "rate limits set");
    Ok(())
}

/// Blocks (or unblocks) a voucher found by its code, with its activity in the voucher's
/// history.
pub async fn set_voucher_blocked(
    db: &DatabaseConnection,
    pepper: &Secret<String>,
    code: &VoucherCode,
    blocked: bool,
) -> Result<i64, AdminError> {
    let hmac = voucher_hmac(pepper, code);
    let now = OffsetDateTime::now_utc();
    let tx = store::begin(db).await?;
    let change = store::vouchers::set_blocked(&tx, &hmac, blocked, now).await?;
    if let store::vouchers::BlockChange::Applied(id) = change {
        crate::lifecycle::record_status_change(&tx, id, blocked, now).await?;
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    match change {
        store::vouchers::BlockChange::Applied(id) => {
            tracing::info!(voucher_id = id, blocked, "voucher status changed");
            Ok(id)
        }
        store::vouchers::BlockChange::NotChangeable => {
            Err(field_error("code", "voucher_used", VOUCHER_USED))
        }
        store::vouchers::BlockChange::Missing => Err(AdminError::VoucherNotFound),
    }
}

/// Sets (or with None clears) a merchant's notification address.
pub async fn set_notify_email(
    db: &DatabaseConnection,
    merchant_id: &str,
    email: Option<&str>,
) -> Result<(), AdminError> {
    let address = email
        .map(|e| {
            crate::notify::EmailAddress::parse(e)
                .map_err(|_| field_error("email", "invalid_email", INVALID_EMAIL))
        })
        .transpose()?;
    if !crate::notify::set_notify_email(db, merchant_id, address.as_ref()).await? {
        return Err(AdminError::MerchantNotFound);
    }
    Ok(())
}
/// The demo merchant's back-office owner.
pub const DEMO_OWNER_EMAIL: &str = "owner@demo.example";

/// The embedded default's demo: one merchant with test keys and a few test vouchers,
/// created on first start (or by `superpayment seed-demo`) and printed for the newcomer.
pub async fn seed_demo(
    db: &DatabaseConnection,
    pepper: &Secret<String>,
) -> Result<String, AdminError> {
    let m = create_merchant(db, "Demo Shop", 250, Mode::Test).await?;
    let mut out = String::new();
    out.push_str(&format!(
        "Demo merchant {} (commission 2.50%)\n  publishable key: {}\n  secret key:      {}\n",
        m.merchant.id,
        m.publishable_key.expose(),
        m.secret_key.expose()
    ));
    for (amount, count) in [("50.00", 2), ("150.00", 1), ("20.00", 1)] {
        let issued = issue_vouchers(
            db,
            pepper,
            IssueSpec {
                currency: Currency::EUR,
                amount: amount.into(),
                count,
                expires_at: None,
                mode: Mode::Test,
                rules: VoucherRules::default(),
                issuer_merchant_id: None,
            },
        )
        .await?;
        for v in issued {
            out.push_str(&format!(
                "  test voucher EUR {:>7}: {}\n",
                amount,
                v.code.formatted()
            ));
        }
    }
    let password = crate::accounts::generate_password();
    let create = |email: String| {
        let (id, password) = (m.merchant.id.clone(), password.clone());
        async move {
            crate::accounts::create_user(db, &id, &email, crate::accounts::Role::Owner, &password)
                .await
        }
    };
    // A second demo merchant on the same database (`seed-demo` run again) gets its own email.
    let owner = match create(DEMO_OWNER_EMAIL.to_owned()).await {
        Err(crate::accounts::AccountError::EmailTaken) => {
            create(format!("owner-{}@demo.example", m.merchant.id)).await
        }
        other => other,
    }
    .map_err(|e| AdminError::Internal(e.into()))?;
    out.push_str(&format!(
        "  back-office (/dashboard/): {} / {password}\n",
        owner.email
    ));
    Ok(out)
}
