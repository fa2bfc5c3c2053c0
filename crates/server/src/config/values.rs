//! One setting's value on its way in and out: read from its `CUSTOS_*`
//! variable, checked into its effective form, and printed back as
//! `custos config check` shows it. Each entry of the `settings!` table in
//! `mod.rs` names the functions here it uses.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;

// Reading a variable: each setting names one of these in `settings!`.

/// A `CUSTOS_*` variable through `var`, read by `read`; empty (or only
/// white space) is unset.
pub(super) fn read_var<T>(
    var: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    name: &str,
    read: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    let Some(text) = var(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    read(&text).map(Some).map_err(|message| ConfigError::Value {
        key,
        from: Source::Env,
        message,
    })
}

/// The variable as it is.
pub(super) fn text(v: &str) -> Result<String, String> {
    Ok(v.to_owned())
}

/// A whole number, white space around it allowed.
pub(super) fn whole_number(v: &str) -> Result<u64, String> {
    v.trim().parse().map_err(|_| format!("{v:?} is not a whole number"))
}

/// A whole number that fits the flag's type; `stamp_bits` checks the rest.
pub(super) fn stamp_bits_text(v: &str) -> Result<u8, String> {
    let n = whole_number(v)?;
    u8::try_from(n).map_err(|_| format!("{n} is more than {}", custos_core::stamp::MAX_BITS))
}

/// Items separated by commas, as the flag's own values are.
pub(super) fn items_by_comma(v: &str) -> Result<Vec<String>, String> {
    Ok(items(v.split(',')))
}

/// Items separated by white space, for items that hold a comma themselves.
pub(super) fn items_by_white_space(v: &str) -> Result<Vec<String>, String> {
    Ok(items(v.split_whitespace()))
}

/// The non-empty items, trimmed.
pub(super) fn items<'a>(parts: impl Iterator<Item = &'a str>) -> Vec<String> {
    parts
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

// Checking a value from any layer: each setting names one of these (or a
// closure over one) in `settings!`.

/// An `IP:PORT` address.
pub(super) fn socket_address(v: String) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| format!("{v:?} is not IP:PORT"))
}

/// At most `MAX_BITS`, the most a client is asked to pay.
pub(super) fn stamp_bits(bits: u8) -> Result<u8, String> {
    if bits > custos_core::stamp::MAX_BITS {
        return Err(format!("{bits} is more than {}", custos_core::stamp::MAX_BITS));
    }
    Ok(bits)
}

/// A `tracing` filter.
pub(super) fn log_filter(filter: String) -> Result<String, String> {
    match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(_) => Ok(filter),
        Err(e) => Err(format!("{filter:?} is not a log filter: {e}")),
    }
}

/// Limits: zero would refuse everything; the upper bound keeps the number
/// meaningful (and within what a semaphore counts). `unit` follows `max`.
pub(super) fn one_to(max: u64, unit: &str, n: u64) -> Result<u64, String> {
    if n == 0 || n > max {
        return Err(format!("must be 1 to {max}{unit}"));
    }
    Ok(n)
}

/// A count of connections or uploads, 1 to `MAX_CONNECTIONS_LIMIT`.
pub(super) fn count(n: u64) -> Result<usize, String> {
    one_to(MAX_CONNECTIONS_LIMIT, "", n).map(|n| n as usize)
}

/// A wait of 1 to `MAX_WAIT_SECS` seconds.
pub(super) fn seconds(n: u64) -> Result<Duration, String> {
    one_to(MAX_WAIT_SECS, " seconds", n).map(Duration::from_secs)
}

/// Check a public base URL: http or https, a host, nothing after it.
pub(super) fn public_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} must start with https:// or http://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "{url:?} must be scheme://host[:port] only, with no path, query or user name"
        ));
    }
    Ok(trimmed.to_owned())
}

/// An effective value as `custos.toml` would hold it (`None`: not set), for
/// `custos config check`.
pub(super) trait Printed {
    /// The value, or `None` when it is not set.
    fn printed(&self) -> Option<toml::Value>;
}

impl Printed for String {
    fn printed(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }
}

impl Printed for SocketAddr {
    fn printed(&self) -> Option<toml::Value> {
        self.to_string().printed()
    }
}

impl<T: Printed> Printed for Option<T> {
    fn printed(&self) -> Option<toml::Value> {
        self.as_ref().and_then(T::printed)
    }
}

impl<T: Printed> Printed for Vec<T> {
    fn printed(&self) -> Option<toml::Value> {
        Some(toml::Value::Array(self.iter().filter_map(T::printed).collect()))
    }
}

impl Printed for u64 {
    fn printed(&self) -> Option<toml::Value> {
        // Every limit is far below i64::MAX (checked in `settings!`).
        Some(toml::Value::Integer(*self as i64))
    }
}

impl Printed for u8 {
    fn printed(&self) -> Option<toml::Value> {
        u64::from(*self).printed()
    }
}

impl Printed for usize {
    fn printed(&self) -> Option<toml::Value> {
        (*self as u64).printed()
    }
}

impl Printed for Duration {
    /// In seconds: every duration setting is a `*_secs` key.
    fn printed(&self) -> Option<toml::Value> {
        self.as_secs().printed()
    }
}

impl Printed for WitnessConfig {
    /// Without the URL's user name and password.
    fn printed(&self) -> Option<toml::Value> {
        format!("{},{}", without_userinfo(&self.url), self.verifier.vkey()).printed()
    }
}

/// A URL without the `user:password@` part, for printing.
pub(super) fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}
