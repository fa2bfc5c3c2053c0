//! A principal's contact address: where the vault mails a lawyer's digest.
//! An admin sets it with a signed request, so it sits in the custody log,
//! and the server writes it into a mail header: it is checked plainly and
//! strictly, here, by the server, the auditor and the CLI alike, so that no
//! address can carry a second header, a second recipient or a display name.

use std::fmt;

/// Longest address accepted, in bytes: RFC 5321's limit on a path (256,
/// less the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// Longest local part (before the `@`), in bytes: RFC 5321's limit.
pub const MAX_LOCAL_PART_LEN: usize = 64;

/// A mail address in the one plain form custos accepts: `local@domain`,
/// printable ASCII only, no white space, no quoting, comments, brackets or
/// address lists.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// Longer than [`MAX_EMAIL_LEN`] bytes.
    #[error("is longer than {MAX_EMAIL_LEN} bytes")]
    TooLong,
    /// Holds a space, a tab, a line break or another control character.
    #[error("holds white space or a control character")]
    WhiteSpace,
    /// Holds a character outside printable ASCII (internationalised
    /// addresses are not supported).
    #[error("holds a character outside printable ASCII")]
    NotAscii,
    /// Not exactly one `@`.
    #[error("must hold exactly one @")]
    NotOneAt,
    /// The part before the `@` is empty, too long, or holds a character
    /// that would need quoting (`"`, `(`, `,`, `<`, ...), or a dot at an
    /// end or twice in a row.
    #[error(
        "the part before @ is empty, longer than {MAX_LOCAL_PART_LEN} bytes, or holds a character that needs quoting"
    )]
    LocalPart,
    /// The part after the `@` is not a host name: labels of letters,
    /// digits and hyphens, separated by single dots.
    #[error("the part after @ is not a host name")]
    Domain,
}

impl EmailAddress {
    /// Check `text` and take it as an address.
    pub fn parse(text: &str) -> Result<Self, EmailError> {
        if text.len() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::WhiteSpace);
        }
        if !text.is_ascii() {
            return Err(EmailError::NotAscii);
        }
        let mut parts = text.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::NotOneAt);
        };
        // RFC 5322's atext, and dots between runs of it: a dot-atom, which
        // needs no quoting anywhere in a header.
        let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
        let dot_atom = |s: &str| !s.is_empty() && s.split('.').all(|run| !run.is_empty() && run.bytes().all(atext));
        if local.len() > MAX_LOCAL_PART_LEN || !dot_atom(local) {
            return Err(EmailError::LocalPart);
        }
        let label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !domain.split('.').all(label) {
            return Err(EmailError::Domain);
        }
        Ok(EmailAddress(text.to_owned()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = EmailError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        EmailAddress::parse(&text).map_err(|e| serde::de::Error::custom(format!("an address that {e}")))
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Only the domain: an address is someone's, and debug output ends up in
/// logs.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress(..@{})", self.domain())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_pass() {
        for ok in [
            "lawyer@example.org",
            "a.b+digest@mail.example-firm.kz",
            "x@localhost",
            "o'brien@example.org",
        ] {
            assert_eq!(EmailAddress::parse(ok).unwrap().as_str(), ok);
        }
        let long_local = format!("{}@example.org", "a".repeat(MAX_LOCAL_PART_LEN));
        assert!(EmailAddress::parse(&long_local).is_ok());
    }

    /// Anything that could end a header line, add a header or a
    /// recipient, or name someone else is refused.
    #[test]
    fn header_injection_is_impossible() {
        use EmailError::*;
        for (bad, why) in [
            ("lawyer@example.org\r\nBcc: spy@example.net", WhiteSpace),
            ("lawyer@example.org\nX: y", WhiteSpace),
            ("lawyer@example.org\r", WhiteSpace),
            ("law yer@example.org", WhiteSpace),
            ("lawyer@example.org\t", WhiteSpace),
            ("lawyer\0@example.org", WhiteSpace),
            ("lawyer@example.org\u{85}", WhiteSpace),
            ("lаwyer@example.org", NotAscii),
            ("lawyer@example.org,spy@example.net", NotOneAt),
            ("lawyer", NotOneAt),
            ("a@b@example.org", NotOneAt),
            ("\"ab\"@example.org", LocalPart),
            ("Spy <spy@example.net>", WhiteSpace),
            ("<spy@example.net>", LocalPart),
            ("spy(comment)@example.net", LocalPart),
            ("a;b@example.org", LocalPart),
            ("a:b@example.org", LocalPart),
            (".a@example.org", LocalPart),
            ("a..b@example.org", LocalPart),
            ("@example.org", LocalPart),
            ("lawyer@", Domain),
            ("lawyer@example..org", Domain),
            ("lawyer@-example.org", Domain),
            ("lawyer@[127.0.0.1]", Domain),
            ("lawyer@example.org>", Domain),
        ] {
            assert_eq!(EmailAddress::parse(bad), Err(why), "{bad:?}");
        }
        let long = format!("{}@{}.org", "a".repeat(60), "b".repeat(200));
        assert_eq!(EmailAddress::parse(&long), Err(TooLong));
        let long_local = format!("{}@example.org", "a".repeat(MAX_LOCAL_PART_LEN + 1));
        assert_eq!(EmailAddress::parse(&long_local), Err(LocalPart));
    }

    #[test]
    fn debug_shows_the_domain_only_and_serde_checks() {
        let a = EmailAddress::parse("lawyer@example.org").unwrap();
        assert_eq!(format!("{a:?}"), "EmailAddress(..@example.org)");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"lawyer@example.org\"");
        let back: EmailAddress = serde_json::from_str("\"lawyer@example.org\"").unwrap();
        assert_eq!(back, a);
        assert!(serde_json::from_str::<EmailAddress>("\"a@b\\r\\nBcc: c@d\"").is_err());
    }
}
