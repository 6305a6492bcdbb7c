use iso_currency::{Currency, IntoEnumIterator};
use service_support::chars::{
    self, Ranges, BIDI_CONTROL, CONTROL, INVISIBLE, LINE_SEPARATOR, NONCHARACTER, NOT_A_LETTER,
    PRIVATE_USE, WHITE_SPACE,
};

pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const QUANTITY_RANGE: std::ops::RangeInclusive<i64> = 1..=10_000;
pub const MAX_REASON_CHARS: usize = 500;
/// Ten billion in the major unit of any two-decimal currency: far above any real unit price,
/// far below where totals could overflow.
pub const UNIT_PRICE_RANGE: std::ops::RangeInclusive<i64> = 0..=1_000_000_000_000;
pub const IDEMPOTENCY_KEY_CHARS: std::ops::RangeInclusive<usize> = 1..=255;

/// What was ordered: non-blank, at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

/// How many were ordered: 1 to 10 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(u16);

/// A first or last name: non-blank, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

/// Why an order is cancelled: non-blank, at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationReason(String);

/// An amount in minor units (cents), 0 to 10^12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinorUnits(i64);

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// An [`IdempotencyKey`] as the principal that sent it owns it: another principal's same key
/// is another key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedKey {
    /// [`service_support::auth::Principal::scope_name`] of the sender.
    pub principal: String,
    pub key: IdempotencyKey,
}

impl OwnedKey {
    /// One text naming both, for a lock: a key has no space, so the first space ends it.
    pub fn lock_name(&self) -> String {
        format!("{} {}", self.key.as_str(), self.principal)
    }
}

/// An ISO 4217 alphabetic currency code: three letters, kept upper-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyCode(String);

/// A syntactically valid email address, trimmed and lower-cased: it identifies the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

/// What no free-text field may hold, with why: these values end up in logs, e-mails and
/// other people's screens, where such characters break lines, reorder or hide text, or mean
/// whatever a font makes of them.
const FORBIDDEN: [(Ranges, &str); 6] = [
    (
        CONTROL,
        "must not contain control characters (line breaks, tabs, NUL, escapes)",
    ),
    (
        LINE_SEPARATOR,
        "must be one line (no line or paragraph separator)",
    ),
    (
        BIDI_CONTROL,
        "must not contain bidirectional control characters",
    ),
    (
        INVISIBLE,
        "must not contain characters that draw nothing (zero-width, fillers, tags)",
    ),
    (PRIVATE_USE, "must not contain private-use characters"),
    (NONCHARACTER, "must not contain noncharacters"),
];

/// What a free-text field may hold: visible text on one line, not only white space, at most
/// `max_chars` characters, with no character of [`FORBIDDEN`].
fn text(value: String, max_chars: usize) -> Result<String, String> {
    if value.chars().all(|c| chars::contains(WHITE_SPACE, c)) {
        return Err("must not be blank".to_owned());
    }
    for (ranges, rule) in FORBIDDEN {
        if value.chars().any(|c| chars::contains(ranges, c)) {
            return Err(rule.to_owned());
        }
    }
    let length = value.chars().count();
    if length > max_chars {
        return Err(format!(
            "must be at most {max_chars} characters, got {length}"
        ));
    }
    Ok(value)
}

fn forbidden_ranges() -> Vec<Ranges> {
    FORBIDDEN.iter().map(|(ranges, _)| *ranges).collect()
}

/// The pattern of [`text`] for the API's schemas (its length is `maxLength`).
pub fn text_pattern() -> String {
    chars::pattern_without_and_not_only(&forbidden_ranges(), &[WHITE_SPACE])
}

/// The pattern of [`PersonName::parse`]: [`text`] with a letter somewhere.
pub fn name_pattern() -> String {
    chars::pattern_without_and_not_only(&forbidden_ranges(), &[WHITE_SPACE, NOT_A_LETTER])
}

impl Description {
    pub fn parse(value: String) -> Result<Self, String> {
        text(value, MAX_DESCRIPTION_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Quantity {
    pub fn parse(value: i64) -> Result<Self, String> {
        if !QUANTITY_RANGE.contains(&value) {
            return Err(format!(
                "must be between {} and {}, got {value}",
                QUANTITY_RANGE.start(),
                QUANTITY_RANGE.end()
            ));
        }
        u16::try_from(value)
            .map(Self)
            .map_err(|_| "is out of range".to_owned())
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl PersonName {
    pub fn parse(value: String) -> Result<Self, String> {
        let value = text(value, MAX_NAME_CHARS)?;
        if value
            .chars()
            .all(|c| chars::contains(WHITE_SPACE, c) || chars::contains(NOT_A_LETTER, c))
        {
            return Err("must contain a letter".to_owned());
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EmailAddress {
    pub fn parse(value: String) -> Result<Self, String> {
        let value = shared_events::normalise_email(&value);
        if value.chars().count() > MAX_EMAIL_CHARS {
            return Err(format!("must be at most {MAX_EMAIL_CHARS} characters"));
        }
        // A bare address only: "Name <address>" would make the display text part of the
        // customer's identity.
        email_address::EmailAddress::parse_with_options(
            &value,
            email_address::Options::default().without_display_text(),
        )
        .map_err(|error| format!("is not a valid email address ({error})"))?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl CancellationReason {
    pub fn parse(value: String) -> Result<Self, String> {
        text(value, MAX_REASON_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl MinorUnits {
    pub fn parse(value: i64) -> Result<Self, String> {
        if UNIT_PRICE_RANGE.contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!(
                "must be between {} and {} minor units (cents), got {value}",
                UNIT_PRICE_RANGE.start(),
                UNIT_PRICE_RANGE.end()
            ))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<Self, String> {
        if IDEMPOTENCY_KEY_CHARS.contains(&value.len())
            && value.bytes().all(|byte| byte.is_ascii_graphic())
        {
            Ok(Self(value.to_owned()))
        } else {
            Err("must be 1 to 255 visible ASCII characters, such as a UUID".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pattern of [`IdempotencyKey::parse`] for the API's schemas.
    pub fn pattern() -> String {
        format!(
            "^[!-~]{{{},{}}}$",
            IDEMPOTENCY_KEY_CHARS.start(),
            IDEMPOTENCY_KEY_CHARS.end()
        )
    }
}

impl CurrencyCode {
    /// An active ISO 4217 code as the standard writes it, upper-case (the `iso_currency`
    /// crate's table, without superseded codes or the special ones: gold, test and "no
    /// currency" codes).
    pub fn parse(value: String) -> Result<Self, String> {
        match Currency::from_code(&value) {
            Some(currency) if is_active(currency) => Ok(Self(value)),
            _ => Err(format!(
                "must be an active ISO 4217 currency code such as EUR, got {value:?}"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The codes [`CurrencyCode::parse`] accepts, upper-case, for the API's schemas.
    pub fn active_codes() -> Vec<&'static str> {
        Currency::iter()
            .filter(|currency| is_active(*currency))
            .map(|currency| currency.code())
            .collect()
    }
}

fn is_active(currency: Currency) -> bool {
    currency.is_superseded().is_none() && !currency.is_special()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_must_not_be_blank() {
        assert!(Description::parse("   ".into()).is_err());
        assert!(Description::parse(String::new()).is_err());
        assert!(Description::parse("Tea".into()).is_ok());
    }

    #[test]
    fn a_description_may_have_500_characters_but_not_501() {
        assert!(Description::parse("é".repeat(500)).is_ok());
        let error = Description::parse("é".repeat(501)).unwrap_err();
        assert!(error.contains("501"), "{error}");
    }

    #[test]
    fn text_with_a_nul_character_is_rejected() {
        assert!(PersonName::parse("Ada\0".into()).is_err());
    }

    #[test]
    fn quantity_accepts_its_bounds_and_rejects_beyond_them() {
        assert_eq!(Quantity::parse(1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::parse(10_000).map(Quantity::get), Ok(10_000));
        for out_of_range in [0, -1, 10_001, i64::MAX, i64::MIN] {
            assert!(Quantity::parse(out_of_range).is_err(), "{out_of_range}");
        }
    }

    #[test]
    fn text_is_visible_on_one_line() {
        for bad in [
            "\u{200B}\u{200D} \u{FEFF}",
            "Ada\u{2028}Lovelace",
            "Ada\u{2029}",
            "\u{61C}Ada",
            "Ada\u{200B}",
            "\u{3164}",
            "\u{2800}",
            "\u{115F}Ada",
            "Ada\u{E0041}\u{E0042}",
            "Ada\u{E000}",
            "Ada\u{10FFFD}",
            "Ada\u{FDD0}",
            "Ada\u{FFFF}",
            "Ada\u{1FFFE}",
            "Ada\nLovelace",
            "Ada\r\nSet-Cookie: x",
            "\u{1b}[31mAda",
            "Ada\tLovelace",
            "Ada\0",
            "Ada \u{202E}ecalevol",
            "\u{2067}Ada",
        ] {
            assert!(
                PersonName::parse(bad.into()).is_err(),
                "{bad:?} was accepted"
            );
        }
        for good in ["Ada", "Zoë Ñúñez", "李 小龙", "O'Brien-Smith"] {
            assert!(
                PersonName::parse(good.into()).is_ok(),
                "{good:?} was refused"
            );
        }
    }

    #[test]
    fn a_name_needs_a_letter() {
        for bad in ["...", "-", "1234", "$ €", "!?\u{2026}"] {
            assert_eq!(
                PersonName::parse(bad.into()),
                Err("must contain a letter".to_owned()),
                "{bad:?}"
            );
        }
        for good in ["Ø", "J. 2nd", "李", "Ἀριστοτέλης"] {
            assert!(PersonName::parse(good.into()).is_ok(), "{good:?}");
        }
        assert!(Description::parse("1234".into()).is_ok());
    }

    #[test]
    fn names_are_limited_to_100_characters() {
        assert!(PersonName::parse("a".repeat(100)).is_ok());
        assert!(PersonName::parse("a".repeat(101)).is_err());
    }

    #[test]
    fn an_email_is_trimmed_and_lower_cased() {
        let email = EmailAddress::parse("  Ada@Example.COM ".into()).unwrap();
        assert_eq!(email.as_str(), "ada@example.com");
    }

    #[test]
    fn an_internationalised_domain_is_one_customer_in_either_spelling() {
        let unicode = EmailAddress::parse("leser@bücher.de".into()).unwrap();
        let ascii = EmailAddress::parse("leser@xn--bcher-kva.de".into()).unwrap();
        assert_eq!(unicode, ascii);
        assert_eq!(ascii.as_str(), "leser@xn--bcher-kva.de");
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@@example.com",
            "a b@example.com",
            "Bob <bob@example.com>",
            "victim@example.com <attacker@evil.example>",
        ] {
            assert!(
                EmailAddress::parse(bad.into()).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn a_unit_price_is_zero_to_ten_to_the_twelve_minor_units() {
        assert_eq!(MinorUnits::parse(0).map(MinorUnits::get), Ok(0));
        assert!(MinorUnits::parse(1_000_000_000_000).is_ok());
        assert!(MinorUnits::parse(-1).is_err());
        assert!(MinorUnits::parse(1_000_000_000_001).is_err());
    }

    #[test]
    fn a_currency_is_an_active_iso_4217_code_in_upper_case() {
        assert_eq!(CurrencyCode::parse("EUR".into()).unwrap().as_str(), "EUR");
        assert_eq!(CurrencyCode::parse("JPY".into()).unwrap().as_str(), "JPY");
        for bad in [
            "",
            "EU",
            "EURO",
            "E1R",
            "€€€",
            "ZZZ",
            "XXX",
            "XTS",
            "VES",
            "DEM",
            "eur",
            " EUR",
        ] {
            assert!(CurrencyCode::parse(bad.into()).is_err(), "{bad:?}");
        }
        let codes = CurrencyCode::active_codes();
        assert!(codes.len() > 150 && codes.contains(&"EUR"), "{codes:?}");
    }

    #[test]
    fn an_idempotency_key_is_visible_ascii_up_to_255_characters() {
        assert!(IdempotencyKey::parse("0193-abc_DEF").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in [String::new(), "k".repeat(256), "a b".into(), "ключ".into()] {
            assert!(IdempotencyKey::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_cancellation_reason_is_limited_to_500_characters() {
        assert!(CancellationReason::parse("x".repeat(500)).is_ok());
        assert!(CancellationReason::parse("x".repeat(501)).is_err());
        assert!(CancellationReason::parse(" ".into()).is_err());
    }

    #[test]
    fn an_operator_looking_email_is_not_an_email() {
        assert!(EmailAddress::parse("{\"$gt\": \"\"}".into()).is_err());
    }

    /// Each character alone, and each beside a letter, is accepted by the rule exactly when the
    /// schema's pattern matches it.
    #[test]
    fn the_text_pattern_accepts_what_the_rule_accepts() {
        let pattern = regex::Regex::new(&text_pattern()).unwrap();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            for sample in [c.to_string(), format!("a{c}"), format!("{c} ")] {
                assert_eq!(
                    pattern.is_match(&sample),
                    text(sample.clone(), MAX_NAME_CHARS).is_ok(),
                    "{sample:?}"
                );
            }
        }
    }

    /// Each character alone, and beside a space, is accepted as a name exactly when the
    /// schema's pattern matches it.
    #[test]
    fn the_name_pattern_accepts_what_the_rule_accepts() {
        let pattern = regex::Regex::new(&name_pattern()).unwrap();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            for sample in [c.to_string(), format!("{c} ")] {
                assert_eq!(
                    pattern.is_match(&sample),
                    PersonName::parse(sample.clone()).is_ok(),
                    "{sample:?}"
                );
            }
        }
    }

    #[test]
    fn the_key_pattern_accepts_what_the_rule_accepts() {
        let key = regex::Regex::new(&IdempotencyKey::pattern()).unwrap();
        for sample in [
            "a".to_owned(),
            "0193-abc_DEF".to_owned(),
            "x".repeat(255),
            "x".repeat(256),
            String::new(),
            "a b".to_owned(),
            "é".to_owned(),
        ] {
            assert_eq!(
                key.is_match(&sample),
                IdempotencyKey::parse(&sample).is_ok(),
                "{sample:?}"
            );
        }
    }
}
