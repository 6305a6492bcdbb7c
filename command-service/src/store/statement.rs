//! Statements whose text is fixed and whose parameters are arrays (or single values), so
//! that a statement's text does not depend on how many rows it writes. diesel keeps such a
//! statement prepared on each connection, by its text, where it would have PostgreSQL parse
//! and plan `sql_query`'s text on every call.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{
    Array, BigInt, Int4, Nullable, Text, Timestamptz, Untyped, Uuid as SqlUuid,
};
use uuid::Uuid;

/// A value bound to one `?` of a [`Statement`]: an array, or a single value.
pub(super) enum Parameter<'a> {
    Texts(Vec<&'a str>),
    OwnedTexts(Vec<String>),
    OptionalTexts(Vec<Option<&'a str>>),
    BigInts(Vec<i64>),
    OptionalBigInts(Vec<Option<i64>>),
    Ints(Vec<i32>),
    Uuids(Vec<Uuid>),
    Instant(DateTime<Utc>),
    OptionalBigInt(Option<i64>),
}

/// One statement: its text, in which each `?` stands for the next of its parameters.
pub(super) struct Statement<'a> {
    text: &'static str,
    parameters: Vec<Parameter<'a>>,
}

impl<'a> Statement<'a> {
    pub(super) fn new(text: &'static str, parameters: Vec<Parameter<'a>>) -> Self {
        debug_assert_eq!(
            text.matches('?').count(),
            parameters.len(),
            "one parameter for each ? of {text}"
        );
        Self { text, parameters }
    }
}

impl QueryFragment<Pg> for Statement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut pieces = self.text.split('?');
        out.push_sql(pieces.next().unwrap_or_default());
        for (parameter, piece) in self.parameters.iter().zip(pieces) {
            match parameter {
                Parameter::Texts(values) => out.push_bind_param::<Array<Text>, _>(values)?,
                Parameter::OwnedTexts(values) => out.push_bind_param::<Array<Text>, _>(values)?,
                Parameter::OptionalTexts(values) => {
                    out.push_bind_param::<Array<Nullable<Text>>, _>(values)?;
                }
                Parameter::BigInts(values) => out.push_bind_param::<Array<BigInt>, _>(values)?,
                Parameter::OptionalBigInts(values) => {
                    out.push_bind_param::<Array<Nullable<BigInt>>, _>(values)?;
                }
                Parameter::Ints(values) => out.push_bind_param::<Array<Int4>, _>(values)?,
                Parameter::Uuids(values) => out.push_bind_param::<Array<SqlUuid>, _>(values)?,
                Parameter::Instant(value) => out.push_bind_param::<Timestamptz, _>(value)?,
                Parameter::OptionalBigInt(value) => {
                    out.push_bind_param::<Nullable<BigInt>, _>(value)?
                }
            }
            out.push_sql(piece);
        }
        Ok(())
    }
}

/// Identified by its text, not its type: every statement shares this type.
impl QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Statement<'_> {}

#[cfg(test)]
mod tests {
    use diesel::debug_query;

    use super::*;

    #[test]
    fn each_question_mark_becomes_the_next_numbered_parameter() {
        let statement = Statement::new(
            "SELECT * FROM unnest(?, ?) WHERE created_at < ?",
            vec![
                Parameter::Texts(vec!["a"]),
                Parameter::BigInts(vec![1]),
                Parameter::Instant(DateTime::UNIX_EPOCH),
            ],
        );

        let text = debug_query::<Pg, _>(&statement).to_string();

        assert!(
            text.starts_with("SELECT * FROM unnest($1, $2) WHERE created_at < $3"),
            "{text}"
        );
    }
}
