//! A customer's identity is their email address, in one spelling on both sides.

/// The form in which an email address identifies a customer: trimmed, lower-cased, and with an
/// internationalised domain in its ASCII (punycode) form, so that `bücher.de` and
/// `xn--bcher-kva.de` are one mailbox. A domain that is not a valid IDNA name is kept as
/// given, for validation to refuse.
pub fn normalise_email(raw: &str) -> String {
    let lowered = raw.trim().to_lowercase();
    match lowered.rsplit_once('@') {
        Some((local, domain)) => match idna::domain_to_ascii(domain) {
            Ok(ascii) if !ascii.is_empty() => format!("{local}@{ascii}"),
            _ => lowered,
        },
        None => lowered,
    }
}

#[cfg(test)]
mod tests {
    use super::normalise_email;

    #[test]
    fn one_mailbox_has_one_spelling() {
        assert_eq!(normalise_email("  Ada@Example.COM "), "ada@example.com");
        assert_eq!(
            normalise_email("Leser@Bücher.de"),
            normalise_email("leser@xn--bcher-kva.de")
        );
        assert_eq!(normalise_email("leser@bücher.de"), "leser@xn--bcher-kva.de");
    }

    #[test]
    fn what_is_not_an_address_is_left_for_validation() {
        assert_eq!(normalise_email("no-at-sign"), "no-at-sign");
        assert_eq!(normalise_email("ada@"), "ada@");
    }
}
