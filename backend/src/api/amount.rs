//! `DecimalString`: the wire type of every money field, a JSON string and never a number.
//!
//! poem-openapi's `String` also accepts JSON numbers (`12.5` becomes `"12.5"`), which would
//! let a float that cannot be exact pay or verify. Money fields take this type instead.
use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

/// The marker [`super::framework_error`] recognises in the parse error.
pub(super) const NOT_A_STRING: &str = "money fields are decimal strings";

/// A decimal amount as sent, e.g. `"99.00"`; parsed into `Money` by the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalString(pub String);

impl Type for DecimalString {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "DecimalString".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        schema.pattern = Some(r"^[0-9]+(\.[0-9]+)?$".into());
        schema.example = Some(Value::String("99.00".into()));
        schema.description = Some(
            "A decimal string with at most the currency's decimals, e.g. \"99.00\". JSON numbers are refused.",
        );
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for DecimalString {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => Ok(Self(s)),
            Some(Value::Number(_)) => Err(ParseError::custom(NOT_A_STRING)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for DecimalString {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_refused_and_strings_kept_as_sent() {
        assert!(DecimalString::parse_from_json(Some(serde_json::json!(12.5))).is_err());
        assert!(DecimalString::parse_from_json(Some(serde_json::json!(99))).is_err());
        assert_eq!(
            DecimalString::parse_from_json(Some(serde_json::json!("12.50"))).unwrap(),
            DecimalString("12.50".into())
        );
    }
}
