//! Statements with numbered placeholders built at run time, and typed values read out of
//! rows, where a value the schema should have refused becomes [`StoreError::Corrupt`].

use std::str::FromStr;

use mtgs_core::InputError;
use serde_json::Value;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row};

use crate::{Result, StoreError};

/// How many values one statement binds at most when a list is split into chunks. Far
/// below SQLite's limit (32,766 since 3.32; 999 before) and PostgreSQL's (65,535).
pub(crate) const CHUNK: usize = 400;

/// Rows written per multi-row statement: bulk writes (a 10k-tool analysis records tens of
/// thousands of conflicts) go in a few statements instead of one round trip per row.
/// At most 10 values a row keeps a statement under 10,000 parameters (SQLite allows
/// 32,766, PostgreSQL 65,535).
pub(crate) const BULK_ROWS: usize = 100;

/// A bound value: integers and text for everything the registry filters on, reals for
/// scores, bytes for vectors.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Int(i64),
    Real(f64),
    Text(String),
    OptionalText(Option<String>),
    Blob(Vec<u8>),
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Param::OptionalText(value)
    }
}

impl From<f64> for Param {
    fn from(value: f64) -> Self {
        Param::Real(value)
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(value)
    }
}

impl From<Vec<u8>> for Param {
    fn from(value: Vec<u8>) -> Self {
        Param::Blob(value)
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(value.to_owned())
    }
}

/// SQL text with `$n` placeholders numbered as values are bound: sqlx's `QueryBuilder`
/// writes `?` for `Any`, which PostgreSQL does not accept.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Self { text: text.to_owned(), params: Vec::new() }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Binds `value` and writes its placeholder.
    pub(crate) fn bind(&mut self, value: impl Into<Param>) -> &mut Self {
        self.params.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.params.len().to_string());
        self
    }

    /// `LIMIT … OFFSET …` for one page of an ordered list: `limit` rows (all when `None`)
    /// after skipping `offset`. Written the same for SQLite and PostgreSQL, which has no
    /// `LIMIT -1`.
    pub(crate) fn page(&mut self, limit: Option<u64>, offset: u64) -> &mut Self {
        let limit = limit.map_or(i64::MAX, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
        if limit != i64::MAX || offset > 0 {
            self.push(" LIMIT ").bind(limit).push(" OFFSET ").bind(i64::try_from(offset).unwrap_or(i64::MAX));
        }
        self
    }

    /// Binds each value and writes their placeholders separated by commas; an empty list
    /// writes `NULL`, so `x IN (NULL)` matches nothing.
    pub(crate) fn bind_list<P: Into<Param>>(&mut self, values: impl IntoIterator<Item = P>) -> &mut Self {
        let list = self.bind_values(values);
        self.push(&list)
    }

    /// Binds each value and returns their placeholders (`$3, $4`, or `NULL` for none)
    /// without writing them, for a list the statement names more than once: `$n` is one
    /// value wherever it appears.
    pub(crate) fn bind_values<P: Into<Param>>(&mut self, values: impl IntoIterator<Item = P>) -> String {
        let placeholders: Vec<String> = values
            .into_iter()
            .map(|value| {
                self.params.push(value.into());
                format!("${}", self.params.len())
            })
            .collect();
        if placeholders.is_empty() { "NULL".to_owned() } else { placeholders.join(", ") }
    }

    pub(crate) fn build(self) -> Query<'static, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text));
        for param in self.params {
            query = match param {
                Param::Int(value) => query.bind(value),
                Param::Real(value) => query.bind(value),
                Param::OptionalText(value) => query.bind(value),
                Param::Text(value) => query.bind(value),
                Param::Blob(value) => query.bind(value),
            };
        }
        query
    }
}

/// `'a', 'b'`: enum spellings from mtgs-core written into SQL as literals. They are
/// snake_case constants, never input, so there is nothing to escape.
pub(crate) fn literal_list<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    values.into_iter().map(|value| format!("'{value}'")).collect::<Vec<_>>().join(", ")
}

pub(crate) fn int(row: &AnyRow, column: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(column)?)
}

pub(crate) fn optional_int(row: &AnyRow, column: &str) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(column)?)
}

pub(crate) fn text(row: &AnyRow, column: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(column)?)
}

pub(crate) fn optional_text(row: &AnyRow, column: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(column)?)
}

pub(crate) fn real(row: &AnyRow, column: &str) -> Result<f64> {
    Ok(row.try_get::<f64, _>(column)?)
}

/// A count, which the database hands back as a signed integer.
pub(crate) fn count(row: &AnyRow, column: &str, table: &'static str) -> Result<u64> {
    let value = int(row, column)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt { table, reason: format!("{column} is {value}") })
}

/// An enum column in its `as_str()` spelling.
pub(crate) fn enum_column<T: FromStr<Err = String>>(row: &AnyRow, column: &str, table: &'static str) -> Result<T> {
    text(row, column)?.parse().map_err(|reason| StoreError::Corrupt { table, reason: format!("{column}: {reason}") })
}

/// A validated name (tool, server, environment), parsed with its own rules.
pub(crate) fn name_column<T>(
    row: &AnyRow,
    column: &str,
    table: &'static str,
    parse: impl FnOnce(&str) -> std::result::Result<T, InputError>,
) -> Result<T> {
    let raw = text(row, column)?;
    parse(&raw).map_err(|error| StoreError::Corrupt { table, reason: format!("{column} '{raw}': {error}") })
}

pub(crate) fn json_column(row: &AnyRow, column: &str, table: &'static str) -> Result<Value> {
    parse_json(&text(row, column)?, column, table)
}

pub(crate) fn parse_json(raw: &str, column: &str, table: &'static str) -> Result<Value> {
    serde_json::from_str(raw)
        .map_err(|error| StoreError::Corrupt { table, reason: format!("{column} is not JSON: {error}") })
}
