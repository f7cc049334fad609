//! Payment request validation: the one rule set both the widget (Wasm) and the backend run.

use core::fmt;

use crate::currency::Currency;
use crate::money::{lex_positive_amount, Money};
use crate::order::OrderId;
use crate::voucher::VoucherCode;

/// The most vouchers one payment may combine.
pub const MAX_VOUCHERS_PER_PAYMENT: usize = 10;

const TOKEN_PREFIX: &str = "vt_";
const TOKEN_MIN_LEN: usize = 8;
const TOKEN_MAX_LEN: usize = 128;

/// A payment request as it arrives, before anything is trusted.
///
/// Missing JSON fields deserialise as empty, so they are reported by
/// [`validate_payment_request`] with the same field errors as empty values instead of
/// failing deserialisation with a less helpful message.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct PaymentRequestInput {
    /// The merchant's order id.
    pub order_id: String,
    /// Decimal amount string, e.g. `"99.00"`.
    pub amount: String,
    /// ISO 4217 code, e.g. `"EUR"`.
    pub currency: String,
    /// The vouchers to pay with, in the order they should be drawn on.
    pub vouchers: Vec<VoucherInput>,
}

/// One voucher as sent: exactly one of a typed `code` or a `token` for a saved voucher.
#[derive(Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct VoucherInput {
    /// The voucher code as the shopper typed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A `vt_…` token standing for a voucher the shopper saved earlier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for VoucherInput {
    /// Both fields are bearer secrets and, unvalidated, may not even be codes, so neither
    /// is shown; only whether each was sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VoucherInput")
            .field("code", &self.code.as_ref().map(|_| Redacted))
            .field("token", &self.token.as_ref().map(|_| Redacted))
            .finish()
    }
}

/// A validated voucher reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum VoucherRef {
    /// A code typed by the shopper, checksum verified.
    Code(VoucherCode),
    /// A well-formed `vt_…` token; whether it exists is for the backend to find out.
    Token(String),
}

impl fmt::Debug for VoucherRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VoucherRef::Code(code) => f.debug_tuple("Code").field(code).finish(),
            VoucherRef::Token(_) => f.debug_tuple("Token").field(&Redacted).finish(),
        }
    }
}

/// A payment request that passed every check: from here on no raw string is trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidPayment {
    /// The merchant's order id.
    pub order_id: OrderId,
    /// The strictly positive amount to pay.
    pub amount: Money,
    /// 1 ..= [`MAX_VOUCHERS_PER_PAYMENT`] distinct vouchers, in request order.
    pub vouchers: Vec<VoucherRef>,
}

/// One problem with one field, ready for an API response or the widget's form.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field's path in the request: `"amount"`, `"vouchers"`, `"vouchers[1].code"`
    /// (indices are 0-based, as in the JSON array).
    pub field: String,
    /// Stable snake_case code for programs, e.g. `"amount_too_many_decimals"`.
    pub code: &'static str,
    /// An English sentence for people.
    pub message: String,
}

impl FieldError {
    /// A field error from its parts.
    pub fn new(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> FieldError {
        FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// Turns a raw payment request into domain types, reporting every invalid field at once so
/// a form can mark them all in one round trip.
///
/// Errors come in field order: `order_id`, `amount`, `currency`, `vouchers`. The amount
/// needs the currency for its decimals and maximum; when the currency is missing or
/// unsupported only the currency-independent amount checks run (empty, not a plain
/// decimal, negative, zero), so a well-formed amount is not blamed for the currency.
pub fn validate_payment_request(
    input: &PaymentRequestInput,
) -> Result<ValidPayment, Vec<FieldError>> {
    let mut errors = Vec::new();

    let order_id = OrderId::parse(&input.order_id)
        .map_err(|e| errors.push(FieldError::new("order_id", e.code(), e.to_string())))
        .ok();

    let currency = if input.currency.is_empty() {
        Err(FieldError::new(
            "currency",
            "missing_currency",
            "The currency is missing.",
        ))
    } else {
        input
            .currency
            .parse::<Currency>()
            .map_err(|e| FieldError::new("currency", e.code(), e.to_string()))
    };

    let amount = match &currency {
        Ok(currency) => Money::parse(&input.amount, *currency)
            .map_err(|e| errors.push(FieldError::new("amount", e.code(), e.to_string())))
            .ok(),
        Err(_) => {
            if let Err(e) = lex_positive_amount(&input.amount) {
                errors.push(FieldError::new("amount", e.code(), e.to_string()));
            }
            None
        }
    };
    if let Err(e) = currency {
        errors.push(e);
    }

    let vouchers = validate_vouchers(&input.vouchers, &mut errors);

    match (order_id, amount, vouchers) {
        (Some(order_id), Some(amount), Some(vouchers)) if errors.is_empty() => Ok(ValidPayment {
            order_id,
            amount,
            vouchers,
        }),
        _ => Err(errors),
    }
}

fn validate_vouchers(
    inputs: &[VoucherInput],
    errors: &mut Vec<FieldError>,
) -> Option<Vec<VoucherRef>> {
    if inputs.is_empty() {
        errors.push(FieldError::new(
            "vouchers",
            "missing_vouchers",
            "Add at least one voucher.",
        ));
        return None;
    }
    if inputs.len() > MAX_VOUCHERS_PER_PAYMENT {
        // Entries are not examined: the count alone decides, and it bounds the work.
        errors.push(FieldError::new(
            "vouchers",
            "too_many_vouchers",
            format!("At most {MAX_VOUCHERS_PER_PAYMENT} vouchers can be used in one payment."),
        ));
        return None;
    }
    let errors_before = errors.len();
    let mut refs: Vec<VoucherRef> = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        // An empty string is how many form libraries say "not set".
        let code = input.code.as_deref().filter(|c| !c.trim().is_empty());
        let token = input.token.as_deref().filter(|t| !t.is_empty());
        let (field, parsed) = match (code, token) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    format!("vouchers[{index}]"),
                    "ambiguous_voucher",
                    "Send either a code or a token for each voucher, not both.",
                ));
                continue;
            }
            (None, None) => {
                errors.push(FieldError::new(
                    format!("vouchers[{index}]"),
                    "missing_voucher",
                    "Each voucher needs a code or a token.",
                ));
                continue;
            }
            (Some(code), None) => (
                format!("vouchers[{index}].code"),
                VoucherCode::parse(code)
                    .map(VoucherRef::Code)
                    .map_err(|e| (e.code(), e.to_string())),
            ),
            (None, Some(token)) => (
                format!("vouchers[{index}].token"),
                parse_token(token).map(VoucherRef::Token).map_err(|()| {
                    (
                        "invalid_voucher_token",
                        "The voucher token is not valid.".to_owned(),
                    )
                }),
            ),
        };
        match parsed {
            Ok(voucher) if refs.contains(&voucher) => errors.push(FieldError::new(
                field,
                "duplicate_voucher",
                "This voucher is already part of the payment.",
            )),
            Ok(voucher) => refs.push(voucher),
            Err((code, message)) => errors.push(FieldError::new(field, code, message)),
        }
    }
    (errors.len() == errors_before).then_some(refs)
}

/// `vt_` followed by ASCII letters, digits or `_`, 8 ..= 128 characters in all.
fn parse_token(token: &str) -> Result<String, ()> {
    let well_formed = token.starts_with(TOKEN_PREFIX)
        && (TOKEN_MIN_LEN..=TOKEN_MAX_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if well_formed {
        Ok(token.to_owned())
    } else {
        Err(())
    }
}

/// Validates a single code for the "check balance" call, reporting against field `code`.
pub fn validate_voucher_check(code: &str) -> Result<VoucherCode, FieldError> {
    VoucherCode::parse(code).map_err(|e| FieldError::new("code", e.code(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_code(seed: u8) -> VoucherCode {
        VoucherCode::generate([seed; 10])
    }

    fn with_code(code: &str) -> VoucherInput {
        VoucherInput {
            code: Some(code.to_owned()),
            token: None,
        }
    }

    fn with_token(token: &str) -> VoucherInput {
        VoucherInput {
            code: None,
            token: Some(token.to_owned()),
        }
    }

    fn request(amount: &str, currency: &str, vouchers: Vec<VoucherInput>) -> PaymentRequestInput {
        PaymentRequestInput {
            order_id: "ORD-1".to_owned(),
            amount: amount.to_owned(),
            currency: currency.to_owned(),
            vouchers,
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors.iter().map(|e| (e.field.as_str(), e.code)).collect()
    }

    #[test]
    fn a_valid_request_becomes_domain_types() {
        let code = valid_code(1);
        let input = request(
            "99.5",
            "EUR",
            vec![
                with_code(&code.formatted().to_lowercase()),
                with_token("vt_abc123XYZ"),
            ],
        );
        let valid = validate_payment_request(&input).unwrap();
        assert_eq!(valid.order_id.as_str(), "ORD-1");
        assert_eq!(
            valid.amount,
            Money::from_minor(9950, Currency::EUR).unwrap()
        );
        assert_eq!(
            valid.vouchers,
            vec![
                VoucherRef::Code(code),
                VoucherRef::Token("vt_abc123XYZ".to_owned())
            ]
        );
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let mut typo = valid_code(2).as_str().to_owned();
        let last = if typo.ends_with('0') { "1" } else { "0" };
        typo.replace_range(15.., last);
        let input = PaymentRequestInput {
            order_id: "order 1".to_owned(),
            amount: "99.001".to_owned(),
            currency: "EUR".to_owned(),
            vouchers: vec![
                with_code(valid_code(3).as_str()),
                with_code(&typo),
                with_token("vt_"),
                VoucherInput::default(),
                VoucherInput {
                    code: Some(valid_code(4).as_str().to_owned()),
                    token: Some("vt_12345678".to_owned()),
                },
                with_code(&valid_code(3).formatted()),
                with_code("ABCD-EFGU"),
            ],
        };
        let errors = validate_payment_request(&input).unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![
                ("order_id", "invalid_order_id"),
                ("amount", "amount_too_many_decimals"),
                ("vouchers[1].code", "invalid_code_checksum"),
                ("vouchers[2].token", "invalid_voucher_token"),
                ("vouchers[3]", "missing_voucher"),
                ("vouchers[4]", "ambiguous_voucher"),
                ("vouchers[5].code", "duplicate_voucher"),
                ("vouchers[6].code", "invalid_code_symbol"),
            ]
        );
        assert!(errors.iter().all(|e| e.message.ends_with('.')));
    }

    #[test]
    fn missing_fields_are_named() {
        let errors = validate_payment_request(&PaymentRequestInput::default()).unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![
                ("order_id", "missing_order_id"),
                ("amount", "missing_amount"),
                ("currency", "missing_currency"),
                ("vouchers", "missing_vouchers"),
            ]
        );
    }

    #[test]
    fn missing_json_fields_deserialise_as_empty() {
        let input: PaymentRequestInput = serde_json::from_str(r#"{"amount":"5"}"#).unwrap();
        let errors = validate_payment_request(&input).unwrap_err();
        assert_eq!(errors.len(), 3);
    }

    #[test]
    fn with_a_bad_currency_only_currency_independent_amount_errors_show() {
        let vouchers = || vec![with_code(valid_code(5).as_str())];
        let errors = validate_payment_request(&request("99.001", "eur", vouchers())).unwrap_err();
        assert_eq!(fields(&errors), vec![("currency", "unsupported_currency")]);
        let errors = validate_payment_request(&request("1e3", "XXX", vouchers())).unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![
                ("amount", "invalid_amount"),
                ("currency", "unsupported_currency")
            ]
        );
        let errors = validate_payment_request(&request("0", "", vouchers())).unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![
                ("amount", "amount_not_positive"),
                ("currency", "missing_currency")
            ]
        );
    }

    #[test]
    fn amount_errors_carry_their_codes() {
        let vouchers = || vec![with_code(valid_code(6).as_str())];
        for (amount, code) in [
            ("", "missing_amount"),
            ("-1", "amount_not_positive"),
            ("0.00", "amount_not_positive"),
            (" 99", "invalid_amount"),
            ("99,00", "invalid_amount"),
            ("12345678901234567890", "amount_too_large"),
            ("1.5", "amount_too_many_decimals"),
        ] {
            let errors = validate_payment_request(&request(amount, "JPY", vouchers())).unwrap_err();
            assert_eq!(fields(&errors), vec![("amount", code)], "{amount:?}");
        }
    }

    #[test]
    fn voucher_count_is_bounded() {
        let code = valid_code(7);
        let eleven = vec![with_code(code.as_str()); MAX_VOUCHERS_PER_PAYMENT + 1];
        let errors = validate_payment_request(&request("1", "EUR", eleven)).unwrap_err();
        assert_eq!(fields(&errors), vec![("vouchers", "too_many_vouchers")]);
        let ten = (0..10).map(|i| with_code(valid_code(i).as_str())).collect();
        assert_eq!(
            validate_payment_request(&request("1", "EUR", ten))
                .unwrap()
                .vouchers
                .len(),
            10
        );
    }

    #[test]
    fn tokens_need_the_prefix_and_a_safe_alphabet() {
        assert!(parse_token("vt_12345").is_ok());
        assert!(parse_token(&format!("vt_{}", "a".repeat(125))).is_ok());
        assert!(parse_token(&format!("vt_{}", "a".repeat(126))).is_err());
        assert!(parse_token("vt_1234").is_err());
        assert!(parse_token("xx_12345").is_err());
        assert!(parse_token("VT_12345").is_err());
        assert!(parse_token("vt_123-45").is_err());
        assert!(parse_token("vt_12 345").is_err());
        let errors = validate_payment_request(&request(
            "1",
            "EUR",
            vec![with_token("vt_same_token"), with_token("vt_same_token")],
        ))
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![("vouchers[1].token", "duplicate_voucher")]
        );
    }

    #[test]
    fn voucher_check_reports_against_code() {
        let code = valid_code(8);
        assert_eq!(validate_voucher_check(&code.formatted()), Ok(code));
        let err = validate_voucher_check("").unwrap_err();
        assert_eq!((err.field.as_str(), err.code), ("code", "missing_code"));
        let err = validate_voucher_check("ABCD").unwrap_err();
        assert_eq!(err.code, "invalid_code_length");
    }

    #[test]
    fn debug_output_hides_codes_and_tokens() {
        let code = valid_code(9);
        let input = request(
            "1",
            "EUR",
            vec![with_code(code.as_str()), with_token("vt_secret_token")],
        );
        let debug = format!("{input:?}");
        assert!(!debug.contains(&code.as_str()[..12]), "{debug}");
        assert!(!debug.contains("secret"), "{debug}");
        let valid = validate_payment_request(&input).unwrap();
        let debug = format!("{valid:?}");
        assert!(!debug.contains(&code.as_str()[..12]), "{debug}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains(code.last4()));
    }

    #[test]
    fn field_errors_serialise_for_responses() {
        let err = FieldError::new("amount", "invalid_amount", "Bad.");
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"field":"amount","code":"invalid_amount","message":"Bad."}"#
        );
    }
}
