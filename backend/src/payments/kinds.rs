//! Voucher kinds: the JSON rules an issuer writes, validated against the documented
//! schema (`backend/schemas/voucher-rules.schema.json`) and turned into [`VoucherRules`].
use std::sync::LazyLock;

use serde_json::{json, Value};
use superpayment_core::{Currency, FieldError, Money};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use super::rules::VoucherRules;

/// The schema of `rules`, as committed (and printed in the operator documentation).
pub const SCHEMA: &str = include_str!("../../schemas/voucher-rules.schema.json");

/// The machine code of every refusal of `rules`.
pub const INVALID_RULES: &str = "invalid_voucher_rules";

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the committed schema is JSON");
    // Formats are annotations only in draft 2020-12 unless asked for: `expires_at` must be
    // a real timestamp.
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the committed schema compiles")
});

/// A voucher kind read from its rules: what is stored with each voucher, and the fixed
/// expiry, which has a column of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    pub rules: VoucherRules,
    pub expires_at: Option<OffsetDateTime>,
}

fn refused(path: &str, message: String) -> FieldError {
    FieldError::new(format!("rules{path}"), INVALID_RULES, message)
}

/// Validates `rules` against the schema and reads them for vouchers of `currency`. The
/// refusal names the failing field by its JSON pointer below `rules` (`rules/merchants/0`)
/// and the schema keyword it broke.
pub fn parse(rules: &Value, currency: Currency) -> Result<Kind, FieldError> {
    if let Some(err) = VALIDATOR.iter_errors(rules).next() {
        return Err(refused(
            err.instance_path().as_str(),
            format!("{err} (schema: {})", err.schema_path()),
        ));
    }
    let min_order_minor = rules["min_order_amount"]
        .as_str()
        .map(|raw| Money::parse(raw, currency).map(Money::minor))
        .transpose()
        .map_err(|e| refused("/min_order_amount", e.to_string()))?;
    let expires_at = rules["expires_at"]
        .as_str()
        .map(|raw| OffsetDateTime::parse(raw, &Rfc3339))
        .transpose()
        .map_err(|_| {
            refused(
                "/expires_at",
                "expires_at must be an RFC 3339 timestamp.".into(),
            )
        })?;
    let merchants = rules["merchants"].as_array().map(|list| {
        list.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    });
    let flag = |name: &str| rules[name].as_bool().unwrap_or(false);
    Ok(Kind {
        rules: VoucherRules {
            merchants,
            min_order_minor,
            single_use: flag("single_use"),
            reloadable: flag("reloadable"),
            expires_after_first_use_days: rules["expires_after_first_use_days"]
                .as_u64()
                .and_then(|d| u32::try_from(d).ok()),
            pin_required: flag("pin_required"),
        },
        expires_at,
    })
}

/// The refusal of rules given both in `rules` and as the older flat issuance fields.
pub fn given_twice() -> FieldError {
    refused(
        "",
        "Give a voucher's rules either in `rules` or as the fields merchant_id, min_order_amount, single_use, reloadable and expires_at, not both.".into(),
    )
}

/// The refusals of typical mistakes, as [`parse`] gives them, for the documentation.
pub fn examples() -> Vec<FieldError> {
    [
        json!({"single_use": "yes"}),
        json!({"merchants": ["shop-1"]}),
        json!({"expires_after_first_use_days": 0}),
        json!({"single_use": true, "reloadable": true}),
        json!({"min_order": "20.00"}),
        json!({"min_order_amount": "20.001"}),
    ]
    .iter()
    .filter_map(|r| parse(r, Currency::EUR).err())
    .chain([given_twice()])
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_of_the_schema_is_read() {
        let kind = parse(
            &json!({
                "single_use": false,
                "merchants": ["mer_0193b5f0c2a87b3e9d1f4c2a8b7e6d5c"],
                "min_order_amount": "20.00",
                "expires_at": "2030-01-01T00:00:00Z",
                "expires_after_first_use_days": 30,
                "reloadable": true,
                "pin_required": true
            }),
            Currency::EUR,
        )
        .unwrap();
        assert_eq!(
            kind.rules,
            VoucherRules {
                merchants: Some(vec!["mer_0193b5f0c2a87b3e9d1f4c2a8b7e6d5c".into()]),
                min_order_minor: Some(2000),
                single_use: false,
                reloadable: true,
                expires_after_first_use_days: Some(30),
                pin_required: true,
            }
        );
        assert_eq!(
            kind.expires_at,
            Some(time::macros::datetime!(2030-01-01 0:00 UTC))
        );
        assert_eq!(
            parse(&json!({}), Currency::EUR).unwrap().rules,
            VoucherRules::default()
        );
    }

    #[test]
    fn a_refusal_names_the_field_by_its_path_below_rules() {
        let err = parse(&json!({"merchants": ["shop-1"]}), Currency::EUR).unwrap_err();
        assert_eq!(err.field, "rules/merchants/0");
        assert_eq!(err.code, INVALID_RULES);
        assert!(err.message.contains("pattern"), "{}", err.message);
        let err = parse(
            &json!({"single_use": true, "reloadable": true}),
            Currency::EUR,
        )
        .unwrap_err();
        assert_eq!(err.field, "rules/reloadable");
        let err = parse(&json!({"expires_at": "tomorrow"}), Currency::EUR).unwrap_err();
        assert_eq!(err.field, "rules/expires_at");
        let err = parse(&json!({"surprise": 1}), Currency::EUR).unwrap_err();
        assert_eq!(err.field, "rules");
        let err = parse(&json!({"min_order_amount": "1000"}), Currency::JPY);
        assert!(err.is_ok());
        let err = parse(&json!({"min_order_amount": "10.5"}), Currency::JPY).unwrap_err();
        assert_eq!(err.field, "rules/min_order_amount");
        assert_eq!(examples().len(), 7);
    }
}
