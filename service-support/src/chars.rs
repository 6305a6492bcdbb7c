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

/// The line and paragraph separators, which break a line as a line feed does.
pub const LINE_SEPARATOR: Ranges = &[('\u{2028}', '\u{2029}')];

/// Bidirectional marks, embeddings, overrides and isolates, which can make a text read as
/// another.
pub const BIDI_CONTROL: Ranges = &[
    ('\u{61C}', '\u{61C}'),
    ('\u{200E}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2066}', '\u{2069}'),
];

/// Characters that draw nothing: with [`BIDI_CONTROL`], every default-ignorable code point of
/// Unicode (the soft hyphen, zero-width spaces and joiners, fillers, variation selectors, tag
/// characters…), and the blank braille pattern. A text made of them looks empty or like
/// another.
pub const INVISIBLE: Ranges = &[
    ('\u{AD}', '\u{AD}'),
    ('\u{34F}', '\u{34F}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200D}'),
    ('\u{2060}', '\u{2065}'),
    ('\u{206A}', '\u{206F}'),
    ('\u{2800}', '\u{2800}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

/// Private-use characters, whose meaning is whatever a font says, in the three areas.
pub const PRIVATE_USE: Ranges = &[
    ('\u{E000}', '\u{F8FF}'),
    ('\u{F0000}', '\u{FFFFD}'),
    ('\u{100000}', '\u{10FFFD}'),
];

/// The 66 noncharacters, never meant for interchange.
pub const NONCHARACTER: Ranges = &[
    ('\u{FDD0}', '\u{FDEF}'),
    ('\u{FFFE}', '\u{FFFF}'),
    ('\u{1FFFE}', '\u{1FFFF}'),
    ('\u{2FFFE}', '\u{2FFFF}'),
    ('\u{3FFFE}', '\u{3FFFF}'),
    ('\u{4FFFE}', '\u{4FFFF}'),
    ('\u{5FFFE}', '\u{5FFFF}'),
    ('\u{6FFFE}', '\u{6FFFF}'),
    ('\u{7FFFE}', '\u{7FFFF}'),
    ('\u{8FFFE}', '\u{8FFFF}'),
    ('\u{9FFFE}', '\u{9FFFF}'),
    ('\u{AFFFE}', '\u{AFFFF}'),
    ('\u{BFFFE}', '\u{BFFFF}'),
    ('\u{CFFFE}', '\u{CFFFF}'),
    ('\u{DFFFE}', '\u{DFFFF}'),
    ('\u{EFFFE}', '\u{EFFFF}'),
    ('\u{FFFFE}', '\u{FFFFF}'),
    ('\u{10FFFE}', '\u{10FFFF}'),
];

/// Digits, punctuation and symbols of ASCII, Latin-1 and General Punctuation, and currency
/// signs: what a name made of no letter is made of.
pub const NOT_A_LETTER: Ranges = &[
    ('!', '@'),
    ('[', '`'),
    ('{', '~'),
    ('\u{A1}', '\u{BF}'),
    ('\u{D7}', '\u{D7}'),
    ('\u{F7}', '\u{F7}'),
    ('\u{2010}', '\u{2027}'),
    ('\u{2030}', '\u{205E}'),
    ('\u{20A0}', '\u{20C0}'),
];

/// Whether `c` is in one of `ranges`.
pub fn contains(ranges: Ranges, c: char) -> bool {
    ranges
        .iter()
        .any(|(first, last)| (*first..=*last).contains(&c))
}

/// The inside of a regular-expression character class holding every range of `sets`, with
/// `\uXXXX` escapes, which ECMA-262 (the schemas' dialect) and Python (Schemathesis's) read
/// alike. A character beyond U+FFFF, which no escape of both names, is written as itself, as
/// ECMA-262 reads it with the `u` flag that JSON Schema validators set.
pub fn class_of(sets: &[Ranges]) -> String {
    let escape = |c: char| {
        if u32::from(c) > 0xFFFF {
            c.to_string()
        } else {
            format!("\\u{:04X}", u32::from(c))
        }
    };
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
            "^[^\\u061C\\u200E-\\u200F\\u202A-\\u202E\\u2066-\\u2069]*$"
        );
        assert_eq!(
            class_of(&[&[('\u{FFFE}', '\u{10FFFF}')]]),
            "\\uFFFE-\u{10FFFF}",
            "a character beyond U+FFFF is written as itself"
        );
    }
}
