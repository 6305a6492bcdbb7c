//! Query-string parameters and header values both services read the same way.

/// The most significant digits [`whole_number`] reads: every such number fits a `u64`.
pub const MAX_DIGITS: usize = 19;

/// A whole number written in ASCII digits only (no sign, no spaces; leading zeros allowed),
/// of at most [`MAX_DIGITS`] significant digits: what an OpenAPI `integer` parameter's text
/// can be.
pub fn whole_number(text: &str) -> Option<u64> {
    let significant = text.trim_start_matches('0');
    if text.is_empty()
        || !text.bytes().all(|byte| byte.is_ascii_digit())
        || significant.len() > MAX_DIGITS
    {
        return None;
    }
    significant.parse().ok().or(Some(0))
}

/// The pattern of [`whole_number`]'s text, for a schema of a string that holds one.
pub fn whole_number_pattern() -> String {
    format!("0*[0-9]{{1,{MAX_DIGITS}}}")
}

/// A page size: `default` when the parameter is absent, else a whole number from 1 to `max`.
/// The error is the message for the parameter's JSON error.
pub fn page_limit(text: Option<&str>, default: u32, max: u32) -> Result<u32, String> {
    match text {
        None => Ok(default),
        Some(text) => whole_number(text)
            .filter(|limit| (1..=u64::from(max)).contains(limit))
            .and_then(|limit| u32::try_from(limit).ok())
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
        for text in ["0", "501", "-1", "ten", "", "+5", " 5", "5.0"] {
            let message = page_limit(Some(text), 50, 500).unwrap_err();
            assert!(message.contains("from 1 to 500"), "{text}: {message}");
        }
    }

    #[test]
    fn a_whole_number_is_digits_only() {
        assert_eq!(whole_number("0"), Some(0));
        assert_eq!(whole_number("000"), Some(0));
        assert_eq!(whole_number("007"), Some(7));
        assert_eq!(
            whole_number("9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(
            whole_number("0009999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "10000000000000000000",
            "٣",
        ] {
            assert_eq!(whole_number(bad), None, "{bad:?}");
        }
    }
}
