//! Who is who: principal identity files (secret), public cards, key ids,
//! roles and registry records, and submitter codenames. Owns the key formats;
//! does not decide what a role may do (that is `policy`).

pub mod codename;
pub mod contact;

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// First line of an unencrypted identity file.
const IDENTITY_HEADER: &str = "custos-identity-v1";
/// First word of a card line.
const CARD_HEADER: &str = "custos-card-v1";
/// Names are shown in logs of the registry and in listings; keep them short
/// and printable.
const MAX_NAME_LEN: usize = 64;
/// Identity files are a few hundred bytes; refuse anything absurd.
const MAX_IDENTITY_FILE: u64 = 64 * 1024;

/// Errors reading or writing keys. Decryption failures are one opaque
/// variant, as in `age`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The file or line is not in the expected format.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// Which rule failed.
        why: &'static str,
    },
    /// The identity file can be read by other users.
    #[error("{0} is readable by other users; run chmod 600 on it")]
    Permissions(String),
    /// Wrong passphrase or damaged encrypted identity.
    #[error("cannot decrypt the identity file (wrong passphrase or damaged file)")]
    Decrypt,
    /// The file exists already and is not overwritten.
    #[error("{0} exists already; refusing to overwrite a key")]
    Exists(String),
    /// A passphrase is needed and none is available.
    #[error("the identity file is encrypted: set CUSTOS_PASSPHRASE or run on a terminal")]
    NeedPassphrase,
    /// I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn malformed(what: &'static str, why: &'static str) -> IdentityError {
    IdentityError::Malformed { what, why }
}

/// A short, stable identifier for an Ed25519 public key: 16 hex digits of
/// `SHA-256("custos key id\n" || key)`. Shown wherever a principal is named.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    /// Key id of a verifying key.
    pub fn of(key: &VerifyingKey) -> Self {
        let mut h = Sha256::new();
        h.update(b"custos key id\n");
        h.update(key.as_bytes());
        KeyId(hex::encode(&h.finalize()[..8]))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if crate::protocol::is_lower_hex(s, 16) {
            Ok(KeyId(s.to_owned()))
        } else {
            Err(malformed("key id", "expected 16 lower-case hex digits"))
        }
    }
}

impl TryFrom<String> for KeyId {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A principal's role in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Receives and works on cases it holds envelopes for.
    Lawyer,
    /// Verifies the custody log; never reads content.
    Auditor,
    /// Changes the registry; never reads content.
    Admin,
}

impl Role {
    /// Every role, in the order help texts list them.
    pub const ALL: [Role; 3] = [Role::Lawyer, Role::Auditor, Role::Admin];

    /// The role's name, as the registry and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Lawyer => "lawyer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a role (lawyer, auditor, admin)"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parse an Ed25519 public key from base64.
pub fn parse_verifying_key(b64: &str) -> Result<VerifyingKey, IdentityError> {
    let raw = B64.decode(b64).map_err(|_| malformed("public key", "not base64"))?;
    let raw: [u8; 32] = raw
        .try_into()
        .map_err(|_| malformed("public key", "must be 32 bytes"))?;
    VerifyingKey::from_bytes(&raw).map_err(|_| malformed("public key", "not a valid Ed25519 point"))
}

/// Parse an age X25519 recipient (`age1...`).
pub fn parse_recipient(s: &str) -> Result<age::x25519::Recipient, IdentityError> {
    s.parse()
        .map_err(|_| malformed("age recipient", "expected an age1... X25519 recipient"))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_LEN
        && name.chars().all(|c| !c.is_control())
        && name.trim() == name
}

/// The public half of a principal: one line a person can paste.
///
/// Format: `custos-card-v1 <ed25519 key, base64> <age recipient> <name>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Card {
    /// Display name (free text, one line).
    pub name: String,
    /// Ed25519 key that signs the principal's requests.
    pub verifying_key: VerifyingKey,
    /// age recipient that envelopes are wrapped to.
    pub recipient: String,
}

impl Card {
    /// Key id of the card's signing key.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.verifying_key)
    }

    /// The age recipient, parsed.
    pub fn age_recipient(&self) -> age::x25519::Recipient {
        parse_recipient(&self.recipient).expect("validated when the card was built")
    }
}

impl FromStr for Card {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let line = s.trim_end_matches(['\n', '\r']);
        let mut parts = line.splitn(4, ' ');
        if parts.next() != Some(CARD_HEADER) {
            return Err(malformed("card", "must start with custos-card-v1"));
        }
        let (Some(key), Some(recipient), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("card", "expected key, recipient and name"));
        };
        if !valid_name(name) {
            return Err(malformed("card", "name must be 1 to 64 printable characters"));
        }
        let verifying_key = parse_verifying_key(key)?;
        parse_recipient(recipient)?;
        Ok(Card {
            name: name.to_owned(),
            verifying_key,
            recipient: recipient.to_owned(),
        })
    }
}

impl fmt::Display for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{CARD_HEADER} {} {} {}",
            B64.encode(self.verifying_key.as_bytes()),
            self.recipient,
            self.name
        )
    }
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Card({} {})", self.key_id(), self.name)
    }
}

impl Serialize for Card {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Card {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A registered principal, as the registry stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Key id of the card.
    pub key_id: KeyId,
    /// Name from the card.
    pub name: String,
    /// Role in this vault.
    pub role: Role,
    /// Whether new cases are wrapped to this principal.
    pub intake: bool,
    /// The full public card.
    pub card: Card,
}

/// A principal's secret keys: Ed25519 for signing requests and an age X25519
/// identity for opening envelopes. Zeroized on drop (both inner types do);
/// `Debug` shows only the key id.
pub struct Identity {
    name: String,
    signing: SigningKey,
    age: age::x25519::Identity,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.key_id())
    }
}

impl Identity {
    /// Generate a new identity from the operating system's RNG.
    pub fn generate(name: &str) -> Result<Self, IdentityError> {
        if !valid_name(name) {
            return Err(malformed("name", "must be 1 to 64 printable characters"));
        }
        Ok(Identity {
            name: name.to_owned(),
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
            age: age::x25519::Identity::generate(),
        })
    }

    /// The public card.
    pub fn card(&self) -> Card {
        Card {
            name: self.name.clone(),
            verifying_key: self.signing.verifying_key(),
            recipient: self.age.to_public().to_string(),
        }
    }

    /// Key id of the signing key.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.signing.verifying_key())
    }

    /// The request-signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The age identity that opens this principal's envelopes.
    pub fn age_identity(&self) -> &age::x25519::Identity {
        &self.age
    }

    fn to_text(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(B64.encode(self.signing.to_bytes()));
        Zeroizing::new(format!(
            "{IDENTITY_HEADER}\nname: {}\ned25519: {}\nage: {}\n",
            self.name,
            seed.as_str(),
            self.age.to_string().expose_secret()
        ))
    }

    /// Parse the unencrypted text of an identity file (what [`Self::load`]
    /// reads, after decrypting it when it is encrypted).
    pub fn from_text(text: &str) -> Result<Self, IdentityError> {
        let what = "identity file";
        let mut lines = text.lines();
        if lines.next() != Some(IDENTITY_HEADER) {
            return Err(malformed(what, "unknown format"));
        }
        let mut field = |key: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix(": "))
                .map(str::to_owned)
                .map(Zeroizing::new)
                .ok_or(malformed(what, "missing field"))
        };
        let name = field("name")?;
        let seed = field("ed25519")?;
        let age_key = field("age")?;
        let seed = Zeroizing::new(
            B64.decode(seed.as_bytes())
                .map_err(|_| malformed(what, "bad signing key"))?,
        );
        let seed: &[u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| malformed(what, "bad signing key"))?;
        let age = age::x25519::Identity::from_str(&age_key).map_err(|_| malformed(what, "bad age key"))?;
        if !valid_name(&name) {
            return Err(malformed(what, "bad name"));
        }
        Ok(Identity {
            name: name.to_string(),
            signing: SigningKey::from_bytes(seed),
            age,
        })
    }

    /// Write the identity to `path` (mode 0600, never overwriting) and the
    /// card to `path.pub`. With a passphrase, the file is an age
    /// passphrase-encrypted (scrypt) file.
    pub fn save(&self, path: &Path, passphrase: Option<SecretString>) -> Result<(), IdentityError> {
        let card_path = card_path(path);
        for p in [path, card_path.as_path()] {
            if p.exists() {
                return Err(IdentityError::Exists(p.display().to_string()));
            }
        }
        let text = self.to_text();
        // The unencrypted form is a secret too: keep it in zeroizing memory.
        let bytes = match passphrase {
            None => Zeroizing::new(text.as_bytes().to_vec()),
            Some(pass) => {
                let enc = age::Encryptor::with_user_passphrase(pass);
                let mut out = Vec::new();
                let mut w = enc.wrap_output(&mut out)?;
                w.write_all(text.as_bytes())?;
                w.finish()?;
                Zeroizing::new(out)
            }
        };
        let mut f = private_file(path)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        let mut card = std::fs::File::create(&card_path)?;
        card.write_all(format!("{}\n", self.card()).as_bytes())?;
        card.sync_all()?;
        // Both names durable before anyone is told the identity exists (a
        // vault may be set up from the card at once). The core crate does
        // not use custos-durable, which comes after it.
        #[cfg(unix)]
        {
            let folder = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            std::fs::File::open(folder)?.sync_all()?;
        }
        Ok(())
    }

    /// Read an identity file. `passphrase` is asked only if the file is
    /// encrypted. Refuses files readable by group or others.
    pub fn load(
        path: &Path,
        passphrase: impl FnOnce() -> Result<SecretString, IdentityError>,
    ) -> Result<Self, IdentityError> {
        check_private(path)?;
        let mut bytes = Zeroizing::new(Vec::new());
        std::fs::File::open(path)?
            .take(MAX_IDENTITY_FILE)
            .read_to_end(&mut bytes)?;
        if bytes.starts_with(IDENTITY_HEADER.as_bytes()) {
            let text = std::str::from_utf8(&bytes).map_err(|_| malformed("identity file", "not UTF-8"))?;
            return Self::from_text(text);
        }
        let pass = passphrase()?;
        let dec = age::Decryptor::new(&bytes[..]).map_err(|_| IdentityError::Decrypt)?;
        if !dec.is_scrypt() {
            return Err(malformed("identity file", "not a custos identity"));
        }
        let id = age::scrypt::Identity::new(pass);
        let mut r = dec
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .map_err(|_| IdentityError::Decrypt)?;
        let mut plain = Zeroizing::new(Vec::new());
        r.read_to_end(&mut plain).map_err(|_| IdentityError::Decrypt)?;
        let text = std::str::from_utf8(&plain).map_err(|_| IdentityError::Decrypt)?;
        Self::from_text(text)
    }
}

/// `FILE.pub` beside an identity file.
pub fn card_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    s.into()
}

/// Create a new file readable only by its owner; fails if it exists.
pub fn private_file(path: &Path) -> Result<std::fs::File, IdentityError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => IdentityError::Exists(path.display().to_string()),
        _ => e.into(),
    })
}

/// Refuse a secret file that group or others may read.
pub fn check_private(path: &Path) -> Result<(), IdentityError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(IdentityError::Permissions(path.display().to_string()));
        }
    }
    Ok(())
}

/// The key of an age identity file (`age-keygen`'s: comment lines and one
/// `AGE-SECRET-KEY-1...` line), as an outside body that receives a
/// disclosure holds it.
pub fn parse_age_identity_file(text: &str) -> Result<age::x25519::Identity, IdentityError> {
    let what = "age identity file";
    let mut keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(malformed(what, "expected exactly one AGE-SECRET-KEY-1... line"));
    };
    key.parse().map_err(|_| malformed(what, "not an age X25519 secret key"))
}

/// Whether `text` reads as an age identity file rather than a custos one.
pub fn is_age_identity_file(text: &[u8]) -> bool {
    std::str::from_utf8(text).is_ok_and(|t| t.lines().any(|l| l.trim().starts_with("AGE-SECRET-KEY-1")))
}

/// Read a card from a file holding one card line.
pub fn read_card(path: &Path) -> Result<Card, IdentityError> {
    let text = std::fs::read_to_string(path)?;
    text.trim().parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_as_they_are_written() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        assert!("Lawyer".parse::<Role>().is_err());
    }

    #[test]
    fn age_identity_files_are_read_as_age_keygen_writes_them() {
        use age::secrecy::ExposeSecret;
        let key = age::x25519::Identity::generate();
        let secret = key.to_string().expose_secret().to_owned();
        let file = format!("# created: 2026-01-01\n# public key: {}\n{secret}\n", key.to_public());
        assert!(is_age_identity_file(file.as_bytes()));
        let read = parse_age_identity_file(&file).unwrap();
        assert_eq!(read.to_public().to_string(), key.to_public().to_string());
        assert!(parse_age_identity_file("# nothing\n").is_err());
        assert!(parse_age_identity_file(&format!("{secret}\n{secret}\n")).is_err());
        assert!(!is_age_identity_file(b"custos-identity-v1\nname: x\n"));
    }

    #[test]
    fn cards_round_trip_and_reject_damage() {
        let id = Identity::generate("Айгерим Lawyer").unwrap();
        let card = id.card();
        let line = card.to_string();
        assert_eq!(line.parse::<Card>().unwrap(), card);
        assert_eq!(card.key_id(), id.key_id());
        assert!(line
            .replacen("custos-card-v1", "custos-card-v2", 1)
            .parse::<Card>()
            .is_err());
        assert!(line.replace("age1", "age2").parse::<Card>().is_err());
        let (head, _) = line.rsplit_once(' ').unwrap();
        assert!(format!("{head} ").parse::<Card>().is_err(), "empty name");
    }

    #[test]
    fn identity_files_round_trip_with_and_without_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::generate("a").unwrap();
        let plain = dir.path().join("plain");
        id.save(&plain, None).unwrap();
        let back = Identity::load(&plain, || Err(IdentityError::NeedPassphrase)).unwrap();
        assert_eq!(back.card(), id.card());
        assert!(matches!(id.save(&plain, None), Err(IdentityError::Exists(_))));

        let enc = dir.path().join("enc");
        let pass = || SecretString::from("correct horse".to_owned());
        id.save(&enc, Some(pass())).unwrap();
        assert!(!std::fs::read(&enc).unwrap().starts_with(IDENTITY_HEADER.as_bytes()));
        assert_eq!(Identity::load(&enc, || Ok(pass())).unwrap().key_id(), id.key_id());
        assert!(matches!(
            Identity::load(&enc, || Ok(SecretString::from("wrong".to_owned()))),
            Err(IdentityError::Decrypt)
        ));
    }

    #[test]
    fn readable_identity_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        Identity::generate("a").unwrap().save(&path, None).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Identity::load(&path, || Err(IdentityError::NeedPassphrase)),
            Err(IdentityError::Permissions(_))
        ));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let id = Identity::generate("a").unwrap();
        let dbg = format!("{id:?}");
        assert_eq!(dbg, format!("Identity({})", id.key_id()));
    }
}
