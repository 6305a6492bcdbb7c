//! Query-string parameters both services read the same way.

/// A page size: `default` when the parameter is absent, else a whole number from 1 to `max`.
/// The error is the message for the parameter's JSON error.
pub fn page_limit(text: Option<&str>, default: u32, max: u32) -> Result<u32, String> {
    match text {
        None => Ok(default),
        Some(text) => text
            .parse()
            .ok()
            .filter(|limit| (1..=max).contains(limit))
            .ok_or_else(|| format!("must be a whole number from 1 to {max}, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_the_default_and_the_bounds_are_inclusive() {
        assert_eq!(page_limit(None, 50, 500), Ok(50));
        assert_eq!(page_limit(Some("1"), 50, 500), Ok(1));
        assert_eq!(page_limit(Some("500"), 50, 500), Ok(500));
    }

    #[test]
    fn zero_too_large_or_not_a_number_is_refused_naming_the_bounds() {
        for text in ["0", "501", "-1", "ten", ""] {
            let message = page_limit(Some(text), 50, 500).unwrap_err();
            assert!(message.contains("from 1 to 500"), "{text}: {message}");
        }
    }
}
