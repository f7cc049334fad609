//! Core values stored as their text form: a currency as its ISO code, a mode as `test`/`live`.
//!
//! core/ stays free of SeaORM (it builds for wasm32), so its types are given column
//! support here through [`AsText`]. The stored strings are the ones the columns always held.
use std::{fmt, str::FromStr};

use sea_orm::{
    sea_query::{ArrayType, ColumnType, Nullable, StringLen, ValueType, ValueTypeErr},
    ColIdx, DbErr, QueryResult, TryFromU64, TryGetError, TryGetable, Value,
};
use superpayment_core::{Currency, Mode};

/// A value kept in a text column through its `Display` and `FromStr`. A stored string
/// that does not parse is a database error, never a silently different value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AsText<T>(pub T);

/// A currency column: `EUR`, `USD` ...
pub type CurrencyColumn = AsText<Currency>;

/// A mode column: `test` or `live`.
pub type ModeColumn = AsText<Mode>;

impl<T: fmt::Display> From<AsText<T>> for Value {
    fn from(v: AsText<T>) -> Value {
        v.0.to_string().into()
    }
}

impl<T: FromStr> TryGetable for AsText<T> {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        let s = String::try_get_by(res, idx)?;
        T::from_str(&s).map(AsText).map_err(|_| {
            TryGetError::DbErr(DbErr::Type(format!(
                "stored {:?} is not a {}",
                s,
                std::any::type_name::<T>()
            )))
        })
    }
}

impl<T: FromStr> ValueType for AsText<T> {
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        let s = <String as ValueType>::try_from(v)?;
        T::from_str(&s).map(AsText).map_err(|_| ValueTypeErr)
    }

    fn type_name() -> String {
        format!("AsText<{}>", std::any::type_name::<T>())
    }

    fn array_type() -> ArrayType {
        ArrayType::String
    }

    fn column_type() -> ColumnType {
        ColumnType::String(StringLen::None)
    }
}

/// Needed where the column is part of a composite primary key; never auto-incremented.
impl<T> TryFromU64 for AsText<T> {
    fn try_from_u64(_: u64) -> Result<Self, DbErr> {
        Err(DbErr::ConvertFromU64(std::any::type_name::<T>()))
    }
}

impl<T> Nullable for AsText<T> {
    fn null() -> Value {
        Value::String(None)
    }
}
