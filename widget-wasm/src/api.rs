//! Calls to the SuperPayment API from the iframe (same origin, publishable key).
//!
//! Bodies are built as JS objects and read back field by field through `Reflect`: the
//! browser's own JSON parser does the work, and no JSON or serde code is compiled in.
//! Requests go straight through the browser's `fetch` (web-sys), without an HTTP client
//! crate whose URL and error handling would bring formatting code into the Wasm.
use js_sys::{Array, Object, Reflect, JSON};
use superpayment_core::{Currency, Money};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, RequestInit, Response};

use crate::{
    config::Config,
    flow::{Attempt, Failure, PayAnswer, Receipt, Saved, VoucherArg},
};

/// A property of a parsed JSON value (`undefined` when absent).
fn field(value: &JsValue, name: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn text(value: &JsValue, name: &str) -> Option<String> {
    field(value, name).as_string()
}

fn list(value: &JsValue, name: &str) -> Vec<JsValue> {
    let v = field(value, name);
    if Array::is_array(&v) {
        Array::from(&v).iter().collect()
    } else {
        Vec::new()
    }
}

/// The fields of an error envelope `{"error": {...}}` the widget acts on.
#[derive(Default)]
struct ErrorDetail {
    code: String,
    param: Option<String>,
    transaction_id: Option<String>,
    retry_after: Option<u32>,
    request_id: String,
}

/// An amount from the API, where zero is a legitimate balance.
pub fn parse_money(amount: &str, currency: &str) -> Option<Money> {
    let currency: Currency = currency.parse().ok()?;
    if !amount.is_empty() && amount.bytes().all(|b| b == b'0' || b == b'.') {
        return Some(Money::zero(currency));
    }
    Money::parse(amount, currency).ok()
}

/// A JS object from key/value pairs.
pub fn object(pairs: &[(&str, JsValue)]) -> Object {
    let obj = Object::new();
    for (k, v) in pairs {
        // Reflect::set only fails on frozen objects; this one is fresh.
        let _ = Reflect::set(&obj, &JsValue::from_str(k), v);
    }
    obj
}

fn offline_or_network() -> Failure {
    let online = web_sys::window().is_none_or(|w| w.navigator().on_line());
    if online {
        Failure::Network
    } else {
        Failure::Offline
    }
}

async fn post(
    key: &str,
    path: &str,
    body: &JsValue,
    idempotency_key: Option<&str>,
) -> Result<(u16, JsValue), Failure> {
    let text: String = JSON::stringify(body)
        .map(String::from)
        .map_err(|_| Failure::Server {
            reference: String::new(),
        })?;
    let window = web_sys::window().ok_or(Failure::Network)?;
    let headers = Headers::new().map_err(|_| Failure::Network)?;
    // Setting a header only fails for a forbidden name or a value with line breaks; these
    // are constants and a key, token or UUID that passed the core's format checks.
    let _ = headers.set("Authorization", &["Bearer ", key].concat());
    let _ = headers.set("Content-Type", "application/json");
    if let Some(k) = idempotency_key {
        let _ = headers.set("Idempotency-Key", k);
    }
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(&text));
    // fetch rejects only when no answer arrived; every HTTP status resolves.
    let response: Response = JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(|_| offline_or_network())?
        .unchecked_into();
    let status = response.status();
    let body = response.text().map_err(|_| offline_or_network())?;
    let text = JsFuture::from(body)
        .await
        .map_err(|_| offline_or_network())?
        .as_string()
        .unwrap_or_default();
    Ok((status, JSON::parse(&text).unwrap_or(JsValue::NULL)))
}

fn error_of(body: &JsValue) -> ErrorDetail {
    let e = field(body, "error");
    ErrorDetail {
        code: text(&e, "code").unwrap_or_default(),
        param: text(&e, "param"),
        transaction_id: text(&e, "transaction_id"),
        retry_after: field(&e, "retry_after").as_f64().map(|s| s as u32),
        request_id: text(&e, "request_id").unwrap_or_default(),
    }
}

fn failure_of(status: u16, e: &ErrorDetail) -> Failure {
    if status == 429 {
        Failure::RateLimited {
            seconds: e.retry_after.unwrap_or(5).max(1),
        }
    } else {
        Failure::Server {
            reference: e.request_id.clone(),
        }
    }
}

/// `POST /api/vouchers/check`: (valid, decline code, balance, PIN required); `None` when
/// the API refuses the publishable key itself (401, 403), which no retry mends.
pub async fn check(
    key: &str,
    code: &str,
) -> Option<Result<(bool, Option<String>, Option<Money>, bool), Failure>> {
    let body = object(&[("code", JsValue::from_str(code))]);
    let (status, json) = match post(key, "/api/vouchers/check", &body, None).await {
        Ok(reply) => reply,
        Err(failure) => return Some(Err(failure)),
    };
    Some(match status {
        200 => {
            let balance = match (text(&json, "balance"), text(&json, "currency")) {
                (Some(b), Some(c)) => parse_money(&b, &c),
                _ => None,
            };
            let valid = field(&json, "valid").as_bool().unwrap_or(false);
            let pin_required = field(&json, "pin_required").as_bool().unwrap_or(false);
            Ok((
                valid && balance.is_some(),
                text(&json, "reason"),
                balance,
                pin_required,
            ))
        }
        // The code passed the same checks locally; a 400 means the server refuses it anyway.
        400 => Ok((false, Some(error_of(&json).code), None, false)),
        401 | 403 => return None,
        _ => Err(failure_of(status, &error_of(&json))),
    })
}

/// What a payment request came back with.
pub enum PayReply {
    /// A definite answer, with the vouchers the server remembered.
    Answer(PayAnswer, Vec<Saved>),
    /// The same Idempotency-Key is still being processed: ask again shortly.
    InFlight,
}

/// `POST /api/process-payment/` for one attempt.
pub async fn pay(cfg: &Config, attempt: &Attempt) -> PayReply {
    let vouchers = Array::new();
    for v in &attempt.vouchers {
        let (item, pin) = match v {
            VoucherArg::Code(code, pin) => (object(&[("code", JsValue::from_str(code))]), pin),
            VoucherArg::Token(token, pin) => (object(&[("token", JsValue::from_str(token))]), pin),
        };
        if let Some(pin) = pin {
            let _ = Reflect::set(&item, &JsValue::from_str("pin"), &JsValue::from_str(pin));
        }
        vouchers.push(&item);
    }
    let body = object(&[
        ("order_id", JsValue::from_str(cfg.order_id.as_str())),
        ("amount", JsValue::from_str(&cfg.amount.to_wire())),
        ("currency", JsValue::from_str(cfg.amount.currency().code())),
        ("vouchers", vouchers.into()),
        ("remember", JsValue::from_bool(attempt.remember)),
    ]);
    if cfg.manual_capture {
        let _ = Reflect::set(&body, &JsValue::from_str("capture"), &JsValue::FALSE);
    }
    if let Some(sig) = &cfg.signature {
        let _ = Reflect::set(
            &body,
            &JsValue::from_str("signature"),
            &JsValue::from_str(sig),
        );
    }
    let (status, json) = match post(
        &cfg.key,
        "/api/process-payment/",
        &body,
        Some(attempt.key.as_str()).filter(|k| !k.is_empty()),
    )
    .await
    {
        Ok(reply) => reply,
        Err(failure) => return PayReply::Answer(PayAnswer::Failed(failure), Vec::new()),
    };
    let currency = cfg.amount.currency().code();
    if status == 201 {
        let remaining = list(&json, "vouchers")
            .iter()
            .filter_map(|v| {
                let balance = parse_money(&text(v, "remaining_balance")?, currency)?;
                Some((text(v, "last4")?, balance))
            })
            .collect();
        let saved = list(&json, "remembered_vouchers")
            .iter()
            .filter_map(|r| {
                Some(Saved {
                    token: text(r, "token")?,
                    last4: text(r, "last4")?,
                    balance: parse_money(&text(r, "balance")?, &text(r, "currency")?)?,
                    // Set by the caller, which knows which vouchers were sent with a PIN.
                    pin: false,
                })
            })
            .collect();
        let receipt = Receipt {
            transaction_id: text(&json, "id").unwrap_or_default(),
            remaining,
            already_paid: false,
        };
        return PayReply::Answer(PayAnswer::Paid(receipt), saved);
    }
    let e = error_of(&json);
    let answer = match status {
        402 => PayAnswer::Declined {
            code: e.code,
            param: e.param,
        },
        409 if e.code == "order_already_paid" => PayAnswer::AlreadyPaid {
            transaction_id: e.transaction_id.unwrap_or_default(),
        },
        409 => return PayReply::InFlight,
        400 => PayAnswer::Invalid {
            code: e.code,
            param: e.param,
        },
        401 | 403 => PayAnswer::NotAllowed,
        _ => PayAnswer::Failed(failure_of(status, &e)),
    };
    PayReply::Answer(answer, Vec::new())
}

fn token_list(tokens: &[String]) -> Object {
    let list = Array::new();
    for t in tokens {
        list.push(&JsValue::from_str(t));
    }
    object(&[("tokens", list.into())])
}

/// `POST /api/remembered-vouchers/lookup`: the current balance of each token, in order;
/// `None` for a token that can no longer pay.
pub async fn lookup(key: &str, tokens: &[String]) -> Result<Vec<Option<Money>>, Failure> {
    let body: JsValue = token_list(tokens).into();
    let (status, json) = post(key, "/api/remembered-vouchers/lookup", &body, None).await?;
    if status != 200 {
        return Err(failure_of(status, &error_of(&json)));
    }
    Ok(list(&json, "vouchers")
        .iter()
        .map(|v| {
            let balance = parse_money(&text(v, "balance")?, &text(v, "currency")?)?;
            let valid = field(v, "valid").as_bool().unwrap_or(false);
            (valid && !balance.is_zero()).then_some(balance)
        })
        .collect())
}

/// `POST /api/remembered-vouchers/revoke`.
pub async fn revoke(key: &str, tokens: &[String]) -> Result<(), Failure> {
    let body: JsValue = token_list(tokens).into();
    let (status, json) = post(key, "/api/remembered-vouchers/revoke", &body, None).await?;
    if status == 200 {
        Ok(())
    } else {
        Err(failure_of(status, &error_of(&json)))
    }
}
