//! Request bodies as JSON objects whose every key appears once.

use std::fmt;

use serde::de::{Error, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// A JSON object whose keys each appear once. A map keeps the last of two equal keys without a
/// word, so `{"quantity": 1, "quantity": 9999}` would be read as whichever a proxy or a
/// logger in between did not: such a body is refused instead.
#[derive(Debug)]
pub struct UniqueKeys(pub Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueKeys;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<UniqueKeys, A::Error> {
                let mut fields = Map::new();
                while let Some(key) = entries.next_key::<String>()? {
                    if fields.contains_key(&key) {
                        return Err(A::Error::custom(format!("duplicate key \"{key}\"")));
                    }
                    let value = entries.next_value()?;
                    fields.insert(key, value);
                }
                Ok(UniqueKeys(fields))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_refused_naming_it() {
        let error = serde_json::from_str::<UniqueKeys>(r#"{"quantity": 1, "quantity": 9999}"#)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("duplicate key \"quantity\""), "{error}");
    }

    #[test]
    fn an_object_is_read_and_anything_else_refused() {
        let UniqueKeys(fields) =
            serde_json::from_str(r#"{"quantity": 1, "email": "ada@example.com"}"#).unwrap();
        assert_eq!(fields.len(), 2);
        for other in ["[1, 2]", "\"text\"", "3"] {
            assert!(
                serde_json::from_str::<UniqueKeys>(other).is_err(),
                "{other}"
            );
        }
    }
}
