//! Checkpoints: C2SP `tlog-checkpoint` bodies inside C2SP `signed-note`
//! envelopes, signed with the vault's Ed25519 log key. Owns the text formats
//! and the signature rules; knows nothing about storage.
//!
//! Hand-written: the formats are a few lines of text each, and what a
//! verifier accepts (one signature line per key, the exact key id) is the
//! security of the log, so it stays readable here rather than in a crate
//! whose acceptance rules we would have to audit instead.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// signed-note signature type byte for Ed25519.
const ALG_ED25519: u8 = 0x01;

/// What the log key signs over a backup's manifest, before the manifest's
/// SHA-256: the key signs checkpoints too, and a signature over one kind of
/// message must never pass for the other. A checkpoint is a signed note,
/// whose text holds no control character; this context holds a NUL, so no
/// note's text is ever a manifest message, nor the reverse.
const MANIFEST_CONTEXT: &[u8] = b"custos backup manifest v1\0";

fn manifest_message(manifest: &[u8]) -> Vec<u8> {
    let mut m = MANIFEST_CONTEXT.to_vec();
    m.extend_from_slice(&Sha256::digest(manifest));
    m
}

/// Longest origin line we accept; the spec requires a non-empty single line,
/// and a short schema-less name keeps notes readable.
const MAX_ORIGIN_LEN: usize = 256;

/// Why a checkpoint or verifier key was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The text is not a well-formed note or checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The verifier key string is not a valid Ed25519 `vkey`.
    #[error("malformed verifier key: {0}")]
    BadVkey(&'static str),
    /// No signature by the pinned key verifies over the note.
    #[error("checkpoint is not signed by the pinned log key")]
    BadSignature,
    /// The checkpoint is for a different log than the key names.
    #[error("checkpoint origin {found:?} does not match the log key name {expected:?}")]
    WrongOrigin {
        /// Name in the verifier key.
        expected: String,
        /// Origin line of the checkpoint.
        found: String,
    },
}

/// A parsed checkpoint body: which log, how many entries, what root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line, also the signing key's name.
    pub origin: String,
    /// Number of entries in the tree.
    pub size: u64,
    /// Root hash of the tree at that size.
    pub root: Hash,
}

impl Checkpoint {
    /// The exact body text that is signed.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    /// A checkpoint's body (origin, size, root lines), its signatures
    /// not checked: for code that has verified the note already.
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let mut lines = body
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("body must end in a newline"))?
            .split('\n');
        let origin = lines
            .next()
            .filter(|o| valid_origin(o))
            .ok_or(CheckpointError::Malformed("origin line"))?;
        let size_line = lines.next().ok_or(CheckpointError::Malformed("missing size line"))?;
        if size_line.is_empty()
            || (size_line.len() > 1 && size_line.starts_with('0'))
            || !size_line.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(CheckpointError::Malformed(
                "size must be a decimal number without leading zeros",
            ));
        }
        let size = size_line
            .parse()
            .map_err(|_| CheckpointError::Malformed("size out of range"))?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| Hash::try_from(r.as_slice()).ok())
            .ok_or(CheckpointError::Malformed("root must be 32 bytes of base64"))?;
        // Extension lines are allowed by the spec; custos signs none, and an
        // unexpected one is kept out so that two texts cannot mean the same.
        if lines.next().is_some() {
            return Err(CheckpointError::Malformed("unexpected extension lines"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Parse a signed-note verifier key `name+keyid+base64(alg || key)` for an
/// Ed25519 key of signature type `alg`, checking the key id.
pub(crate) fn parse_vkey(vkey: &str, alg: u8) -> Result<(String, VerifyingKey), CheckpointError> {
    let vkey = vkey.trim();
    let mut parts = vkey.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CheckpointError::BadVkey("expected name+keyid+key"));
    };
    if !valid_origin(name) {
        return Err(CheckpointError::BadVkey("bad key name"));
    }
    let raw = B64
        .decode(key)
        .map_err(|_| CheckpointError::BadVkey("key is not base64"))?;
    let (&found, key) = raw.split_first().ok_or(CheckpointError::BadVkey("empty key"))?;
    if found != alg {
        return Err(CheckpointError::BadVkey("wrong signature type for this kind of key"));
    }
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| CheckpointError::BadVkey("key must be 32 bytes"))?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| CheckpointError::BadVkey("invalid Ed25519 point"))?;
    if hex::encode(key_id_for(name, alg, &key)) != id {
        return Err(CheckpointError::BadVkey("key id does not match the key"));
    }
    Ok((name.to_owned(), key))
}

/// Format a verifier key for an Ed25519 key of signature type `alg`.
pub(crate) fn format_vkey(name: &str, alg: u8, key: &VerifyingKey) -> String {
    let mut raw = vec![alg];
    raw.extend_from_slice(key.as_bytes());
    format!(
        "{}+{}+{}",
        name,
        hex::encode(key_id_for(name, alg, key)),
        B64.encode(raw)
    )
}

/// A note's body and its signature lines as (key name, signature bytes).
pub type NoteParts<'a> = (&'a str, Vec<(&'a str, Vec<u8>)>);

/// Split a signed note into its body (with its final newline) and its
/// signature lines as (key name, decoded signature bytes).
pub fn split_note(note: &str) -> Result<NoteParts<'_>, CheckpointError> {
    let split = note
        .find("\n\n")
        .ok_or(CheckpointError::Malformed("no blank line before signatures"))?;
    let body = &note[..split + 1];
    let sigs = &note[split + 2..];
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(CheckpointError::Malformed("signature block must end in a newline"));
    }
    let mut out = Vec::new();
    for line in sigs[..sigs.len() - 1].split('\n') {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or(CheckpointError::Malformed("signature line must start with an em dash"))?;
        let (name, sig) = rest
            .rsplit_once(' ')
            .ok_or(CheckpointError::Malformed("signature line"))?;
        let raw = B64
            .decode(sig)
            .map_err(|_| CheckpointError::Malformed("signature is not base64"))?;
        out.push((name, raw));
    }
    Ok((body, out))
}

pub(crate) fn valid_origin(origin: &str) -> bool {
    !origin.is_empty()
        && origin.len() <= MAX_ORIGIN_LEN
        && !origin.contains('+')
        && origin.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// signed-note key id: first 4 bytes of `SHA-256(name || "\n" || 0x01 || key)`.
fn note_key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    key_id_for(name, ALG_ED25519, key)
}

/// Signed-note key id: the first four bytes of
/// SHA-256(name || "\n" || algorithm byte || public key).
pub(crate) fn key_id_for(name: &str, alg: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The public half of the log key, as auditors pin it.
#[derive(Clone, PartialEq, Eq)]
pub struct LogVerifier {
    name: String,
    key: VerifyingKey,
}

impl std::fmt::Debug for LogVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogVerifier({})", self.vkey())
    }
}

impl LogVerifier {
    /// Check the log key's signature (base64) over a backup's manifest.
    pub fn verify_manifest(&self, manifest: &[u8], signature: &str) -> Result<(), CheckpointError> {
        let sig = B64
            .decode(signature.trim())
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or(CheckpointError::Malformed(
                "the manifest's signature is not 64 bytes of base64",
            ))?;
        self.key
            .verify(&manifest_message(manifest), &sig)
            .map_err(|_| CheckpointError::BadSignature)
    }

    /// Parse a C2SP `vkey`: `name+hexkeyid+base64(0x01 || key)`.
    pub fn parse(vkey: &str) -> Result<Self, CheckpointError> {
        let (name, key) = parse_vkey(vkey, ALG_ED25519)?;
        Ok(LogVerifier { name, key })
    }

    /// The `vkey` string.
    pub fn vkey(&self) -> String {
        format_vkey(&self.name, ALG_ED25519, &self.key)
    }

    /// The key name, which is also the log's origin.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Verify a signed checkpoint note and return its body.
    ///
    /// Signature lines by other keys (witness cosignatures, for instance) are
    /// ignored; at least one line by this key must verify.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let (body, signatures) = split_note(note)?;
        let want_id = note_key_id(&self.name, &self.key);
        let mut verified = false;
        for (name, raw) in signatures {
            if name != self.name || raw.len() != 4 + 64 || raw[..4] != want_id {
                continue;
            }
            let sig = Signature::from_slice(&raw[4..]).map_err(|_| CheckpointError::BadSignature)?;
            if self.key.verify(body.as_bytes(), &sig).is_ok() {
                verified = true;
            }
        }
        if !verified {
            return Err(CheckpointError::BadSignature);
        }
        let cp = Checkpoint::parse_body(body)?;
        if cp.origin != self.name {
            return Err(CheckpointError::WrongOrigin {
                expected: self.name.clone(),
                found: cp.origin,
            });
        }
        Ok(cp)
    }
}

/// The vault's checkpoint signing key. Never printed; zeroized on drop by
/// `ed25519-dalek`.
pub struct LogSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogSigner({})", self.name)
    }
}

impl LogSigner {
    /// Wrap a signing key for the log named `origin`.
    pub fn new(origin: &str, key: SigningKey) -> Result<Self, CheckpointError> {
        if !valid_origin(origin) {
            return Err(CheckpointError::Malformed(
                "origin must be one line without spaces or '+'",
            ));
        }
        Ok(LogSigner {
            name: origin.to_owned(),
            key,
        })
    }

    /// The public verifier for this key.
    pub fn verifier(&self) -> LogVerifier {
        LogVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.name
    }

    /// Sign a backup's manifest (see [`MANIFEST_CONTEXT`]); base64.
    pub fn sign_manifest(&self, manifest: &[u8]) -> String {
        B64.encode(self.key.sign(&manifest_message(manifest)).to_bytes())
    }

    /// Sign a checkpoint for `size` and `root`, returning the full note text.
    pub fn sign(&self, size: u64, root: Hash) -> String {
        let body = Checkpoint {
            origin: self.name.clone(),
            size,
            root,
        }
        .body();
        let sig = self.key.sign(body.as_bytes());
        let mut raw = note_key_id(&self.name, &self.key.verifying_key()).to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        format!("{body}\n\u{2014} {} {}\n", self.name, B64.encode(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LogSigner {
        LogSigner::new("example.org/custos", SigningKey::from_bytes(&[7u8; 32])).unwrap()
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_round_trips_its_vkey() {
        let s = signer();
        let note = s.sign(5, [9u8; 32]);
        let v = LogVerifier::parse(&s.verifier().vkey()).unwrap();
        let cp = v.verify(&note).unwrap();
        assert_eq!(
            (cp.size, cp.root, cp.origin.as_str()),
            (5, [9u8; 32], "example.org/custos")
        );
    }

    #[test]
    fn any_changed_byte_in_the_body_breaks_the_signature() {
        let s = signer();
        let note = s.sign(5, [9u8; 32]);
        let body_len = note.find("\n\n").unwrap();
        for i in 0..body_len {
            let mut bytes = note.clone().into_bytes();
            bytes[i] ^= 0x01;
            let Ok(text) = String::from_utf8(bytes) else { continue };
            assert!(s.verifier().verify(&text).is_err(), "byte {i}");
        }
    }

    /// A manifest's signature verifies for that manifest only, and never
    /// as a checkpoint's, nor a checkpoint's as a manifest's.
    #[test]
    fn manifest_signatures_are_their_own_kind() {
        let s = signer();
        let sig = s.sign_manifest(b"{\"format\":1}");
        s.verifier().verify_manifest(b"{\"format\":1}", &sig).unwrap();
        assert!(s.verifier().verify_manifest(b"{\"format\":2}", &sig).is_err());
        // A checkpoint's signature over its body is not a manifest's.
        let note = s.sign(5, [9u8; 32]);
        let raw = B64.decode(note.trim_end().rsplit(' ').next().unwrap()).unwrap();
        let note_sig = B64.encode(&raw[4..]);
        let body = note.split("\n\n").next().unwrap().to_owned() + "\n";
        assert!(s.verifier().verify_manifest(body.as_bytes(), &note_sig).is_err());
        // And a manifest signature spliced into a note is no checkpoint's.
        let mut spliced = raw[..4].to_vec();
        spliced.extend_from_slice(&B64.decode(&sig).unwrap());
        let forged = format!("{body}\n\u{2014} example.org/custos {}\n", B64.encode(spliced));
        assert_eq!(s.verifier().verify(&forged), Err(CheckpointError::BadSignature));
    }

    #[test]
    fn another_key_with_the_same_name_is_not_accepted() {
        let other = LogSigner::new("example.org/custos", SigningKey::from_bytes(&[8u8; 32])).unwrap();
        let note = other.sign(1, [0u8; 32]);
        assert_eq!(signer().verifier().verify(&note), Err(CheckpointError::BadSignature));
    }

    #[test]
    fn vkeys_with_a_wrong_id_or_algorithm_are_rejected() {
        let vkey = signer().verifier().vkey();
        let (head, key) = vkey.rsplit_once('+').unwrap();
        let (name, _) = head.split_once('+').unwrap();
        assert!(LogVerifier::parse(&format!("{name}+00000000+{key}")).is_err());
        let mut raw = B64.decode(key).unwrap();
        raw[0] = 0x02;
        assert!(LogVerifier::parse(&format!("{head}+{}", B64.encode(raw))).is_err());
    }
}
