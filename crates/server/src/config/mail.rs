//! The digest's settings: its schedule and the SMTP relay it goes through.
//! Checks of single values, the one check across them (plain SMTP only to
//! a relay on this machine), and how they print. The credentials file is
//! only named here; `digest::mailer` reads it when the server starts.

use std::net::IpAddr;
use std::path::PathBuf;

use super::Printed;
use custos_core::identity::contact::EmailAddress;

/// The mail submission port (RFC 6409), where relays take STARTTLS.
pub const SMTP_SUBMISSION_PORT: u16 = 587;

/// Shortest digest interval to a relay on another machine: an hour. The
/// relay and the lawyers' mail providers see when each digest comes; at
/// short intervals the counts in successive digests would date each
/// case's arrival to within the interval. Below it only to a relay on
/// this machine (tests and demos; see [`check`]).
pub const MIN_DIGEST_INTERVAL_SECS: u64 = 3600;

/// Longest digest interval: 30 days. Longer, and a lawyer would rather
/// look at the vault than wait for it.
pub const MAX_DIGEST_INTERVAL_SECS: u64 = 30 * 24 * 3600;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP, then STARTTLS, which must succeed (no fallback to
    /// plain): port 587.
    StartTls,
    /// TLS from the first byte (SMTPS): port 465.
    Tls,
    /// No encryption: only to a relay on this machine (which then
    /// forwards with TLS), since the mail and the relay's password would
    /// cross the network in the clear.
    Plain,
}

impl std::str::FromStr for SmtpSecurity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "starttls" => Ok(SmtpSecurity::StartTls),
            "tls" => Ok(SmtpSecurity::Tls),
            "plain" => Ok(SmtpSecurity::Plain),
            other => Err(format!("{other:?} is not starttls, tls or plain")),
        }
    }
}

impl SmtpSecurity {
    /// As the setting spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::StartTls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::Plain => "plain",
        }
    }
}

impl Printed for SmtpSecurity {
    fn printed(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.as_str().into()))
    }
}

impl Printed for EmailAddress {
    fn printed(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.as_str().into()))
    }
}

impl Printed for PathBuf {
    fn printed(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.display().to_string()))
    }
}

impl Printed for u16 {
    fn printed(&self) -> Option<toml::Value> {
        Some(toml::Value::Integer(i64::from(*self)))
    }
}

/// 0 (off) or 1 second to [`MAX_DIGEST_INTERVAL_SECS`]; the floor of
/// [`MIN_DIGEST_INTERVAL_SECS`] depends on the relay and is in [`check`].
pub(super) fn interval(secs: u64) -> Result<u64, String> {
    if secs > MAX_DIGEST_INTERVAL_SECS {
        return Err(format!("must be 0 (off) to {MAX_DIGEST_INTERVAL_SECS} seconds"));
    }
    Ok(secs)
}

/// A TCP port, 1 to 65535.
pub(super) fn port(n: u64) -> Result<u16, String> {
    u16::try_from(n)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{n} is not a port (1 to 65535)"))
}

/// A host name or an IP address, nothing else (no port, scheme or path:
/// those are other settings).
pub(super) fn relay_host(host: &str) -> Result<String, String> {
    let host = host.trim();
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.parse::<IpAddr>().is_ok() || (host.len() <= 253 && host.split('.').all(label)) {
        Ok(host.to_owned())
    } else {
        Err(format!(
            "{host:?} is not a host name or an IP address (the port is smtp_port)"
        ))
    }
}

/// Whether `host` is this machine: `localhost` or a loopback address. A
/// name is not resolved: only `localhost` itself counts.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A path, not empty. The file is read when the server starts.
pub(super) fn credentials_path(path: String) -> Result<PathBuf, String> {
    if path.trim().is_empty() {
        return Err("is empty".into());
    }
    Ok(PathBuf::from(path))
}

/// The sender's address, in the plain form a lawyer's is.
pub(super) fn from_address(text: String) -> Result<EmailAddress, String> {
    EmailAddress::parse(text.trim()).map_err(|e| format!("{text:?} is not an address: it {e}"))
}

/// The checks across the mail settings: which key is at fault, and why.
/// An interval under [`MIN_DIGEST_INTERVAL_SECS`] is taken only with a
/// relay on this machine: that is how the tests and demos run digests
/// seconds apart, with no switch that could ship turned on.
pub(super) fn check(s: &super::Settings) -> Result<(), (&'static str, String)> {
    if s.smtp_security == SmtpSecurity::Plain {
        match &s.smtp_relay {
            Some(host) if !is_loopback_host(host) => {
                return Err((
                    "smtp_security",
                    format!(
                        "plain SMTP to {host} would send the digests and the relay's password in the clear; \
                         use starttls or tls, or a relay on this machine (localhost)"
                    ),
                ))
            }
            _ => {}
        }
    }
    if (1..MIN_DIGEST_INTERVAL_SECS).contains(&s.digest_interval_secs)
        && !s.smtp_relay.as_deref().is_some_and(is_loopback_host)
    {
        return Err((
            "digest_interval_secs",
            format!(
                "{} s would tell the relay and the lawyers' mail providers within {} s when each case came; \
                 use at least {MIN_DIGEST_INTERVAL_SECS} (shorter only to a relay on this machine, for tests and demos)",
                s.digest_interval_secs, s.digest_interval_secs
            ),
        ));
    }
    if s.digest_interval_secs > 0 && (s.smtp_relay.is_none() || s.smtp_from.is_none()) {
        return Err(("digest_interval_secs", "digests need smtp_relay and smtp_from".into()));
    }
    Ok(())
}
