//! What makes a configured secret unusable: too short, too few different characters to have
//! been generated, or a placeholder of the kind examples and documentation print.

use std::collections::HashSet;

/// Words that mark a value written by hand for an example rather than generated.
const PLACEHOLDER_WORDS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "replace",
    "placeholder",
    "example",
    "demo",
    "secret",
    "password",
    "default",
];
/// A generated value of the lengths asked for has far more (48 hex digits: 16).
const MIN_DISTINCT_CHARACTERS: usize = 10;

/// Why `value` cannot serve as a secret of at least `min_bytes` bytes, if it cannot.
pub fn weakness(value: &str, min_bytes: usize) -> Option<String> {
    if value.len() < min_bytes {
        return Some(format!(
            "must be at least {min_bytes} bytes (generate one: openssl rand -hex 32)"
        ));
    }
    let lowercase = value.to_lowercase();
    if let Some(word) = PLACEHOLDER_WORDS
        .iter()
        .find(|word| lowercase.contains(*word))
    {
        return Some(format!(
            "is a placeholder (it contains \"{word}\"); generate one: openssl rand -hex 32"
        ));
    }
    let distinct = value.chars().collect::<HashSet<_>>().len();
    if distinct < MIN_DISTINCT_CHARACTERS {
        return Some(format!(
            "has only {distinct} different characters, not a generated value; generate one: \
             openssl rand -hex 32"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_value_is_accepted() {
        assert_eq!(
            weakness("9f2c4e8a1b7d3f60a5c9e2b4d8f1a7c3e6b0d5f9a2c4e8b1", 32),
            None
        );
    }

    #[test]
    fn the_placeholders_the_repository_once_shipped_are_refused() {
        for placeholder in [
            "compose-demo-secret-change-me-0123456789",
            "change-me-to-32-or-more-random-bytes",
            "change-me-operator-token",
            "CHANGEME-CHANGEME-CHANGEME-CHANGEME-01",
        ] {
            assert!(
                weakness(placeholder, 16)
                    .unwrap()
                    .starts_with("is a placeholder"),
                "{placeholder}"
            );
        }
    }

    #[test]
    fn a_short_or_repetitive_value_is_refused() {
        assert!(weakness("abc123", 32)
            .unwrap()
            .starts_with("must be at least 32"));
        assert!(weakness(&"ab".repeat(20), 32)
            .unwrap()
            .starts_with("has only 2 different characters"));
    }
}
