//! The demo shop under `/demo/`: products, a cart, a checkout page with the one script tag,
//! and a confirmation page that verifies the payment server-side with the secret key.
//! Its pages are the templates of `backend/templates/demo/`.
//!
//! It plays the merchant's server: prices come from its own catalogue (never from the
//! browser), it signs each order's amount with the checkout signing secret, and it only
//! confirms an order after `verify` says the transaction matches the order id, amount and
//! currency it expects. The secret key stays in this process. Orders live in memory:
//! this is a demonstration for one instance, not an order system.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use poem::{
    get, handler,
    http::{header, StatusCode},
    web::{Data, Form, Path, Query},
    EndpointExt, IntoResponse, Request, Response, Route,
};
use serde::Deserialize;
use superpayment_core::{Currency, KeyKind, Money, OrderId};

use crate::{
    auth::authenticate,
    checkout,
    config::ServeArgs,
    payments::{self, VerifyQuery},
    state::AppState,
};
use minijinja::context;

/// One product of the catalogue.
struct Product {
    sku: &'static str,
    name: &'static str,
    blurb: &'static str,
    /// Minor units of EUR.
    price: i64,
}

const CATALOGUE: &[Product] = &[
    Product {
        sku: "trail-shoes",
        name: "Trail Runner Shoes",
        blurb: "Grippy, light and waterproof, for muddy mornings.",
        price: 9_900,
    },
    Product {
        sku: "beanie",
        name: "Merino Wool Beanie",
        blurb: "Warm without the itch.",
        price: 2_450,
    },
    Product {
        sku: "bottle",
        name: "Insulated Bottle 750 ml",
        blurb: "Cold for 24 hours, hot for 12.",
        price: 1_990,
    },
    Product {
        sku: "headlamp",
        name: "Headlamp 400 lm",
        blurb: "For runs that end after sunset.",
        price: 3_400,
    },
];

/// Most orders kept in memory before the oldest are dropped.
const MAX_ORDERS: usize = 10_000;

/// An order the shop created at checkout.
#[derive(Clone)]
struct Order {
    amount: Money,
    lines: Vec<(String, u32, Money)>,
    created: u64,
}

/// The demo merchant's keys and the shop's orders.
pub struct DemoShop {
    publishable_key: Option<String>,
    secret_key: Option<String>,
    widget_url: Option<String>,
    /// This server's own origin (PUBLIC_URL, else `http://BIND`), for requests whose Host
    /// is not a loopback name.
    own_origin: String,
    orders: Mutex<HashMap<String, Order>>,
    next: Mutex<u64>,
}

/// The demo merchant's keys: from DEMO_PUBLISHABLE_KEY / DEMO_SECRET_KEY, else (on the
/// embedded default) from the `demo.txt` the first start wrote.
fn demo_keys(args: &ServeArgs) -> (Option<String>, Option<String>) {
    let from_env = (
        args.demo_publishable_key.clone(),
        args.demo_secret_key.as_ref().map(|s| s.expose().clone()),
    );
    if from_env.0.is_some() && from_env.1.is_some() {
        return from_env;
    }
    let text = std::fs::read_to_string(args.db.data_dir.join("demo.txt")).unwrap_or_default();
    let find = |prefix: &str| {
        text.split_whitespace()
            .find(|w| w.starts_with(prefix))
            .map(str::to_owned)
    };
    (
        from_env.0.or_else(|| find("pk_test_")),
        from_env.1.or_else(|| find("sk_test_")),
    )
}

/// Adds the shop under `/demo`.
pub fn mount(route: Route, args: &ServeArgs, www: &super::www::Www) -> Route {
    let (publishable_key, secret_key) = demo_keys(args);
    let shop = Arc::new(DemoShop {
        publishable_key,
        secret_key,
        widget_url: args.demo_widget_url.clone(),
        own_origin: args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.bind))
            .trim_end_matches('/')
            .to_owned(),
        orders: Mutex::new(HashMap::new()),
        next: Mutex::new(0),
    });
    route.nest(
        "/demo",
        Route::new()
            .at("/", get(index))
            .at("/cart", get(cart_page).post(add_to_cart))
            .at("/checkout", poem::post(create_order))
            .at("/checkout/:order", get(checkout_page))
            .at("/confirmation/:order", get(confirmation))
            .nest("/assets", www.endpoint("demo"))
            .data(shop)
            // The shop's forms are read whole; cap them like the API's bodies.
            .with(crate::api::body_limit::BodyLimit::new(16 * 1024))
            .with(crate::telemetry::RouteLabel("/demo/*")),
    )
}

fn eur(minor: i64) -> Money {
    Money::from_minor(minor, Currency::EUR).unwrap_or(Money::zero(Currency::EUR))
}

fn price(m: Money) -> String {
    m.format_locale(superpayment_core::Locale::En)
}

/// A demo page rendered from its template (`backend/templates/demo/`). Scripts and frames
/// come only from this origin and the widget's, with no inline script: the shop works
/// under a strict CSP, as a real one should.
fn page(template: &str, ctx: minijinja::Value, widget_origin: Option<&str>) -> Response {
    let html = match crate::templates::render(template, ctx) {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = ?e, "demo page failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let extra = widget_origin.map(|o| format!(" {o}")).unwrap_or_default();
    let csp = format!(
        "default-src 'self'; script-src 'self'{extra}; frame-src{frame}; style-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'self'; object-src 'none'",
        frame = if extra.is_empty() { " 'none'" } else { &extra },
    );
    html.with_content_type("text/html; charset=utf-8")
        .with_header(header::CONTENT_SECURITY_POLICY, csp)
        .with_header(header::CACHE_CONTROL, "no-store")
        .into_response()
}

fn read_cart(req: &Request) -> Vec<(&'static Product, u32)> {
    let cookies = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let value = cookies
        .split(';')
        .filter_map(|c| c.trim().strip_prefix("demo_cart="))
        .next()
        .unwrap_or_default();
    let mut cart: Vec<(&'static Product, u32)> = Vec::new();
    for item in value.split('.') {
        let Some((sku, qty)) = item.split_once('_') else {
            continue;
        };
        let (Some(p), Ok(qty)) = (CATALOGUE.iter().find(|p| p.sku == sku), qty.parse::<u32>())
        else {
            continue;
        };
        if (1..=20).contains(&qty) && !cart.iter().any(|(c, _)| c.sku == p.sku) {
            cart.push((p, qty));
        }
    }
    cart
}

fn cart_cookie(cart: &[(&'static Product, u32)]) -> String {
    let value: Vec<String> = cart.iter().map(|(p, q)| format!("{}_{q}", p.sku)).collect();
    format!(
        "demo_cart={}; Path=/demo; SameSite=Lax; HttpOnly; Max-Age=86400",
        value.join(".")
    )
}

#[handler]
async fn index() -> Response {
    let products: Vec<_> = CATALOGUE
        .iter()
        .map(|p| context! { name => p.name, blurb => p.blurb, price => price(eur(p.price)), sku => p.sku })
        .collect();
    page("demo/index.html", context! { products }, None)
}

#[derive(Deserialize)]
struct AddToCart {
    sku: String,
    /// `remove` takes the product out; anything else adds one.
    action: Option<String>,
}

#[handler]
async fn add_to_cart(req: &Request, form: Form<AddToCart>) -> Response {
    let mut cart = read_cart(req);
    if let Some(p) = CATALOGUE.iter().find(|p| p.sku == form.sku) {
        if form.action.as_deref() == Some("remove") {
            cart.retain(|(c, _)| c.sku != p.sku);
        } else if let Some(line) = cart.iter_mut().find(|(c, _)| c.sku == p.sku) {
            line.1 = (line.1 + 1).min(20);
        } else {
            cart.push((p, 1));
        }
    }
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/demo/cart")
        .header(header::SET_COOKIE, cart_cookie(&cart))
        .finish()
}

fn total(cart: &[(&'static Product, u32)]) -> Money {
    eur(cart.iter().map(|(p, q)| p.price * i64::from(*q)).sum())
}

#[handler]
async fn cart_page(req: &Request) -> Response {
    let cart = read_cart(req);
    let lines: Vec<_> = cart
        .iter()
        .map(|(p, q)| {
            context! {
                name => p.name,
                qty => q,
                sum => price(eur(p.price * i64::from(*q))),
                sku => p.sku,
            }
        })
        .collect();
    page(
        "demo/cart.html",
        context! { lines, total => price(total(&cart)) },
        None,
    )
}

#[derive(Deserialize)]
struct CheckoutChoice {
    lang: Option<String>,
    theme: Option<String>,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Turns the cart into an order with the shop's own prices, then shows its checkout page.
#[handler]
async fn create_order(
    req: &Request,
    shop: Data<&Arc<DemoShop>>,
    form: Form<CheckoutChoice>,
) -> Response {
    let cart = read_cart(req);
    if cart.is_empty() {
        return Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, "/demo/cart")
            .finish();
    }
    let number = {
        let mut next = shop.next.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        *next
    };
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase();
    let order_id = format!("DEMO-{number}-{suffix}");
    let order = Order {
        amount: total(&cart),
        lines: cart
            .iter()
            .map(|(p, q)| (p.name.to_owned(), *q, eur(p.price * i64::from(*q))))
            .collect(),
        created: now_secs(),
    };
    {
        let mut orders = shop.orders.lock().unwrap_or_else(|e| e.into_inner());
        if orders.len() >= MAX_ORDERS {
            if let Some(oldest) = orders
                .iter()
                .min_by_key(|(_, o)| o.created)
                .map(|(k, _)| k.clone())
            {
                orders.remove(&oldest);
            }
        }
        orders.insert(order_id.clone(), order);
    }
    let mut location = format!("/demo/checkout/{order_id}");
    let choice = |v: &Option<String>, allowed: &[&str]| {
        v.as_deref()
            .filter(|x| allowed.contains(x))
            .map(str::to_owned)
    };
    let mut params = Vec::new();
    if let Some(lang) = choice(&form.lang, &["en", "fr", "de"]) {
        params.push(format!("lang={lang}"));
    }
    if let Some(theme) = choice(&form.theme, &["light", "dark"]) {
        params.push(format!("theme={theme}"));
    }
    if !params.is_empty() {
        location.push('?');
        location.push_str(&params.join("&"));
    }
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::SET_COOKIE, cart_cookie(&[]))
        .finish()
}

/// The widget's origin for this request: DEMO_WIDGET_URL when set; otherwise the other
/// name of the loopback interface, so that shop and payment iframe are different origins
/// (as shop.example and pay.example are in production) even on one machine.
fn widget_origin(shop: &DemoShop, req: &Request) -> String {
    if let Some(url) = &shop.widget_url {
        return url.trim_end_matches('/').to_owned();
    }
    // The Host header is the client's word: it is used only when it is exactly a loopback
    // name and a port, never reflected into the page otherwise.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let port = |rest: &str| {
        rest.strip_prefix(':')
            .filter(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
    };
    if let Some(p) = host.strip_prefix("127.0.0.1").and_then(port) {
        format!("http://localhost:{p}")
    } else if let Some(p) = host.strip_prefix("localhost").and_then(port) {
        format!("http://127.0.0.1:{p}")
    } else {
        shop.own_origin.clone()
    }
}

#[derive(Deserialize)]
struct CheckoutView {
    lang: Option<String>,
    theme: Option<String>,
}

/// An order as `demo/order_table.html` shows it.
fn order_view(order: &Order) -> minijinja::Value {
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|(name, q, sum)| context! { name, qty => q, sum => price(*sum) })
        .collect();
    context! { lines, total => price(order.amount) }
}

fn unknown_order() -> Response {
    page(
        "demo/message.html",
        context! { title => "Unknown order", heading => "Unknown order", text => "", back => true },
        None,
    )
}

/// The checkout page: the order and the one script tag, with the amount signed here.
#[handler]
async fn checkout_page(
    req: &Request,
    shop: Data<&Arc<DemoShop>>,
    state: Data<&AppState>,
    Path(order_id): Path<String>,
    view: Query<CheckoutView>,
) -> Response {
    let Some(order) = shop
        .orders
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&order_id)
        .cloned()
    else {
        return unknown_order();
    };
    let (Some(pk), Some(sk)) = (&shop.publishable_key, &shop.secret_key) else {
        return not_configured();
    };
    let Ok(order_ref) = OrderId::parse(&order_id) else {
        return not_configured();
    };
    // What the merchant's server does: fetch its signing secret with the secret key and
    // sign exactly this order id, amount and currency.
    let signature = match authenticate(&state, Some(sk), KeyKind::Secret).await {
        Ok(caller) => match checkout::settings::get(&state, &caller).await {
            Ok(settings) => {
                checkout::sign_order(&settings.signing_secret, &order_ref, order.amount)
            }
            Err(_) => return not_configured(),
        },
        Err(_) => return not_configured(),
    };
    let origin = widget_origin(&shop, req);
    let lang = view
        .lang
        .as_deref()
        .filter(|l| ["en", "fr", "de"].contains(l));
    let theme = view
        .theme
        .as_deref()
        .filter(|t| ["light", "dark"].contains(t));
    page(
        "demo/checkout.html",
        context! {
            order_id,
            order => order_view(&order),
            widget_origin => &origin,
            pk,
            amount => order.amount.to_string(),
            currency => order.amount.currency().code(),
            signature,
            lang,
            theme,
        },
        Some(&origin),
    )
}

fn not_configured() -> Response {
    page(
        "demo/message.html",
        context! {
            title => "Demo not configured",
            heading => "The demo shop is not configured",
            text => "Start the server on the embedded default (it creates a demo merchant on \
                     first start) or set DEMO_PUBLISHABLE_KEY and DEMO_SECRET_KEY.",
        },
        None,
    )
}

#[derive(Deserialize)]
struct Returned {
    transaction_id: Option<String>,
}

/// The confirmation page: the order ships only if the server-side verification passes.
#[handler]
async fn confirmation(
    shop: Data<&Arc<DemoShop>>,
    state: Data<&AppState>,
    Path(order_id): Path<String>,
    returned: Query<Returned>,
) -> Response {
    let order = shop
        .orders
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&order_id)
        .cloned();
    let (Some(order), Some(sk), Ok(order_ref)) =
        (order, &shop.secret_key, OrderId::parse(&order_id))
    else {
        return unknown_order();
    };
    let caller = match authenticate(&state, Some(sk), KeyKind::Secret).await {
        Ok(c) => c,
        Err(_) => return not_configured(),
    };
    // The browser's word (the transaction id in the URL) is only a hint: the verdict
    // compares the stored transaction with this order's own amount and currency.
    let query = VerifyQuery {
        transaction_id: returned
            .transaction_id
            .clone()
            .filter(|t| t.starts_with("txn_") && t.len() <= 64),
        order_id: Some(order_ref),
        expected_amount: Some(order.amount.to_string()),
        expected_currency: Some(order.amount.currency()),
        accept_partially_refunded: false,
    };
    let ctx = match payments::verify(&state, &caller, query).await {
        Ok(outcome) if outcome.verified => context! {
            verdict => "verified",
            order_id,
            transaction_id => &outcome.transaction.row.id,
            order => order_view(&order),
        },
        Ok(outcome) => context! {
            verdict => "mismatch",
            order_id,
            mismatches => outcome.mismatches.join(", "),
        },
        Err(_) => context! { verdict => "not_found", order_id },
    };
    page("demo/confirmation.html", ctx, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_unique_skus_and_positive_prices() {
        for (i, p) in CATALOGUE.iter().enumerate() {
            assert!(p.price > 0);
            assert!(CATALOGUE[i + 1..].iter().all(|q| q.sku != p.sku));
            assert!(!p.sku.contains(['.', '_']), "cookie separators");
        }
    }

    #[test]
    fn the_widget_origin_never_reflects_a_foreign_host_header() {
        let shop = DemoShop {
            publishable_key: None,
            secret_key: None,
            widget_url: None,
            own_origin: "http://127.0.0.1:8080".into(),
            orders: Mutex::new(HashMap::new()),
            next: Mutex::new(0),
        };
        let origin = |host: &str| {
            let req = Request::builder().header(header::HOST, host).finish();
            widget_origin(&shop, &req)
        };
        assert_eq!(origin("127.0.0.1:9000"), "http://localhost:9000");
        assert_eq!(origin("localhost:9000"), "http://127.0.0.1:9000");
        for evil in [
            "evil.example",
            "127.0.0.1:80\"><script>",
            "localhost.evil.example:80",
            "127.0.0.1:80/x",
        ] {
            assert_eq!(origin(evil), "http://127.0.0.1:8080", "{evil}");
        }
    }
}
