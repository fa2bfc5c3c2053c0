//! Secrets the vault reads from files its settings name (the SMTP
//! relay's password, the S3 bucket's key): read once at start, refused
//! if others than the owner may read them, parsed as a short TOML table
//! of exactly the expected keys, the text zeroized after. Never prints a
//! secret: errors name the setting and the file only.

use std::path::Path;

use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

/// Largest secret file read: a few short lines; more is not one.
const MAX_SECRET_FILE: u64 = 4096;

/// Why a secret file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// The file could not be read.
    #[error("{setting} {path}: {source}")]
    Read {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may read it.
    #[error("{setting} {path} may be read by others than its owner; chmod 600 it")]
    NotPrivate {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: String,
    },
    /// It does not hold exactly the expected keys, each non-empty.
    #[error("{setting} {path} must hold {expected} and nothing else")]
    Malformed {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// The keys it must hold, as they are written.
        expected: &'static str,
    },
}

/// Read the secret file `path` that `setting` names and parse it as `T`
/// (a struct with `deny_unknown_fields`); `expected` says its keys, for
/// the error, and `complete` whether every value it needs is there.
pub fn read<T: DeserializeOwned>(
    setting: &'static str,
    path: &Path,
    expected: &'static str,
    complete: impl Fn(&T) -> bool,
) -> Result<T, SecretFileError> {
    let name = || path.display().to_string();
    let read = |source| SecretFileError::Read {
        setting,
        path: name(),
        source,
    };
    let malformed = || SecretFileError::Malformed {
        setting,
        path: name(),
        expected,
    };
    match custos_core::identity::check_private(path) {
        Ok(()) => {}
        Err(custos_core::identity::IdentityError::Io(e)) => return Err(read(e)),
        Err(_) => return Err(SecretFileError::NotPrivate { setting, path: name() }),
    }
    if std::fs::metadata(path).map_err(read)?.len() > MAX_SECRET_FILE {
        return Err(malformed());
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(read)?);
    toml::from_str::<T>(&text)
        .ok()
        .filter(|parsed| complete(parsed))
        .ok_or_else(malformed)
}
