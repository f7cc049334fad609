//! The checkout iframe document, the loader and the content-hashed widget assets.
//!
//! `scripts/build-widget` writes `www/pkg/` (hashed file names) and `www/pkg/manifest.json`
//! (logical name -> hashed name). The committed `www/checkout.html` is a template whose
//! `{{name}}` placeholders are filled from the manifest here, so the document always names
//! assets that exist (and, with WWW_DIR, a rebuild is picked up without restarting).
use crate::telemetry::RouteLabel;
use std::{
    sync::{Arc, Mutex},
    time::SystemTime,
};

use poem::{
    get, handler,
    http::{header, StatusCode},
    middleware::SetHeader,
    web::{Data, Query},
    EndpointExt, IntoResponse, Response, Route,
};
use serde::Deserialize;

use super::www::Www;
use crate::{checkout, state::AppState};

/// Hashed assets never change under their name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Entry points (the loader and the document) must pick up a new build quickly.
const SHORT: &str = "public, max-age=300";

/// Where the widget's files are, and the last document built from them.
pub struct WidgetFiles {
    www: Www,
    cache: Mutex<Option<(Stamps, Arc<Built>)>>,
}

/// The pieces of a build that requests need.
pub struct Built {
    /// `checkout.html` with every placeholder filled.
    pub document: String,
    /// `checkout-refused.html` filled likewise: what a page the merchant did not allow
    /// gets instead of the checkout (`None` for a build that predates it).
    pub refused: Option<String>,
    /// The minified loader's file name under `pkg/`, if built.
    pub loader: Option<String>,
}

const TEMPLATE: &str = "checkout.html";
const REFUSED_TEMPLATE: &str = "checkout-refused.html";
const MANIFEST: &str = "pkg/manifest.json";

/// When the two templates and the manifest were last changed.
type Stamps = (SystemTime, SystemTime, Option<SystemTime>);

impl WidgetFiles {
    fn new(www: &Www) -> WidgetFiles {
        WidgetFiles {
            www: www.clone(),
            cache: Mutex::new(None),
        }
    }

    /// The current build, re-read when the template or the manifest changed.
    fn built(&self) -> Option<Arc<Built>> {
        let stamps = (
            self.www.stamp(TEMPLATE)?,
            self.www.stamp(MANIFEST)?,
            self.www.stamp(REFUSED_TEMPLATE),
        );
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached, built)) = cache.as_ref() {
            if *cached == stamps {
                return Some(built.clone());
            }
        }
        let names: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&self.www.read(MANIFEST)?).ok()?;
        let fill = |template: &str| -> Option<String> {
            let mut document = String::from_utf8(self.www.read(template)?.into_owned()).ok()?;
            for (logical, hashed) in &names {
                if let Some(hashed) = hashed.as_str() {
                    document = document.replace(&format!("{{{{{logical}}}}}"), hashed);
                }
            }
            if document.contains("{{") {
                tracing::error!(
                    template,
                    "a template names an asset the build manifest lacks"
                );
                return None;
            }
            Some(document)
        };
        let built = Arc::new(Built {
            document: fill(TEMPLATE)?,
            refused: fill(REFUSED_TEMPLATE),
            loader: names
                .get("widget.js")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        });
        *cache = Some((stamps, built.clone()));
        Some(built)
    }
}

/// Adds `/checkout.html`, `/widget.js` and `/pkg/*`.
pub fn mount(route: Route, www: &Www) -> Route {
    let files = Arc::new(WidgetFiles::new(www));
    if files.built().is_none() {
        tracing::warn!(
            searched = %www.describe(),
            "the checkout widget is not built (no pkg/manifest.json): run scripts/build-widget"
        );
    }
    route
        .at(
            "/checkout.html",
            get(checkout_document)
                .data(files.clone())
                .with(RouteLabel("/checkout.html")),
        )
        .at(
            "/widget.js",
            get(loader).data(files).with(RouteLabel("/widget.js")),
        )
        .nest(
            "/pkg",
            www.endpoint("pkg")
                .with(SetHeader::new().overriding(header::CACHE_CONTROL, IMMUTABLE))
                .with(RouteLabel("/pkg/*")),
        )
}

#[derive(Deserialize)]
struct CheckoutQuery {
    /// The publishable key the loader put in the URL.
    k: Option<String>,
    /// The embedding page's origin, as the loader read it from `location.origin`.
    p: Option<String>,
}

/// The iframe document. Its CSP allows scripts and styles from this origin only (plus
/// Wasm compilation), requests to this origin only, and, when the merchant configured
/// allowed origins, framing by those origins only.
///
/// A page whose own origin (`p`) is not allowed would only get the browser's error page,
/// and no word to the loader: it gets a notice instead, which tells it
/// `origin_not_allowed`. The notice holds no form, so any page may frame it. A page that
/// misstates its origin gets the checkout, which `frame-ancestors` keeps from it.
#[handler]
async fn checkout_document(
    files: Data<&Arc<WidgetFiles>>,
    state: Data<&AppState>,
    query: Query<CheckoutQuery>,
) -> Response {
    let Some(built) = files.built() else {
        return not_built(&files.www, &[TEMPLATE, MANIFEST]);
    };
    let allowed = match query.k.as_deref() {
        Some(key) => checkout::settings::embedding_origins(&state, key).await,
        None => Vec::new(),
    };
    let refused = query
        .p
        .as_deref()
        .is_some_and(|page| checkout::settings::frame_refused(&allowed, page));
    if let (true, Some(notice)) = (refused, &built.refused) {
        return html(
            notice.clone(),
            "default-src 'none'; script-src 'self'; style-src 'self'; base-uri 'none'; \
             form-action 'none'"
                .to_owned(),
        );
    }
    let mut csp = String::from(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
    );
    if !allowed.is_empty() {
        csp.push_str("; frame-ancestors ");
        csp.push_str(&allowed.join(" "));
    }
    html(built.document.clone(), csp)
}

fn html(document: String, csp: String) -> Response {
    document
        .with_content_type("text/html; charset=utf-8")
        .with_header(header::CONTENT_SECURITY_POLICY, csp)
        // Short: a new build or new allowed origins show within a minute, and a returning
        // shopper's checkout skips the round trip for the document.
        .with_header(header::CACHE_CONTROL, "private, max-age=60")
        .with_header(header::REFERRER_POLICY, "no-referrer")
        .with_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .into_response()
}

/// The loader merchants embed: the minified build when there is one, else the source.
#[handler]
async fn loader(files: Data<&Arc<WidgetFiles>>) -> Response {
    let path = match files.built().and_then(|b| b.loader.clone()) {
        Some(name) => format!("pkg/{name}"),
        None => "widget.js".to_owned(),
    };
    match files.www.read(&path) {
        Some(body) => body
            .into_owned()
            .with_content_type("text/javascript; charset=utf-8")
            .with_header(header::CACHE_CONTROL, SHORT)
            .with_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            // Any page may embed the loader, including with crossorigin/integrity.
            .with_header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
            .into_response(),
        None => not_built(&files.www, &[MANIFEST, "widget.js"]),
    }
}

/// Says which files were looked for where: a server started from the wrong folder, or
/// with the wrong WWW_DIR, must be told apart from a widget that was never built.
fn not_built(www: &Www, wanted: &[&str]) -> Response {
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|f| www.stamp(f).is_none())
        .collect();
    let todo = match www {
        Www::Embedded => "run scripts/build-widget, then build the server again",
        Www::Dir(_) => "run scripts/build-widget",
    };
    format!(
        "The checkout widget is not built: {todo}. Looked for {} in {}.",
        if missing.is_empty() {
            wanted.join(", ")
        } else {
            missing.join(", ")
        },
        www.describe()
    )
    .with_status(StatusCode::SERVICE_UNAVAILABLE)
    .with_content_type("text/plain; charset=utf-8")
    .into_response()
}
