//! The server's settings, in three layers that each override the one before:
//! `custos.toml` in the data directory, `CUSTOS_*` environment variables,
//! then command-line flags. Pure: the caller reads the file and the
//! environment; this module parses, layers and validates them, and says
//! where each effective value came from. It holds no secret, by design:
//! keys live in their own files, never in the configuration.
//!
//! Each setting is declared once, in the `settings!` table below: its file
//! key, flag, variable, type, default and check. A new setting is a new
//! entry there (and its line in `deploy/custos.toml.example`). The
//! digest's mail settings check and print through `mail`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use custos_core::custody::cosignature::WitnessVerifier;
use custos_core::identity::contact::EmailAddress;
use custos_core::protocol::{MAX_PATCH_BODY, MAX_UPLOAD_LENGTH};

mod mail;
mod storage;
mod values;

use self::values::*;

pub use mail::{is_loopback_host, SmtpSecurity, MAX_DIGEST_INTERVAL_SECS, SMTP_SUBMISSION_PORT};
pub use storage::StorageKind;

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

/// Most connections (or open uploads per case) a setting may allow: far
/// beyond what one machine serves, low enough to stay a sane number.
pub const MAX_CONNECTIONS_LIMIT: u64 = 1 << 20;

/// Most body bytes in flight a setting may allow: 1 TiB, and within what
/// the body budget's semaphore counts in KiB.
pub const MAX_BODY_BYTES_LIMIT: u64 = 1 << 40;

/// Longest client timeout or shutdown grace accepted: an hour. Longer would
/// let one silent client, or one stuck request, hold the vault for good.
pub const MAX_WAIT_SECS: u64 = 3600;

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

/// Declares every server setting, each once, in the two stages ripgrep's
/// flags have (raw, then validated). An entry reads:
///
/// ```text
/// /// The flag's help: what it does, its default, its variable.
/// #[arg(value_name = "...")]                 // more of the flag, for clap
/// key: Raw, env "CUSTOS_KEY" by read,       // the raw setting
///     /// What the effective value is.
///     => field: Effective = default, check;   // the validated setting
/// ```
///
/// `key` is the `custos.toml` key and, with dashes, the flag of
/// `custos serve` and `custos config check`; `read` turns the variable's
/// text into a `Raw` (an empty variable is unset); `check` turns a `Raw`
/// from any layer into the `Effective` value of `Settings::field`, or says
/// what is wrong with it. From the entries follow [`Layer`] (the file's
/// keys for serde, the flags for clap), [`KEYS`], [`Layer::from_env`],
/// [`Settings`] and its default, the choice of layer in
/// [`Settings::resolve`] with the record of where each value came from,
/// and what `custos config check` prints.
///
/// Not clap's own `env = "..."`: it would report a bad variable as a bad
/// flag (naming `--key`, not the variable), take an empty variable
/// as an empty value, not split `CUSTOS_WITNESS` at white space (its items
/// hold a comma), print the variables' values in `--help`, and read the
/// process's environment where the tests want to hand it one.
macro_rules! settings {
    ($(
        $(#[doc = $help:tt])*
        #[arg($($arg:tt)*)]
        $key:ident: $raw:ty, env $var:literal by $read:expr,
        $(#[doc = $doc:tt])*
        => $field:ident: $effective:ty = $default:expr, $check:expr;
    )*) => {
        /// One layer of settings, every key optional: the file, the
        /// environment or the flags. Keys are the same in all three:
        /// `max_upload_bytes` in the file is `CUSTOS_MAX_UPLOAD_BYTES` in
        /// the environment and `--max-upload-bytes` on the command line
        /// (`custos serve` and `custos config check` take this struct as
        /// their flags; a flag beats the variable, which beats the file).
        #[derive(Debug, Default, Clone, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        #[command(next_help_heading = "Settings (also custos.toml keys and CUSTOS_* variables)")]
        pub struct Layer {
            $(
                $(#[doc = $help])*
                #[arg(long, $($arg)*)]
                pub $key: Option<$raw>,
            )*
        }

        /// Every key, in the order they are printed, with its environment
        /// variable.
        pub const KEYS: &[(&str, &str)] = &[$((stringify!($key), $var)),*];

        impl Layer {
            /// The layer given by `CUSTOS_*` variables, read through `var`.
            pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
                Ok(Layer {
                    $($key: read_var(&var, stringify!($key), $var, $read)?,)*
                })
            }
        }

        /// The effective, validated settings of a server.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $(
                $(#[doc = $doc])*
                pub $field: $effective,
            )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $($field: $default,)* }
            }
        }

        impl Settings {
            /// Each key from the highest layer that has it, checked, over
            /// the defaults; and where each came from.
            fn layered(file: Layer, env: Layer, flags: Layer) -> Result<(Settings, Sources), ConfigError> {
                let mut settings = Settings::default();
                let mut sources = Sources::new();
                $(
                    let key = stringify!($key);
                    let layers = [(Source::File, file.$key), (Source::Env, env.$key), (Source::Flag, flags.$key)];
                    if let Some((from, raw)) = pick(&mut sources, key, layers) {
                        let check: fn($raw) -> Result<$effective, String> = $check;
                        settings.$field = check(raw).map_err(|message| ConfigError::Value { key, from, message })?;
                    }
                )*
                Ok((settings, sources))
            }

            /// Each key and its value (`None`: not set).
            fn entries(&self) -> Vec<(&'static str, Option<toml::Value>)> {
                vec![$((stringify!($key), self.$field.printed()),)*]
            }
        }
    };
}

settings! {
    /// Address to listen on [default: 127.0.0.1:8630] [env: CUSTOS_LISTEN].
    #[arg(value_name = "IP:PORT")]
    listen: String, env "CUSTOS_LISTEN" by text,
        /// Address to listen on.
        => listen: SocketAddr = DEFAULT_LISTEN.parse().expect("a valid address"), socket_address;

    /// Public base URL clients use (scheme://host[:port]) when behind a
    /// proxy or an onion service; repeat it, or separate with commas, for a
    /// vault reached at several addresses [env: CUSTOS_PUBLIC_URL].
    #[arg(value_name = "URL", value_delimiter = ',')]
    public_url: Vec<String>, env "CUSTOS_PUBLIC_URL" by items_by_comma,
        /// Public base URLs (scheme://host[:port], no trailing slash) that
        /// requests must be signed for; empty means the request's own Host.
        => public_urls: Vec<String> = Vec::new(), |urls| urls.iter().map(|u| public_url(u)).collect();

    /// Serve Prometheus /metrics on this address, apart from the API; keep
    /// it on loopback [default: off] [env: CUSTOS_METRICS_LISTEN].
    #[arg(value_name = "IP:PORT")]
    metrics_listen: String, env "CUSTOS_METRICS_LISTEN" by text,
        /// Where `/metrics` is served, apart from the API; `None`: nowhere.
        => metrics_listen: Option<SocketAddr> = None, |v| socket_address(v).map(Some);

    /// Proof-of-work difficulty for opening a case, in leading zero bits
    /// (each step doubles the sender's cost; 18 is about a second in a
    /// browser) [default: 18] [env: CUSTOS_STAMP_BITS].
    #[arg(value_name = "BITS")]
    stamp_bits: u8, env "CUSTOS_STAMP_BITS" by stamp_bits_text,
        /// Proof-of-work difficulty for opening a case, in leading zero bits.
        => stamp_bits: u8 = custos_core::stamp::DEFAULT_BITS, stamp_bits;

    /// A witness to send every new checkpoint to, as URL,VKEY (its
    /// add-checkpoint prefix and its cosigning key); repeat for several
    /// [env: CUSTOS_WITNESS, separated by spaces].
    #[arg(value_name = "URL,VKEY")]
    witness: Vec<String>, env "CUSTOS_WITNESS" by items_by_white_space,
        /// Witnesses each new checkpoint is sent to.
        => witnesses: Vec<WitnessConfig> = Vec::new(), |list| list.iter().map(|w| w.parse()).collect();

    /// The server log's filter: error, warn, info, debug [default: info]
    /// [env: CUSTOS_LOG].
    #[arg(value_name = "FILTER")]
    log: String, env "CUSTOS_LOG" by text,
        /// The server's log filter.
        => log: String = DEFAULT_LOG.into(), log_filter;

    /// Largest object accepted, in bytes [default: 64 GiB]
    /// [env: CUSTOS_MAX_UPLOAD_BYTES].
    #[arg(value_name = "BYTES")]
    max_upload_bytes: u64, env "CUSTOS_MAX_UPLOAD_BYTES" by whole_number,
        /// Largest object accepted, in bytes.
        => max_upload_bytes: u64 = MAX_UPLOAD_LENGTH, |n| one_to(MAX_UPLOAD_LENGTH, " bytes", n);

    /// Seconds a client may send nothing mid-request before it is cut off
    /// [default: 30] [env: CUSTOS_CLIENT_TIMEOUT_SECS].
    #[arg(value_name = "SECS")]
    client_timeout_secs: u64, env "CUSTOS_CLIENT_TIMEOUT_SECS" by whole_number,
        /// Longest a client may stay silent mid-request.
        => client_timeout: Duration = CLIENT_TIMEOUT, seconds;

    /// Seconds a stopping server lets requests in flight finish
    /// [default: 30] [env: CUSTOS_SHUTDOWN_GRACE_SECS].
    #[arg(value_name = "SECS")]
    shutdown_grace_secs: u64, env "CUSTOS_SHUTDOWN_GRACE_SECS" by whole_number,
        /// Longest a stopping server lets requests in flight finish.
        => shutdown_grace: Duration = SHUTDOWN_GRACE, seconds;

    /// Most connections served at once; more are refused with 503
    /// [default: 256] [env: CUSTOS_MAX_CONNECTIONS].
    #[arg(value_name = "N")]
    max_connections: u64, env "CUSTOS_MAX_CONNECTIONS" by whole_number,
        /// Most connections served at once; more are answered
        /// `503 too_many_connections` and closed.
        => max_connections: usize = MAX_CONNECTIONS, count;

    /// Most bytes of request bodies held at once, across all requests
    /// [default: 128 MiB] [env: CUSTOS_MAX_BODY_BYTES_IN_FLIGHT].
    #[arg(value_name = "BYTES")]
    max_body_bytes_in_flight: u64, env "CUSTOS_MAX_BODY_BYTES_IN_FLIGHT" by whole_number,
        /// Most bytes of request bodies held at once across all requests; a
        /// body that would pass it is answered `503 server_busy`.
        => max_body_bytes_in_flight: u64 = MAX_BODY_BYTES_IN_FLIGHT, |n| one_to(MAX_BODY_BYTES_LIMIT, "", n);

    /// Most ciphertext one case may hold, stored and being uploaded
    /// [default: 64 GiB] [env: CUSTOS_MAX_CASE_BYTES].
    #[arg(value_name = "BYTES")]
    max_case_bytes: u64, env "CUSTOS_MAX_CASE_BYTES" by whole_number,
        /// Most ciphertext one case may hold: its objects plus the declared
        /// lengths of its open uploads.
        => max_case_bytes: u64 = MAX_CASE_BYTES, |n| one_to(u64::MAX / 2, "", n);

    /// Most uploads open at once on one case [default: 8]
    /// [env: CUSTOS_MAX_CASE_OPEN_UPLOADS].
    #[arg(value_name = "N")]
    max_case_open_uploads: u64, env "CUSTOS_MAX_CASE_OPEN_UPLOADS" by whole_number,
        /// Most uploads open at once on one case.
        => max_case_open_uploads: usize = MAX_CASE_OPEN_UPLOADS, count;

    /// Mail each lawyer with a contact address a digest of counts (new
    /// cases, new files and messages) every this many seconds, at fixed
    /// times: the multiples of it since the Unix epoch (86400: daily at
    /// 00:00 UTC); 0 is off; at least 3600 unless the relay is this
    /// machine [default: 0] [env: CUSTOS_DIGEST_INTERVAL_SECS].
    #[arg(value_name = "SECS")]
    digest_interval_secs: u64, env "CUSTOS_DIGEST_INTERVAL_SECS" by whole_number,
        /// Seconds between digests; 0: no digest is sent. At least
        /// [`mail::MIN_DIGEST_INTERVAL_SECS`] unless the relay is loopback.
        => digest_interval_secs: u64 = 0, mail::interval;

    /// The SMTP relay digests go through: a host name or IP address
    /// [env: CUSTOS_SMTP_RELAY].
    #[arg(value_name = "HOST")]
    smtp_relay: String, env "CUSTOS_SMTP_RELAY" by text,
        /// The SMTP relay's host; `None`: none set.
        => smtp_relay: Option<String> = None, |h| mail::relay_host(&h).map(Some);

    /// The relay's port [default: 587] [env: CUSTOS_SMTP_PORT].
    #[arg(value_name = "PORT")]
    smtp_port: u64, env "CUSTOS_SMTP_PORT" by whole_number,
        /// The relay's port.
        => smtp_port: u16 = mail::SMTP_SUBMISSION_PORT, mail::port;

    /// starttls (required, never falls back to plain), tls (from the
    /// first byte, port 465) or plain (only to a relay on this machine)
    /// [default: starttls] [env: CUSTOS_SMTP_SECURITY].
    #[arg(value_name = "MODE")]
    smtp_security: String, env "CUSTOS_SMTP_SECURITY" by text,
        /// How the connection to the relay is protected.
        => smtp_security: SmtpSecurity = SmtpSecurity::StartTls, |m| m.parse();

    /// A file holding the relay's username = "..." and password = "...",
    /// readable by its owner only; read once at start
    /// [env: CUSTOS_SMTP_CREDENTIALS_FILE].
    #[arg(value_name = "FILE")]
    smtp_credentials_file: String, env "CUSTOS_SMTP_CREDENTIALS_FILE" by text,
        /// Where the relay's user name and password are; `None`: the relay
        /// takes mail without them.
        => smtp_credentials_file: Option<std::path::PathBuf> = None, |p| mail::credentials_path(p).map(Some);

    /// Where ciphertext chunks over 64 KiB are kept: local (files in the
    /// data directory) or s3 (a bucket: s3_endpoint, s3_bucket, s3_region
    /// and s3_credentials_file); the log and records stay in the data
    /// directory either way [default: local] [env: CUSTOS_STORAGE].
    #[arg(value_name = "local|s3")]
    storage: String, env "CUSTOS_STORAGE" by text,
        /// Where large chunks are kept.
        => storage: StorageKind = StorageKind::Local, |v| v.parse();

    /// The S3 API's URL, https:// (http:// only inside a private network
    /// or on loopback) [env: CUSTOS_S3_ENDPOINT].
    #[arg(value_name = "URL")]
    s3_endpoint: String, env "CUSTOS_S3_ENDPOINT" by text,
        /// The S3 API's URL; `None`: none set.
        => s3_endpoint: Option<String> = None, |u| storage::endpoint(u).map(Some);

    /// The bucket chunks are kept in [env: CUSTOS_S3_BUCKET].
    #[arg(value_name = "NAME")]
    s3_bucket: String, env "CUSTOS_S3_BUCKET" by text,
        /// The bucket; `None`: none set.
        => s3_bucket: Option<String> = None, |b| storage::bucket(b).map(Some);

    /// The region the S3 service answers for (Garage's s3_region)
    /// [env: CUSTOS_S3_REGION].
    #[arg(value_name = "NAME")]
    s3_region: String, env "CUSTOS_S3_REGION" by text,
        /// The region; `None`: none set.
        => s3_region: Option<String> = None, |r| storage::region(r).map(Some);

    /// A file holding access_key_id = "..." and secret_access_key = "...",
    /// readable by its owner only; read once at start, never given on the
    /// command line itself [env: CUSTOS_S3_CREDENTIALS_FILE].
    #[arg(value_name = "FILE")]
    s3_credentials_file: String, env "CUSTOS_S3_CREDENTIALS_FILE" by text,
        /// Where the bucket's key is; `None`: none set.
        => s3_credentials_file: Option<std::path::PathBuf> = None, |p| storage::file_path(p).map(Some);

    /// The digests' sender address [env: CUSTOS_SMTP_FROM].
    #[arg(value_name = "ADDR")]
    smtp_from: String, env "CUSTOS_SMTP_FROM" by text,
        /// The digests' sender; `None`: none set.
        => smtp_from: Option<EmailAddress> = None, |a| mail::from_address(a).map(Some);
}

impl Layer {
    /// Parse `custos.toml`'s text; `file` names it in errors. Unknown keys
    /// are errors, so a misspelt limit is not silently left at its default.
    pub fn from_toml(file: &str, text: &str) -> Result<Layer, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            file: file.to_owned(),
            message: e.message().to_owned(),
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
        let (s, src) = Settings::layered(file, env, flags)?;
        // The one check across keys: a budget below one request's body
        // would refuse every upload.
        if s.max_body_bytes_in_flight < MAX_PATCH_BODY as u64 {
            return Err(ConfigError::Value {
                key: "max_body_bytes_in_flight",
                from: src["max_body_bytes_in_flight"],
                message: format!("must be at least {} (one upload request's body)", MAX_PATCH_BODY),
            });
        }
        for check in [mail::check, storage::check] {
            check(&s).map_err(|(key, message)| ConfigError::Value {
                key,
                from: src[key],
                message,
            })?;
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
