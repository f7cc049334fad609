//! Which errors each operation can answer, with one real example of each code.
//!
//! The spec's error examples are generated from this catalogue ([`annotate`]), and every
//! error the API answers is checked against it ([`check_answer`]): an undocumented code is
//! logged as an error (the API test suite fails on any such line). The examples are built
//! by the same code that answers: domain errors' `examples()`, and the validators run on
//! typical mistakes, so their messages are the ones a client gets.
use std::collections::BTreeMap;

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::OperationId;
use serde_json::{json, Value};
use superpayment_core::{
    validate_payment_request, validate_voucher_check, Currency, FieldError, KeyKind,
    PaymentRequestInput, VoucherInput,
};

use super::error::{ApiError, ErrorBody};
use crate::{
    auth::AuthError,
    checkout::CheckoutError,
    keys::KeyError,
    lifecycle::LifecycleError,
    payments::holds::HoldError,
    payments::{amount_errors, PayError, VerifyError, EXAMPLE_TRANSACTION_ID},
    refunds::RefundError,
    transactions::TransactionsError,
    webhooks::WebhookError,
};

/// The request id the examples show.
const EXAMPLE_REQUEST_ID: &str = "req_4f1c2b0e8d6a4a51b3c7e9d2f0a1b2c3";

/// Codes answered before any operation is chosen (unknown path, wrong method, a body over
/// the limit); they are documented once, in the API description, not per operation.
pub const TRANSPORT_CODES: &[&str] = &[
    "resource_missing",
    "method_not_allowed",
    "body_too_large",
    "length_required",
];

fn with_auth(kind: KeyKind, mut errors: Vec<ApiError>) -> Vec<ApiError> {
    errors.extend(AuthError::examples(kind).map(ApiError::from));
    // Answered by the framework for a header without the Bearer scheme.
    errors.push(ApiError::Unauthenticated {
        code: "invalid_authorization_scheme",
    });
    errors.extend(gateway_refusals());
    errors.push(internal());
    errors.push(unavailable());
    errors.push(ApiError::RequestTimeout);
    errors
}

fn with_admin(mut errors: Vec<ApiError>) -> Vec<ApiError> {
    errors.push(AuthError::InvalidAdminToken.into());
    errors.extend(gateway_refusals());
    errors.push(internal());
    errors.push(unavailable());
    errors.push(ApiError::RequestTimeout);
    errors
}

/// What the gateway answers before any operation runs: a request limit passed
/// (`crate::gateway::limits`), or a client address locked out after too many bad
/// credentials.
fn gateway_refusals() -> [ApiError; 2] {
    [
        ApiError::RateLimited {
            retry_after: std::time::Duration::from_secs(3),
        },
        ApiError::TooManyFailedAuthentications {
            retry_after: std::time::Duration::from_secs(600),
        },
    ]
}

fn internal() -> ApiError {
    ApiError::Internal(anyhow::anyhow!("an example of an unexpected error"))
}

/// Every operation reads the database (its key at least), so any can find it unreachable.
fn unavailable() -> ApiError {
    ApiError::Internal(crate::store::unavailable_example())
}

/// What any JSON body can be refused for; `money` adds the refusal of amounts sent as
/// JSON numbers.
fn body(money: bool) -> Vec<ApiError> {
    let mut out = vec![
        ApiError::MalformedBody("expected value at line 1 column 1".into()),
        super::unknown_field_error("expected_ammount".into()),
        ApiError::UnsupportedMediaType,
    ];
    if money {
        out.push(ApiError::AmountNotAString);
    }
    out
}

fn fields(errors: impl IntoIterator<Item = FieldError>) -> impl Iterator<Item = ApiError> {
    errors
        .into_iter()
        .map(|e| ApiError::InvalidRequest(vec![e]))
}

/// What the payment validator says about typical mistakes.
fn payment_field_errors() -> Vec<FieldError> {
    let code = |c: &str| VoucherInput {
        code: Some(c.into()),
        token: None,
    };
    let inputs = [
        PaymentRequestInput {
            order_id: String::new(),
            amount: "10.005".into(),
            currency: "EUR".into(),
            vouchers: vec![],
        },
        PaymentRequestInput {
            order_id: "ORDER_1".into(),
            amount: String::new(),
            currency: String::new(),
            vouchers: vec![code("TEST-4242-4242-424X")],
        },
        PaymentRequestInput {
            order_id: "x".repeat(65),
            amount: "-1".into(),
            currency: "XXX".into(),
            vouchers: vec![
                code("ABCD"),
                code("TEST-4242-4242-4243"),
                code("TEST-4242-4242-42U!"),
            ],
        },
        PaymentRequestInput {
            order_id: "ORDER 1".into(),
            amount: "ten".into(),
            currency: "EUR".into(),
            vouchers: vec![
                VoucherInput {
                    code: Some("TEST-4242-4242-424X".into()),
                    token: Some("vt_x".into()),
                },
                VoucherInput::default(),
                VoucherInput {
                    code: None,
                    token: Some("not-a-token".into()),
                },
            ],
        },
        PaymentRequestInput {
            order_id: "ORDER_1".into(),
            amount: "0".into(),
            currency: "EUR".into(),
            vouchers: vec![code("TEST-4242-4242-424X"); 11],
        },
        PaymentRequestInput {
            order_id: "ORDER_1".into(),
            amount: "100000000000".into(),
            currency: "EUR".into(),
            vouchers: vec![code("")],
        },
    ];
    inputs
        .iter()
        .filter_map(|i| validate_payment_request(i).err())
        .flatten()
        .collect()
}

/// What the code validator says about typical mistakes.
fn code_field_errors() -> Vec<FieldError> {
    ["", "ABCD", "TEST-4242-4242-4243", "TEST-4242-4242-42U!"]
        .into_iter()
        .filter_map(|c| validate_voucher_check(c).err())
        .collect()
}

fn limit_errors() -> Vec<ApiError> {
    super::webhooks::page_limit(Some(0))
        .err()
        .into_iter()
        .collect()
}

fn not_found(what: &'static str) -> ApiError {
    ApiError::NotFound(what)
}

/// The errors operation `operation_id` can answer; `None` for an operation this catalogue
/// does not know (a test fails on it).
pub fn errors_of(operation_id: &str) -> Option<Vec<ApiError>> {
    use KeyKind::{Publishable, Secret};
    Some(match operation_id {
        "processPayment" => with_auth(Publishable, {
            let mut e = body(true);
            e.extend(fields(payment_field_errors()));
            e.extend(PayError::examples().into_iter().map(ApiError::from));
            e
        }),
        "checkVoucher" => with_auth(Publishable, {
            let mut e = body(false);
            e.extend(fields(code_field_errors()));
            e.push(ApiError::RateLimited {
                retry_after: std::time::Duration::from_secs(12),
            });
            e.push(ApiError::TooManyFailedAttempts {
                retry_after: std::time::Duration::from_secs(600),
            });
            e
        }),
        "verifyTransaction" => with_auth(Secret, {
            let mut e = body(true);
            e.extend(VerifyError::examples().into_iter().map(ApiError::from));
            e.extend(fields(
                ["", "ORDER 1"]
                    .into_iter()
                    .filter_map(|o| superpayment_core::OrderId::parse(o).err())
                    .map(|err| FieldError::new("order_id", err.code(), err.to_string())),
            ));
            e.extend(fields("XXX".parse::<Currency>().err().map(|err| {
                FieldError::new("expected_currency", err.code(), err.to_string())
            })));
            e
        }),
        "listTransactions" => with_auth(Secret, {
            let mut e = limit_errors();
            e.extend(TransactionsError::filter_examples().map(ApiError::from));
            e
        }),
        "getTransaction" => with_auth(Secret, vec![TransactionsError::NotFound.into()]),
        "createRefund" => with_auth(Secret, {
            let mut e = body(true);
            e.extend(RefundError::examples().into_iter().map(ApiError::from));
            e
        }),
        "captureTransaction" => with_auth(Secret, {
            let mut e = body(true);
            e.extend(
                HoldError::capture_examples()
                    .into_iter()
                    .map(ApiError::from),
            );
            e
        }),
        "cancelTransaction" => with_auth(Secret, {
            let mut e = body(true);
            e.extend(HoldError::cancel_examples().into_iter().map(ApiError::from));
            e
        }),
        "lookupRememberedVouchers" | "revokeRememberedVouchers" => with_auth(Publishable, {
            let mut e = body(false);
            e.extend(CheckoutError::token_examples().map(ApiError::from));
            e
        }),
        "getCheckoutSettings" => with_auth(Secret, vec![]),
        "updateCheckoutSettings" => with_auth(Secret, {
            let mut e = body(false);
            e.extend(CheckoutError::origin_examples().map(ApiError::from));
            e
        }),
        "listKeys" => with_auth(Secret, vec![]),
        "createKey" => with_auth(Secret, {
            let mut e = body(false);
            e.push(KeyError::InvalidKind.into());
            e
        }),
        "rollKey" => with_auth(Secret, {
            let mut e = body(false);
            e.extend(
                [
                    KeyError::OverlapTooLong,
                    KeyError::Inactive,
                    KeyError::NotFound,
                ]
                .map(ApiError::from),
            );
            e
        }),
        "revokeKey" => with_auth(Secret, vec![KeyError::NotFound.into()]),
        "setWebhookEndpoint" => with_auth(Secret, {
            let mut e = body(false);
            e.extend(WebhookError::url_examples().map(ApiError::from));
            e
        }),
        "getWebhookEndpoint" => with_auth(Secret, vec![WebhookError::EndpointNotFound.into()]),
        "rotateWebhookSecret" => with_auth(Secret, {
            let mut e = body(false);
            e.extend(
                [WebhookError::OverlapTooLong, WebhookError::EndpointNotFound].map(ApiError::from),
            );
            e
        }),
        "sendTestWebhook" => with_auth(
            Secret,
            [
                WebhookError::EndpointDisabled,
                WebhookError::EndpointNotFound,
            ]
            .map(ApiError::from)
            .into(),
        ),
        "listEvents" => with_auth(Secret, limit_errors()),
        "getEvent" => with_auth(Secret, vec![WebhookError::EventNotFound.into()]),
        "redeliverEvent" => with_auth(
            Secret,
            [WebhookError::EventNotFound, WebhookError::NoEnabledEndpoint]
                .map(ApiError::from)
                .into(),
        ),
        "adminCreateMerchant" => with_admin({
            let mut e = body(false);
            e.extend(crate::admin::AdminError::merchant_examples().map(ApiError::from));
            e.push(super::admin::invalid_mode_example());
            e
        }),
        "adminListMerchants" => with_admin(vec![]),
        "adminSetNotifyEmail" => with_admin({
            let mut e = body(false);
            e.extend(crate::admin::AdminError::notify_email_examples().map(ApiError::from));
            e
        }),
        "adminIssueVouchers" => with_admin({
            let mut e = body(true);
            e.extend(crate::admin::AdminError::issue_examples().map(ApiError::from));
            e.extend(fields(crate::payments::kinds::examples()));
            e.push(super::admin::invalid_mode_example());
            e.extend(fields(amount_errors("amount", Currency::EUR)));
            e.extend(fields("XXX".parse::<Currency>().err().map(|err| {
                FieldError::new("currency", err.code(), err.to_string())
            })));
            e
        }),
        "adminBlockVoucher" => with_admin({
            let mut e = body(false);
            e.extend(fields(code_field_errors()));
            e.extend(crate::admin::AdminError::block_examples().map(ApiError::from));
            e
        }),
        "createVoucherActivity" => with_auth(Secret, {
            let mut e = body(true);
            e.extend(LifecycleError::examples().into_iter().map(ApiError::from));
            e
        }),
        "listVoucherActivities" => with_auth(Secret, vec![not_found("voucher")]),
        "adminCreateVoucherActivity" => with_admin({
            let mut e = body(true);
            e.extend(LifecycleError::examples().into_iter().map(ApiError::from));
            e
        }),
        "adminListVoucherActivities" => with_admin(vec![not_found("voucher")]),
        "adminRevokeRememberedVouchers" => with_admin({
            let mut e = body(false);
            e.extend(fields(code_field_errors()));
            e.push(not_found("voucher"));
            e
        }),
        "adminLiabilityReport" | "adminCommissionReport" => with_admin(
            crate::reports::ReportError::examples()
                .map(ApiError::from)
                .collect(),
        ),
        "adminSettlementReport" => with_admin({
            let mut e: Vec<ApiError> = crate::reports::ReportError::examples()
                .map(ApiError::from)
                .collect();
            // `lines` is a boolean the framework parses.
            e.push(ApiError::MalformedBody(
                "failed to parse parameter `lines`: expected boolean".into(),
            ));
            e
        }),
        "adminRecogniseBreakage" => with_admin({
            let mut e = body(false);
            e.extend(
                crate::reports::ReportError::examples()
                    .map(ApiError::from)
                    .filter(|e| e.to_body().error.code == "invalid_mode"),
            );
            e
        }),
        "adminCreatePayout" => with_admin({
            let mut e = body(true);
            e.extend(
                crate::reports::payouts::PayoutError::examples()
                    .into_iter()
                    .map(ApiError::from),
            );
            e
        }),
        _ => return None,
    })
}

/// The example body of one error, with a fixed request id.
fn example_body(err: &ApiError) -> ErrorBody {
    let mut body = err.body();
    body.error.request_id = EXAMPLE_REQUEST_ID.into();
    if body.error.code == "order_already_paid" {
        body.error.transaction_id = Some(EXAMPLE_TRANSACTION_ID.into());
    }
    body
}

/// Writes each operation's examples into its documented error responses, one per code,
/// and returns what does not fit: an operation without a catalogue, or a catalogued code
/// whose status the operation does not document. The spec test fails on any.
pub fn annotate(doc: &mut Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return problems;
    };
    for (path, item) in paths.iter_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            let Some(id) = op
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            if op["tags"] == json!(["Operations"]) {
                continue;
            }
            let Some(errors) = errors_of(&id) else {
                problems.push(format!("{method} {path} ({id}) has no error catalogue"));
                continue;
            };
            let mut by_status: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
            for err in &errors {
                let body = example_body(err);
                let code = body.error.code.clone();
                let value = serde_json::to_value(&body).expect("error bodies serialise");
                by_status
                    .entry(err.status().to_string())
                    .or_default()
                    .entry(code.clone())
                    .or_insert_with(|| json!({"summary": code, "value": value}));
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, examples) in by_status {
                let Some(content) = responses
                    .get_mut(&status)
                    .and_then(|r| r.get_mut("content"))
                    .and_then(Value::as_object_mut)
                else {
                    problems.push(format!(
                        "{method} {path} ({id}) can answer {status} ({}) but does not document it",
                        examples.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                    continue;
                };
                for media in content.values_mut() {
                    media["examples"] = Value::Object(examples.clone());
                }
            }
        }
    }
    problems
}

/// The codes each operation documents, per status: what [`check_answer`] compares with.
pub struct Documented(BTreeMap<String, BTreeMap<u16, Vec<String>>>);

impl Documented {
    /// Read once from the annotated spec ([`annotate`] wrote every catalogued code into
    /// its operation's error examples): what is checked is what the spec says.
    pub fn build(doc: &Value) -> Self {
        let ops = doc["paths"]
            .as_object()
            .into_iter()
            .flat_map(|paths| paths.values())
            .filter_map(Value::as_object)
            .flat_map(|ops| ops.values());
        let mut map = BTreeMap::new();
        for op in ops {
            let Some(id) = op["operationId"].as_str() else {
                continue;
            };
            let mut statuses: BTreeMap<u16, Vec<String>> = BTreeMap::new();
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let Ok(status) = status.parse::<u16>() else {
                    continue;
                };
                let codes = response["content"]
                    .as_object()
                    .into_iter()
                    .flat_map(|content| content.values())
                    .filter_map(|media| media["examples"].as_object())
                    .flat_map(|examples| examples.keys().cloned());
                statuses.entry(status).or_default().extend(codes);
            }
            map.insert(id.to_owned(), statuses);
        }
        Documented(map)
    }

    /// Whether `code` with `status` is documented for `operation_id` (or, without an
    /// operation, among the transport codes).
    pub fn allows(&self, operation_id: Option<&str>, status: u16, code: &str) -> bool {
        match operation_id {
            None => TRANSPORT_CODES.contains(&code),
            Some(id) => {
                TRANSPORT_CODES.contains(&code) && matches!(status, 404 | 405 | 411 | 413)
                    || self
                        .0
                        .get(id)
                        .and_then(|s| s.get(&status))
                        .is_some_and(|codes| codes.iter().any(|c| c == code))
            }
        }
    }
}

/// Logs an error for an answer whose code is not documented for its operation.
pub fn check_answer(documented: &Documented, operation_id: Option<&str>, status: u16, code: &str) {
    if documented.allows(operation_id, status, code) {
        return;
    }
    tracing::error!(
        operation = operation_id.unwrap_or("-"),
        status,
        code,
        "error code not documented for this operation"
    );
}

/// Checks an error answer against the catalogue ([`check_answer`]) and passes it on
/// unchanged. Error bodies are small JSON documents, read whole here.
pub async fn checked(documented: &Documented, mut resp: Response) -> Response {
    let status = resp.status().as_u16();
    if status < 400 {
        return resp;
    }
    let operation = resp.data::<OperationId>().map(|id| id.0);
    let bytes = match resp.take_body().into_bytes().await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "reading an error body to check it failed");
            return resp;
        }
    };
    let code = serde_json::from_slice::<ErrorBody>(&bytes)
        .map(|b| b.error.code)
        .unwrap_or_else(|_| "(not the error shape)".into());
    check_answer(documented, operation, status, &code);
    resp.set_body(bytes);
    resp
}

/// Middleware running [`checked`] on every answer of the API.
pub struct CheckAnswers(pub Arc<Documented>);

impl<E: Endpoint + 'static> Middleware<E> for CheckAnswers {
    type Output = CheckAnswersEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        CheckAnswersEndpoint {
            inner,
            documented: self.0.clone(),
        }
    }
}

/// The endpoint produced by [`CheckAnswers`].
pub struct CheckAnswersEndpoint<E> {
    inner: E,
    documented: Arc<Documented>,
}

impl<E: Endpoint + 'static> Endpoint for CheckAnswersEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let resp = self.inner.call(req).await?.into_response();
        Ok(checked(&self.documented, resp).await)
    }
}
