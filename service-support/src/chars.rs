//! The character classes the services' input rules test, and the same classes as regular
//! expressions for the OpenAPI documents: a rule and its schema come from one list.

/// Inclusive ranges of characters.
pub type Ranges = &'static [(char, char)];

/// Control characters (Unicode category Cc): what `char::is_control` tests.
pub const CONTROL: Ranges = &[('\u{0}', '\u{1F}'), ('\u{7F}', '\u{9F}')];

/// White space (the Unicode property White_Space): what `char::is_whitespace` and
/// `str::trim` test.
pub const WHITE_SPACE: Ranges = &[
    ('\u{9}', '\u{D}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{A0}', '\u{A0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200A}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202F}', '\u{202F}'),
    ('\u{205F}', '\u{205F}'),
    ('\u{3000}', '\u{3000}'),
];

/// Bidirectional marks, embeddings, overrides and isolates, which can make a text read as
/// another.
pub const BIDI_CONTROL: Ranges = &[
    ('\u{200E}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2066}', '\u{2069}'),
];

/// Characters that draw nothing: the soft hyphen, zero-width spaces and joiners, the word
/// joiner and the byte-order mark.
pub const INVISIBLE: Ranges = &[
    ('\u{AD}', '\u{AD}'),
    ('\u{200B}', '\u{200D}'),
    ('\u{2060}', '\u{2060}'),
    ('\u{FEFF}', '\u{FEFF}'),
];

/// Whether `c` is in one of `ranges`.
pub fn contains(ranges: Ranges, c: char) -> bool {
    ranges
        .iter()
        .any(|(first, last)| (*first..=*last).contains(&c))
}

/// The inside of a regular-expression character class holding every range of `sets`, with
/// `\uXXXX` escapes, which ECMA-262 (the schemas' dialect) and Python (Schemathesis's) read
/// alike.
pub fn class_of(sets: &[Ranges]) -> String {
    let escape = |c: char| format!("\\u{:04X}", u32::from(c));
    sets.iter()
        .flat_map(|ranges| ranges.iter())
        .map(|(first, last)| {
            if first == last {
                escape(*first)
            } else {
                format!("{}-{}", escape(*first), escape(*last))
            }
        })
        .collect()
}

/// A pattern for a whole text with no character of `forbidden`.
pub fn pattern_without(forbidden: &[Ranges]) -> String {
    format!("^[^{}]*$", class_of(forbidden))
}

/// A pattern for a whole text with no character of `forbidden` and not only characters of
/// `blank`: one character outside both, anywhere.
pub fn pattern_without_and_not_only(forbidden: &[Ranges], blank: &[Ranges]) -> String {
    let allowed = class_of(forbidden);
    let visible = class_of(&[forbidden, blank].concat());
    format!("^[^{allowed}]*[^{visible}][^{allowed}]*$")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_char() -> impl Iterator<Item = char> {
        (0..=u32::from(char::MAX)).filter_map(char::from_u32)
    }

    #[test]
    fn control_is_what_char_is_control_tests() {
        for c in every_char() {
            assert_eq!(contains(CONTROL, c), c.is_control(), "{c:?}");
        }
    }

    #[test]
    fn white_space_is_what_char_is_whitespace_tests() {
        for c in every_char() {
            assert_eq!(contains(WHITE_SPACE, c), c.is_whitespace(), "{c:?}");
        }
    }

    #[test]
    fn a_class_escapes_every_range() {
        assert_eq!(class_of(&[CONTROL]), "\\u0000-\\u001F\\u007F-\\u009F");
        assert_eq!(
            pattern_without(&[BIDI_CONTROL]),
            "^[^\\u200E-\\u200F\\u202A-\\u202E\\u2066-\\u2069]*$"
        );
    }
}
