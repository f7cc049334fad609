//! The layer in front of every route: who the client is, request limits, the guessing
//! lockout, request time limits, security and CORS headers.
//!
//! Every limit counts against a [`ClientAddr`]: the peer's address, or the address the
//! configured trusted proxies report for it, with IPv6 clients grouped by /64 (one
//! subscriber's allocation, which an attacker can rotate through freely).
mod client;
pub mod headers;
pub mod limits;
pub mod lockout;
pub mod timeout;

pub use client::{parse_trusted_proxy, ClientAddr, ClientAddress, TrustedProxies};
