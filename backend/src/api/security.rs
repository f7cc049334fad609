//! Bearer-token schemes of the spec: publishable key, secret key, admin token.
use poem_openapi::{auth::Bearer, SecurityScheme};

/// A publishable key (`pk_test_...` / `pk_live_...`), safe to embed in a checkout page.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "pk_live_...")]
pub struct PublishableKey(pub Bearer);

/// A secret key (`sk_test_...` / `sk_live_...`), for the merchant's server only.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "sk_live_...")]
pub struct SecretKey(pub Bearer);

/// The operator token (ADMIN_TOKEN).
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct AdminToken(pub Bearer);
