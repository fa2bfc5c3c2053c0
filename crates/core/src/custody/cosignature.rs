//! Witness cosignatures on checkpoints, per C2SP `tlog-cosignature` (the
//! Ed25519 `cosignature/v1` type): what a witness signs, how its signature
//! line is spelled, and how a verifier counts the witnesses that vouched for
//! a checkpoint. Owns no state; the witness service lives in `witness`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::checkpoint::{format_vkey, key_id_for, parse_vkey, split_note, CheckpointError};

/// Signature type byte of Ed25519 `cosignature/v1` keys.
const ALG_COSIGNATURE_V1: u8 = 0x04;

/// How far in the future a cosignature's timestamp may be before a verifier
/// treats it as forged: witnesses' clocks drift, but not by minutes.
const MAX_FUTURE_SECONDS: i64 = 300;

/// The message a witness signs: two header lines, then the checkpoint body.
fn signed_message(body: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{body}").into_bytes()
}

/// A witness's public key, from its vkey (`name+keyid+base64(0x04 || key)`).
#[derive(Clone, PartialEq, Eq)]
pub struct WitnessVerifier {
    name: String,
    key: VerifyingKey,
}

impl std::fmt::Debug for WitnessVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WitnessVerifier({})", self.vkey())
    }
}

impl WitnessVerifier {
    /// Parse a witness vkey.
    pub fn parse(vkey: &str) -> Result<Self, CheckpointError> {
        let (name, key) = parse_vkey(vkey, ALG_COSIGNATURE_V1)?;
        Ok(WitnessVerifier { name, key })
    }

    /// The vkey text.
    pub fn vkey(&self) -> String {
        format_vkey(&self.name, ALG_COSIGNATURE_V1, &self.key)
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time of this witness's valid cosignature on `note`, if it has one.
    /// Lines from other keys are ignored, as the signed-note format requires.
    /// `now` is Unix time ([`super::unix_now`]).
    pub fn cosigned_at(&self, note: &str, now: i64) -> Option<u64> {
        let (body, lines) = split_note(note).ok()?;
        let id = key_id_for(&self.name, ALG_COSIGNATURE_V1, &self.key);
        lines.into_iter().find_map(|(name, raw)| {
            if name != self.name || raw.len() != 4 + 8 + 64 || raw[..4] != id {
                return None;
            }
            let timestamp = u64::from_be_bytes(raw[4..12].try_into().ok()?);
            if i64::try_from(timestamp).ok()? > now.saturating_add(MAX_FUTURE_SECONDS) {
                return None;
            }
            let sig = Signature::from_slice(&raw[12..]).ok()?;
            self.key
                .verify(&signed_message(body, timestamp), &sig)
                .ok()
                .map(|()| timestamp)
        })
    }
}

/// A witness's signing key. Zeroized on drop; `Debug` shows only the name.
pub struct WitnessSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WitnessSigner({})", self.name)
    }
}

impl WitnessSigner {
    /// A signer named `name` (a schema-less URL by convention).
    pub fn new(name: &str, key: SigningKey) -> Result<Self, CheckpointError> {
        if !super::checkpoint::valid_origin(name) {
            return Err(CheckpointError::Malformed(
                "witness name must be one line without spaces or '+'",
            ));
        }
        Ok(WitnessSigner {
            name: name.to_owned(),
            key,
        })
    }

    /// The matching verifier.
    pub fn verifier(&self) -> WitnessVerifier {
        WitnessVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The cosignature line (ending in a newline) for a checkpoint body.
    pub fn cosign(&self, body: &str, timestamp: u64) -> String {
        let sig = self.key.sign(&signed_message(body, timestamp));
        let mut raw = key_id_for(&self.name, ALG_COSIGNATURE_V1, &self.key.verifying_key()).to_vec();
        raw.extend_from_slice(&timestamp.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        format!("\u{2014} {} {}\n", self.name, B64.encode(raw))
    }
}

/// Names of the given witnesses that validly cosigned `note`, each
/// witness once: a witness is its key, so a key listed twice (or under
/// two names; the signed message does not hold the name) counts once
/// towards a quorum.
pub fn cosigners<'a>(note: &str, witnesses: &'a [WitnessVerifier], now: i64) -> Vec<&'a str> {
    let mut keys = std::collections::HashSet::new();
    witnesses
        .iter()
        .filter(|w| w.cosigned_at(note, now).is_some())
        .filter(|w| keys.insert(w.key.to_bytes()))
        .map(|w| w.name())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custody::checkpoint::LogSigner;

    #[test]
    fn a_witness_listed_twice_counts_once_towards_a_quorum() {
        let log = LogSigner::new("example.org/log", SigningKey::from_bytes(&[7; 32])).unwrap();
        let note = log.sign(5, [9; 32]);
        let body = &note[..note.find("\n\n").unwrap() + 1];
        let w1 = WitnessSigner::new("witness.example/w1", SigningKey::from_bytes(&[1; 32])).unwrap();
        let w2 = WitnessSigner::new("witness.example/w2", SigningKey::from_bytes(&[2; 32])).unwrap();
        let w3 = WitnessSigner::new("witness.example/w3", SigningKey::from_bytes(&[3; 32])).unwrap();
        let cosigned = format!(
            "{note}{}{}",
            w1.cosign(body, 1_700_000_000),
            w2.cosign(body, 1_700_000_000)
        );
        let listed = [w1.verifier(), w2.verifier(), w3.verifier(), w1.verifier()];
        let names = cosigners(&cosigned, &listed, 1_700_000_100);
        assert_eq!(
            names,
            vec!["witness.example/w1", "witness.example/w2"],
            "a quorum of 3 is not met"
        );
    }

    #[test]
    fn a_cosignature_verifies_only_for_its_body_key_and_time() {
        let log = LogSigner::new("example.org/log", SigningKey::from_bytes(&[7; 32])).unwrap();
        let note = log.sign(5, [9; 32]);
        let body = &note[..note.find("\n\n").unwrap() + 1];
        let w = WitnessSigner::new("witness.example/w1", SigningKey::from_bytes(&[8; 32])).unwrap();
        let v = WitnessVerifier::parse(&w.verifier().vkey()).unwrap();
        assert_eq!(v, w.verifier());
        let line = w.cosign(body, 1_700_000_000);
        let cosigned = format!("{note}{line}");
        assert_eq!(v.cosigned_at(&cosigned, 1_700_000_100), Some(1_700_000_000));
        // The log's own signature still verifies with the extra line.
        log.verifier().verify(&cosigned).unwrap();
        // Not valid on another checkpoint.
        let other = log.sign(6, [9; 32]);
        assert_eq!(v.cosigned_at(&format!("{other}{line}"), 1_700_000_100), None);
        // Far-future timestamps are refused.
        assert_eq!(v.cosigned_at(&cosigned, 1_600_000_000), None);
        // Another witness with the same name but a different key does not count.
        let impostor = WitnessSigner::new("witness.example/w1", SigningKey::from_bytes(&[3; 32])).unwrap();
        assert_eq!(
            cosigners(
                &format!("{note}{}", impostor.cosign(body, 1)),
                std::slice::from_ref(&v),
                10
            ),
            Vec::<&str>::new()
        );
        assert_eq!(cosigners(&cosigned, &[v], 1_700_000_100), vec!["witness.example/w1"]);
        // A log vkey is not a witness vkey.
        assert!(WitnessVerifier::parse(&log.verifier().vkey()).is_err());
    }
}
