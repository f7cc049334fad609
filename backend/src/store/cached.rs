//! The SQL text of the hot path's queries, built by sea-query once per database backend.
//!
//! sea-query builds a statement's text anew on every call (quoting every identifier through
//! fresh strings), which cost a payment more instructions than the statement's own trip to
//! PostgreSQL. A [`CachedSql`] keeps the text its builder gave the first time and binds new
//! values to it afterwards. The builder stays the one definition of the query: in debug
//! builds (every test run) it is still called every time and both its text and its values
//! must equal the kept text and the values passed, so values listed in another order than
//! the builder's placeholders fail the first test that runs the query.
use std::sync::OnceLock;

use sea_orm::{DbBackend, Statement, Value};

/// The kept text of one statement shape, per backend.
pub struct CachedSql {
    postgres: OnceLock<String>,
    sqlite: OnceLock<String>,
}

impl CachedSql {
    pub const fn new() -> Self {
        Self {
            postgres: OnceLock::new(),
            sqlite: OnceLock::new(),
        }
    }

    /// The statement `build` makes for `backend`, with `values` bound in its placeholders'
    /// order (the order sea-query numbers them in: as the builder adds them).
    pub fn statement(
        &self,
        backend: DbBackend,
        values: Vec<Value>,
        build: impl FnOnce(DbBackend) -> Statement,
    ) -> Statement {
        let cell = match backend {
            DbBackend::Postgres => &self.postgres,
            DbBackend::Sqlite => &self.sqlite,
            DbBackend::MySql => return build(backend),
        };
        if cfg!(debug_assertions) {
            let built = build(backend);
            let kept = cell.get_or_init(|| built.sql.clone());
            assert_eq!(&built.sql, kept, "a cached statement's text changed");
            let built_values = built.values.as_ref().map(|v| v.0.as_slice());
            assert_eq!(
                built_values.unwrap_or_default(),
                values.as_slice(),
                "values passed to a cached statement differ from its builder's: {}",
                built.sql
            );
            return built;
        }
        let sql = cell.get_or_init(|| build(backend).sql).clone();
        Statement::from_sql_and_values(backend, sql, values)
    }
}

impl Default for CachedSql {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryTrait};

    use super::*;
    use crate::store::entities::idempotency_key;

    fn build(b: DbBackend, key: &str) -> Statement {
        idempotency_key::Entity::find()
            .filter(idempotency_key::Column::Key.eq(key))
            .build(b)
    }

    #[test]
    fn the_text_is_kept_and_new_values_are_bound_to_it() {
        let cache = CachedSql::new();
        for key in ["first", "second"] {
            for b in [DbBackend::Postgres, DbBackend::Sqlite] {
                let s = cache.statement(b, vec![key.into()], |b| build(b, key));
                assert_eq!(s.sql, build(b, key).sql);
                assert_eq!(s.values.unwrap().0, vec![Value::from(key)]);
            }
        }
        assert!(cache.postgres.get().unwrap().contains("$1"));
        assert!(cache.sqlite.get().unwrap().contains('?'));
    }

    #[test]
    #[should_panic(expected = "differ from its builder's")]
    fn values_that_do_not_match_the_builder_are_caught_in_tests() {
        CachedSql::new().statement(DbBackend::Postgres, vec!["other".into()], |b| {
            build(b, "first")
        });
    }
}
