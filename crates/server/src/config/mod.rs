//! The server's settings, in three layers that each override the one before:
//! `custos.toml` in the data directory, `CUSTOS_*` environment variables,
//! then command-line flags. Pure: the caller reads the file and the
//! environment; this module parses, layers and validates them, and says
//! where each effective value came from. It holds no secret, by design:
//! keys live in their own files, never in the configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use custos_core::custody::cosignature::WitnessVerifier;
use custos_core::protocol::{MAX_PATCH_BODY, MAX_UPLOAD_LENGTH};

/// Name of the configuration file inside the data directory.
pub const CONFIG_FILE: &str = "custos.toml";

/// Default address of `custos serve`: loopback, because the vault is meant to
/// sit behind a TLS proxy or an onion service, never on a public interface.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8630";

/// Longest a client may send nothing: before its request's headers are
/// complete (hyper then closes the connection), or between two pieces of
/// a body (`408 body_timeout`). A client that trickles or stalls would
/// otherwise hold a connection, and a buffer, for ever (slowloris). 30 s of
/// silence is far beyond a slow Tor circuit's pauses, and the clients
/// resume a cut upload from the vault's offset.
pub const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a stopping server lets requests in flight finish.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Most connections served at once by default. A small vault behind Tor
/// or a proxy sees a handful at a time; 256 leaves room for bursts while
/// keeping a flood of idle connections from taking every file descriptor.
pub const MAX_CONNECTIONS: usize = 256;

/// Most bytes of request bodies held in memory at once by default, across
/// all requests: 32 uploads' PATCHes of one chunk each. Bodies are buffered
/// whole (a PATCH is checked against its digest before it counts), so
/// without a budget a few slow senders could hold the vault's memory.
pub const MAX_BODY_BYTES_IN_FLIGHT: u64 = 128 * 1024 * 1024;

/// Most ciphertext one case may hold by default: one object of the largest
/// size. An anonymous submitter pays only a proof-of-work stamp for a case,
/// so a case cannot be a way to fill the disk without end; operators whose
/// cases hold days of video raise it.
pub const MAX_CASE_BYTES: u64 = MAX_UPLOAD_LENGTH;

/// Most uploads open at once on one case by default: the page and the CLI
/// send one file at a time, and a few resumes may overlap.
pub const MAX_CASE_OPEN_UPLOADS: usize = 8;

/// Default level of the server's log (a `tracing` filter).
pub const DEFAULT_LOG: &str = "info";

/// Errors in the configuration: each names the key and the layer it came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file is not valid TOML or has an unknown key.
    #[error("{file}: {message}")]
    File {
        /// The file's path as given.
        file: String,
        /// What the parser said.
        message: String,
    },
    /// One value is malformed or out of range.
    #[error("{key} (from {from}): {message}")]
    Value {
        /// The key, as written in the file.
        key: &'static str,
        /// Where the bad value came from.
        from: Source,
        /// What is wrong with it.
        message: String,
    },
}

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Built in.
    Default,
    /// `custos.toml`.
    File,
    /// A `CUSTOS_*` environment variable.
    Env,
    /// A command-line flag.
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::File => CONFIG_FILE,
            Source::Env => "environment",
            Source::Flag => "command line",
        })
    }
}

/// One layer of settings, every key optional: the file, the environment or
/// the flags. Keys are the same in all three: `max_upload_bytes` in the file
/// is `CUSTOS_MAX_UPLOAD_BYTES` in the environment and `--max-upload-bytes`
/// on the command line (`custos serve` and `custos config check` take this
/// struct as their flags, so a setting is declared here once for the file
/// and the flags; a flag beats the variable, which beats the file).
#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Settings (also custos.toml keys and CUSTOS_* variables)")]
pub struct Layer {
    /// Address to listen on [default: 127.0.0.1:8630] [env: CUSTOS_LISTEN].
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<String>,
    /// Public base URL clients use (scheme://host[:port]) when behind a
    /// proxy or an onion service; repeat it, or separate with commas, for a
    /// vault reached at several addresses [env: CUSTOS_PUBLIC_URL].
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub public_url: Option<Vec<String>>,
    /// Serve Prometheus /metrics on this address, apart from the API; keep
    /// it on loopback [default: off] [env: CUSTOS_METRICS_LISTEN].
    #[arg(long, value_name = "IP:PORT")]
    pub metrics_listen: Option<String>,
    /// Proof-of-work difficulty for opening a case, in leading zero bits
    /// (each step doubles the sender's cost; 18 is about a second in a
    /// browser) [default: 18] [env: CUSTOS_STAMP_BITS].
    #[arg(long, value_name = "BITS")]
    pub stamp_bits: Option<u8>,
    /// A witness to send every new checkpoint to, as URL,VKEY (its
    /// add-checkpoint prefix and its cosigning key); repeat for several
    /// [env: CUSTOS_WITNESS, separated by spaces].
    #[arg(long, value_name = "URL,VKEY")]
    pub witness: Option<Vec<String>>,
    /// The server log's filter: error, warn, info, debug [default: info]
    /// [env: CUSTOS_LOG].
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Largest object accepted, in bytes [default: 64 GiB]
    /// [env: CUSTOS_MAX_UPLOAD_BYTES].
    #[arg(long, value_name = "BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// Seconds a client may send nothing mid-request before it is cut off
    /// [default: 30] [env: CUSTOS_CLIENT_TIMEOUT_SECS].
    #[arg(long, value_name = "SECS")]
    pub client_timeout_secs: Option<u64>,
    /// Seconds a stopping server lets requests in flight finish
    /// [default: 30] [env: CUSTOS_SHUTDOWN_GRACE_SECS].
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Most connections served at once; more are refused with 503
    /// [default: 256] [env: CUSTOS_MAX_CONNECTIONS].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<u64>,
    /// Most bytes of request bodies held at once, across all requests
    /// [default: 128 MiB] [env: CUSTOS_MAX_BODY_BYTES_IN_FLIGHT].
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes_in_flight: Option<u64>,
    /// Most ciphertext one case may hold, stored and being uploaded
    /// [default: 64 GiB] [env: CUSTOS_MAX_CASE_BYTES].
    #[arg(long, value_name = "BYTES")]
    pub max_case_bytes: Option<u64>,
    /// Most uploads open at once on one case [default: 8]
    /// [env: CUSTOS_MAX_CASE_OPEN_UPLOADS].
    #[arg(long, value_name = "N")]
    pub max_case_open_uploads: Option<u64>,
}

/// Every key, in the order they are printed, with its environment variable.
pub const KEYS: [(&str, &str); 13] = [
    ("listen", "CUSTOS_LISTEN"),
    ("public_url", "CUSTOS_PUBLIC_URL"),
    ("metrics_listen", "CUSTOS_METRICS_LISTEN"),
    ("stamp_bits", "CUSTOS_STAMP_BITS"),
    ("witness", "CUSTOS_WITNESS"),
    ("log", "CUSTOS_LOG"),
    ("max_upload_bytes", "CUSTOS_MAX_UPLOAD_BYTES"),
    ("client_timeout_secs", "CUSTOS_CLIENT_TIMEOUT_SECS"),
    ("shutdown_grace_secs", "CUSTOS_SHUTDOWN_GRACE_SECS"),
    ("max_connections", "CUSTOS_MAX_CONNECTIONS"),
    ("max_body_bytes_in_flight", "CUSTOS_MAX_BODY_BYTES_IN_FLIGHT"),
    ("max_case_bytes", "CUSTOS_MAX_CASE_BYTES"),
    ("max_case_open_uploads", "CUSTOS_MAX_CASE_OPEN_UPLOADS"),
];

/// Most connections (or open uploads per case) a setting may allow: far
/// beyond what one machine serves, low enough to stay a sane number.
pub const MAX_CONNECTIONS_LIMIT: u64 = 1 << 20;

/// Most body bytes in flight a setting may allow: 1 TiB, and within what
/// the body budget's semaphore counts in KiB.
pub const MAX_BODY_BYTES_LIMIT: u64 = 1 << 40;

/// Longest client timeout or shutdown grace accepted: an hour. Longer would
/// let one silent client, or one stuck request, hold the vault for good.
pub const MAX_WAIT_SECS: u64 = 3600;

impl Layer {
    /// Parse `custos.toml`'s text; `file` names it in errors. Unknown keys
    /// are errors, so a misspelt limit is not silently left at its default.
    pub fn from_toml(file: &str, text: &str) -> Result<Layer, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            file: file.to_owned(),
            message: e.message().to_owned(),
        })
    }

    /// The layer given by `CUSTOS_*` variables, read through `var`. Lists
    /// are separated by commas (`public_url`) or by white space (`witness`,
    /// whose items hold a comma themselves).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
        let get = |key: &'static str| {
            let name = KEYS.iter().find(|(k, _)| *k == key).expect("known key").1;
            var(name).filter(|v| !v.trim().is_empty())
        };
        let number = |key: &'static str| -> Result<Option<u64>, ConfigError> {
            get(key)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| ConfigError::Value {
                        key,
                        from: Source::Env,
                        message: format!("{v:?} is not a whole number"),
                    })
                })
                .transpose()
        };
        let split = |v: String, comma: bool| -> Vec<String> {
            let parts: Vec<&str> = if comma {
                v.split(',').collect()
            } else {
                v.split_whitespace().collect()
            };
            parts
                .into_iter()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let stamp_bits = number("stamp_bits")?
            .map(|n| {
                u8::try_from(n).map_err(|_| ConfigError::Value {
                    key: "stamp_bits",
                    from: Source::Env,
                    message: format!("{n} is more than {}", custos_core::stamp::MAX_BITS),
                })
            })
            .transpose()?;
        Ok(Layer {
            listen: get("listen"),
            public_url: get("public_url").map(|v| split(v, true)),
            metrics_listen: get("metrics_listen"),
            stamp_bits,
            witness: get("witness").map(|v| split(v, false)),
            log: get("log"),
            max_upload_bytes: number("max_upload_bytes")?,
            client_timeout_secs: number("client_timeout_secs")?,
            shutdown_grace_secs: number("shutdown_grace_secs")?,
            max_connections: number("max_connections")?,
            max_body_bytes_in_flight: number("max_body_bytes_in_flight")?,
            max_case_bytes: number("max_case_bytes")?,
            max_case_open_uploads: number("max_case_open_uploads")?,
        })
    }
}

/// Read `custos.toml` from the data directory `dir` (when there is one and
/// it holds the file), the `CUSTOS_*` environment, and lay `flags` over
/// them.
pub fn load(dir: Option<&std::path::Path>, flags: Layer) -> Result<(Settings, Sources), ConfigError> {
    let file = match dir.map(|d| d.join(CONFIG_FILE)) {
        Some(path) if path.exists() => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                file: name.clone(),
                message: e.to_string(),
            })?;
            Layer::from_toml(&name, &text)?
        }
        _ => Layer::default(),
    };
    let env = Layer::from_env(|name| std::env::var(name).ok())?;
    Settings::resolve(file, env, flags)
}

/// The effective, validated settings of a server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URLs (scheme://host[:port], no trailing slash) that
    /// requests must be signed for; empty means the request's own Host.
    pub public_urls: Vec<String>,
    /// Where `/metrics` is served, apart from the API; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Proof-of-work difficulty for opening a case, in leading zero bits.
    pub stamp_bits: u8,
    /// Witnesses each new checkpoint is sent to.
    pub witnesses: Vec<WitnessConfig>,
    /// The server's log filter.
    pub log: String,
    /// Largest object accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Longest a client may stay silent mid-request.
    pub client_timeout: Duration,
    /// Longest a stopping server lets requests in flight finish.
    pub shutdown_grace: Duration,
    /// Most connections served at once; more are answered
    /// `503 too_many_connections` and closed.
    pub max_connections: usize,
    /// Most bytes of request bodies held at once across all requests; a
    /// body that would pass it is answered `503 server_busy`.
    pub max_body_bytes_in_flight: u64,
    /// Most ciphertext one case may hold: its objects plus the declared
    /// lengths of its open uploads.
    pub max_case_bytes: u64,
    /// Most uploads open at once on one case.
    pub max_case_open_uploads: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            public_urls: Vec::new(),
            metrics_listen: None,
            stamp_bits: custos_core::stamp::DEFAULT_BITS,
            witnesses: Vec::new(),
            log: DEFAULT_LOG.into(),
            max_upload_bytes: MAX_UPLOAD_LENGTH,
            client_timeout: CLIENT_TIMEOUT,
            shutdown_grace: SHUTDOWN_GRACE,
            max_connections: MAX_CONNECTIONS,
            max_body_bytes_in_flight: MAX_BODY_BYTES_IN_FLIGHT,
            max_case_bytes: MAX_CASE_BYTES,
            max_case_open_uploads: MAX_CASE_OPEN_UPLOADS,
        }
    }
}

/// Where each key's effective value came from.
pub type Sources = BTreeMap<&'static str, Source>;

/// The value of the highest layer that has one, and where it came from.
fn pick<T>(sources: &mut Sources, key: &'static str, layers: [(Source, Option<T>); 3]) -> Option<(Source, T)> {
    for (source, value) in layers.into_iter().rev() {
        if let Some(v) = value {
            sources.insert(key, source);
            return Some((source, v));
        }
    }
    sources.insert(key, Source::Default);
    None
}

impl Settings {
    /// Layer `file` < `env` < `flags` over the defaults and validate the
    /// result.
    pub fn resolve(file: Layer, env: Layer, flags: Layer) -> Result<(Settings, Sources), ConfigError> {
        let mut s = Settings::default();
        let mut src = Sources::new();
        macro_rules! layers {
            ($key:ident) => {
                [
                    (Source::File, file.$key.clone()),
                    (Source::Env, env.$key.clone()),
                    (Source::Flag, flags.$key.clone()),
                ]
            };
        }
        let bad = |key: &'static str, source: Source, message: String| ConfigError::Value {
            key,
            from: source,
            message,
        };
        if let Some((from, v)) = pick(&mut src, "listen", layers!(listen)) {
            s.listen = v
                .parse()
                .map_err(|_| bad("listen", from, format!("{v:?} is not IP:PORT")))?;
        }
        if let Some((from, urls)) = pick(&mut src, "public_url", layers!(public_url)) {
            s.public_urls = urls
                .iter()
                .map(|u| public_url(u).map_err(|m| bad("public_url", from, m)))
                .collect::<Result<_, _>>()?;
        }
        if let Some((from, v)) = pick(&mut src, "metrics_listen", layers!(metrics_listen)) {
            s.metrics_listen = Some(
                v.parse()
                    .map_err(|_| bad("metrics_listen", from, format!("{v:?} is not IP:PORT")))?,
            );
        }
        if let Some((from, bits)) = pick(&mut src, "stamp_bits", layers!(stamp_bits)) {
            if bits > custos_core::stamp::MAX_BITS {
                return Err(bad(
                    "stamp_bits",
                    from,
                    format!("{bits} is more than {}", custos_core::stamp::MAX_BITS),
                ));
            }
            s.stamp_bits = bits;
        }
        if let Some((from, list)) = pick(&mut src, "witness", layers!(witness)) {
            s.witnesses = list
                .iter()
                .map(|w| w.parse().map_err(|m| bad("witness", from, m)))
                .collect::<Result<_, _>>()?;
        }
        if let Some((from, filter)) = pick(&mut src, "log", layers!(log)) {
            tracing_subscriber::EnvFilter::try_new(&filter)
                .map_err(|e| bad("log", from, format!("{filter:?} is not a log filter: {e}")))?;
            s.log = filter;
        }
        if let Some((from, n)) = pick(&mut src, "max_upload_bytes", layers!(max_upload_bytes)) {
            if n == 0 || n > MAX_UPLOAD_LENGTH {
                return Err(bad(
                    "max_upload_bytes",
                    from,
                    format!("must be 1 to {} bytes", MAX_UPLOAD_LENGTH),
                ));
            }
            s.max_upload_bytes = n;
        }
        for (key, value, slot) in [
            (
                "client_timeout_secs",
                layers!(client_timeout_secs),
                &mut s.client_timeout,
            ),
            (
                "shutdown_grace_secs",
                layers!(shutdown_grace_secs),
                &mut s.shutdown_grace,
            ),
        ] {
            if let Some((from, n)) = pick(&mut src, key, value) {
                if n == 0 || n > MAX_WAIT_SECS {
                    return Err(bad(key, from, format!("must be 1 to {MAX_WAIT_SECS} seconds")));
                }
                *slot = Duration::from_secs(n);
            }
        }
        // Limits: zero would refuse everything; the upper bounds keep the
        // numbers meaningful (and within what a semaphore counts).
        let mut limit = |key: &'static str, layers, max: u64| match pick(&mut src, key, layers) {
            Some((from, n)) if n == 0 || n > max => Err(bad(key, from, format!("must be 1 to {max}"))),
            picked => Ok(picked.map(|(_, n)| n)),
        };
        if let Some(n) = limit("max_connections", layers!(max_connections), MAX_CONNECTIONS_LIMIT)? {
            s.max_connections = n as usize;
        }
        if let Some(n) = limit(
            "max_body_bytes_in_flight",
            layers!(max_body_bytes_in_flight),
            MAX_BODY_BYTES_LIMIT,
        )? {
            s.max_body_bytes_in_flight = n;
        }
        if let Some(n) = limit("max_case_bytes", layers!(max_case_bytes), u64::MAX / 2)? {
            s.max_case_bytes = n;
        }
        if let Some(n) = limit(
            "max_case_open_uploads",
            layers!(max_case_open_uploads),
            MAX_CONNECTIONS_LIMIT,
        )? {
            s.max_case_open_uploads = n as usize;
        }
        if s.max_body_bytes_in_flight < MAX_PATCH_BODY as u64 {
            return Err(ConfigError::Value {
                key: "max_body_bytes_in_flight",
                from: src["max_body_bytes_in_flight"],
                message: format!("must be at least {} (one upload request's body)", MAX_PATCH_BODY),
            });
        }
        Ok((s, src))
    }

    /// The settings as a TOML file would hold them, each line followed by
    /// where its value came from. Witness URLs are shown without any
    /// user name or password they carry.
    pub fn to_toml(&self, sources: &Sources) -> String {
        let mut out = String::new();
        for (key, value) in self.entries() {
            let from = sources.get(key).copied().unwrap_or(Source::Default);
            match value {
                Some(value) => out.push_str(&format!("{key} = {value}    # {from}\n")),
                None => out.push_str(&format!("# {key} is not set    # {from}\n")),
            }
        }
        out
    }

    /// The settings as JSON values, keyed as in the file.
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .entries()
            .into_iter()
            .map(|(key, value)| {
                let value = value.map_or(serde_json::Value::Null, |v| {
                    serde_json::to_value(v).expect("TOML values are JSON values")
                });
                (key.to_owned(), value)
            })
            .collect();
        serde_json::Value::Object(map)
    }

    /// Each key and its value (`None`: not set).
    fn entries(&self) -> Vec<(&'static str, Option<toml::Value>)> {
        let text = |v: String| toml::Value::String(v);
        let list = |items: Vec<String>| toml::Value::Array(items.into_iter().map(text).collect());
        // Every limit is far below i64::MAX (validated in `resolve`).
        let int = |n: u64| toml::Value::Integer(n as i64);
        vec![
            ("listen", Some(text(self.listen.to_string()))),
            ("public_url", Some(list(self.public_urls.clone()))),
            ("metrics_listen", self.metrics_listen.map(|a| text(a.to_string()))),
            ("stamp_bits", Some(int(self.stamp_bits.into()))),
            (
                "witness",
                Some(list(
                    self.witnesses
                        .iter()
                        .map(|w| format!("{},{}", without_userinfo(&w.url), w.verifier.vkey()))
                        .collect(),
                )),
            ),
            ("log", Some(text(self.log.clone()))),
            ("max_upload_bytes", Some(int(self.max_upload_bytes))),
            ("client_timeout_secs", Some(int(self.client_timeout.as_secs()))),
            ("shutdown_grace_secs", Some(int(self.shutdown_grace.as_secs()))),
            ("max_connections", Some(int(self.max_connections as u64))),
            ("max_body_bytes_in_flight", Some(int(self.max_body_bytes_in_flight))),
            ("max_case_bytes", Some(int(self.max_case_bytes))),
            ("max_case_open_uploads", Some(int(self.max_case_open_uploads as u64))),
        ]
    }

    /// Warnings about settings that are valid but probably a mistake.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.listen.ip().is_loopback() {
            out.push(format!(
                "listen = {} is not a loopback address: custos has no TLS of its own and should be \
                 reached through a TLS proxy or an onion service on the same machine",
                self.listen
            ));
        }
        if let Some(m) = self.metrics_listen {
            if !m.ip().is_loopback() {
                out.push(format!(
                    "metrics_listen = {m} is not a loopback address: anyone who reaches it sees when \
                     the vault is busy"
                ));
            }
            if m == self.listen {
                out.push("metrics_listen is the same address as listen; one of them will fail".into());
            }
        }
        // Also on loopback: behind an onion service or a proxy, clients sign
        // for its address, which the vault cannot guess.
        if self.public_urls.is_empty() {
            out.push(
                "public_url is not set: only requests signed for the address custos listens on are \
                 accepted; behind a proxy or an onion service, set it to every URL clients use"
                    .into(),
            );
        }
        out
    }
}

/// Check a public base URL: http or https, a host, nothing after it.
fn public_url(url: &str) -> Result<String, String> {
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

/// A URL without the `user:password@` part, for printing.
fn without_userinfo(url: &str) -> String {
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

/// A witness the vault pushes to: its URL (the submission prefix) and key.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    /// Submission prefix; `add-checkpoint` is appended.
    pub url: String,
    /// The witness's key.
    pub verifier: WitnessVerifier,
}

impl std::str::FromStr for WitnessConfig {
    type Err = String;

    /// `URL,VKEY`: the witness's submission prefix and its vkey.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (url, vkey) = s.rsplit_once(',').ok_or("a witness is given as URL,VKEY")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err("the witness URL must start with http:// or https://".into());
        }
        let verifier = WitnessVerifier::parse(vkey).map_err(|e| format!("witness vkey: {e}"))?;
        Ok(WitnessConfig {
            url: url.trim_end_matches('/').to_owned(),
            verifier,
        })
    }
}

#[cfg(test)]
mod tests;
