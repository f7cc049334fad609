//! What browsers load besides the API: the checkout iframe document, the widget's assets and the demo shop.
//!
//! - [`assets`]: `/checkout.html` (built from `www/checkout.html` and the build manifest,
//!   served with a strict CSP and the merchant's `frame-ancestors`), `/widget.js` (the
//!   loader, short cache) and `/pkg/*` (content-hashed, cached forever).
//! - [`demo`]: a small shop under `/demo/` whose server side signs its amounts and
//!   verifies each payment with the secret key before confirming the order.
//! - [`www`]: where those files come from: built into the binary, or WWW_DIR.
pub mod assets;
pub mod demo;
pub mod www;

use poem::Route;

use crate::config::ServeArgs;
use www::Www;

/// Adds the widget routes to `route`, and the demo shop's where it is wanted: on the
/// embedded default, or with DEMO_SHOP=on (never by default in production).
pub fn mount(route: Route, args: &ServeArgs, www: &Www) -> Route {
    let route = assets::mount(route, www);
    let demo = match args.demo_shop.as_str() {
        "on" => true,
        "off" => false,
        _ => args.db.is_embedded(),
    };
    if demo {
        demo::mount(route, args, www)
    } else {
        route
    }
}
