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

impl FromStr for ConsistencyToken {
    type Err = InvalidConsistencyToken;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (order_id, version) = text.split_once('.').ok_or(InvalidConsistencyToken)?;
        Ok(Self {
            order_id: order_id.parse().map_err(|_| InvalidConsistencyToken)?,
            version: version
                .parse()
                .ok()
                .filter(|version| *version > 0)
                .ok_or(InvalidConsistencyToken)?,
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
        ] {
            assert_eq!(
                bad.parse::<ConsistencyToken>(),
                Err(InvalidConsistencyToken),
                "{bad}"
            );
        }
    }
}
