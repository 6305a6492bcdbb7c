use std::fmt;
use std::str::FromStr;

use crate::OrderId;

/// HTTP header that carries a [`ConsistencyToken`], on command responses and on reads.
pub const CONSISTENCY_TOKEN_HEADER: &str = "x-consistency-token";

/// What a command's response promises its caller: once the read side has applied order
/// `order_id` at `version` (or later), the command's effect is visible. The command service
/// hands it out; a read that presents it waits for that point. The text form is
/// `<order id>.<version>`, safe in headers and query strings alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsistencyToken {
    pub order_id: OrderId,
    pub version: u64,
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.order_id, self.version)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a consistency token is `<order id>.<version>`, as a command response gives it")]
pub struct InvalidConsistencyToken;

impl ConsistencyToken {
    /// The text form's pattern, for the API's schemas: [`FromStr`] reads exactly this.
    pub const PATTERN: &'static str = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\\.[1-9][0-9]{0,18}$";
}

/// Whether `text` is a UUID in its hyphenated form, the only one [`ConsistencyToken`]s use.
fn is_hyphenated_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

/// A version as the text form writes it: no sign, no leading zero, at most 19 digits.
fn is_version(text: &str) -> bool {
    (1..=19).contains(&text.len())
        && !text.starts_with('0')
        && text.bytes().all(|byte| byte.is_ascii_digit())
}

impl FromStr for ConsistencyToken {
    type Err = InvalidConsistencyToken;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (order_id, version) = text.split_once('.').ok_or(InvalidConsistencyToken)?;
        if !is_hyphenated_uuid(order_id) || !is_version(version) {
            return Err(InvalidConsistencyToken);
        }
        Ok(Self {
            order_id: order_id.parse().map_err(|_| InvalidConsistencyToken)?,
            version: version.parse().map_err(|_| InvalidConsistencyToken)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_survives_its_text_form() {
        let token = ConsistencyToken {
            order_id: OrderId::from_uuid(uuid::Uuid::now_v7()),
            version: 2,
        };
        assert_eq!(token.to_string().parse(), Ok(token));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let id = uuid::Uuid::now_v7();
        for bad in [
            String::new(),
            "1".to_owned(),
            id.to_string(),
            format!("{id}."),
            format!("{id}.0"),
            format!("{id}.-1"),
            format!("nope.{}", 1),
            format!("{id}.+1"),
            format!("{id}.01"),
            format!("{id}.10000000000000000000"),
            format!("{{{id}}}.1"),
            format!("{}.1", id.simple()),
            format!(" {id}.1"),
        ] {
            assert_eq!(
                bad.parse::<ConsistencyToken>(),
                Err(InvalidConsistencyToken),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_pattern_matches_exactly_what_parses() {
        let pattern = regex::Regex::new(ConsistencyToken::PATTERN).unwrap();
        let id = uuid::Uuid::now_v7();
        let upper = id.to_string().to_uppercase();
        for sample in [
            format!("{id}.1"),
            format!("{upper}.9999999999999999999"),
            format!("{id}.0"),
            format!("{id}.01"),
            format!("{id}.+1"),
            format!("{id}.10000000000000000000"),
            format!("{}.1", id.simple()),
            format!("{id}.1 "),
            format!("{id}"),
        ] {
            assert_eq!(
                pattern.is_match(&sample),
                sample.parse::<ConsistencyToken>().is_ok(),
                "{sample}"
            );
        }
    }
}
