//! Proof-of-work stamps for anonymous case creation. The vault keeps no IP
//! addresses, so it cannot rate-limit by sender; instead each new case must
//! carry a stamp that took the sender's device about a second to find and
//! takes the server one hash to check. A stamp is bound to the vault, the
//! exact request body and a time, and the server refuses to see it twice.
//! Pure logic; the server checks, the client mints.

use sha2::{Digest, Sha256};

/// Default difficulty, in leading zero bits of the stamp hash: 2^18 (about
/// 260,000) SHA-256 evaluations on average. Measured here: pure-JavaScript
/// SHA-256 runs about 270,000 of these per second on one server core, so
/// about a second in a desktop browser and a few seconds on a cheap phone;
/// native code takes a few milliseconds. Enough to make flooding costly, not
/// enough to turn a frightened person away.
pub const DEFAULT_BITS: u8 = 18;

/// Most difficulty an operator may ask for: 2^28 hashes would take minutes
/// on a phone, which would shut out the people the vault is for.
pub const MAX_BITS: u8 = 28;

/// How far a stamp's time may be from the server's clock. Minting takes
/// seconds, uploads may queue, and phones' clocks drift.
pub const MAX_SKEW_SECONDS: i64 = 600;

/// Header that carries the stamp.
pub const HEADER: &str = "custos-stamp";

/// Why a stamp was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StampError {
    /// Not of the form `v1 TIME COUNTER`.
    #[error("malformed proof-of-work stamp")]
    Malformed,
    /// Too far from the server's time.
    #[error("the proof-of-work stamp is too old or dated in the future")]
    Stale,
    /// Not enough leading zero bits.
    #[error("the proof-of-work stamp does not meet the required difficulty")]
    TooWeak,
}

/// The hash a stamp is judged by, from the SHA-256 of the body.
fn stamp_hash(origin: &str, body_digest: &[u8; 32], time: i64, counter: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"custos stamp v1\n");
    h.update(origin.as_bytes());
    h.update(b"\n");
    h.update(body_digest);
    h.update(time.to_be_bytes());
    h.update(counter.to_be_bytes());
    h.finalize().into()
}

fn leading_zero_bits(hash: &[u8; 32]) -> u32 {
    let mut n = 0;
    for b in hash {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Find a stamp for `body` sent to the vault `origin` at `time` (Unix
/// seconds). Costs about 2^bits hashes.
pub fn mint(origin: &str, body: &[u8], bits: u8, time: i64) -> String {
    // Hash the prefix once; each try only adds the counter.
    let body_digest = Sha256::digest(body);
    let mut prefix = Sha256::new();
    prefix.update(b"custos stamp v1\n");
    prefix.update(origin.as_bytes());
    prefix.update(b"\n");
    prefix.update(body_digest);
    prefix.update(time.to_be_bytes());
    let mut counter = 0u64;
    loop {
        let mut h = prefix.clone();
        h.update(counter.to_be_bytes());
        if leading_zero_bits(&h.finalize().into()) >= u32::from(bits) {
            return format!("v1 {time} {counter}");
        }
        counter += 1;
    }
}

/// Check a stamp; returns its hash, which the server remembers so the same
/// stamp is not accepted twice.
pub fn check(stamp: &str, origin: &str, body: &[u8], bits: u8, now: i64) -> Result<[u8; 32], StampError> {
    check_digest(stamp, origin, &Sha256::digest(body).into(), bits, now)
}

/// [`check`], given the SHA-256 of the body instead of the body: the
/// server checks a stamp against the body's signed `Content-Digest`
/// before it reads the body, so that an anonymous sender without a stamp
/// costs it nothing but the request's head.
pub fn check_digest(
    stamp: &str,
    origin: &str,
    body_digest: &[u8; 32],
    bits: u8,
    now: i64,
) -> Result<[u8; 32], StampError> {
    let mut parts = stamp.split(' ');
    let (Some("v1"), Some(time), Some(counter), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(StampError::Malformed);
    };
    let time: i64 = crate::custody::tlog_proof::parse_decimal(time)
        .and_then(|t| i64::try_from(t).ok())
        .ok_or(StampError::Malformed)?;
    let counter = crate::custody::tlog_proof::parse_decimal(counter).ok_or(StampError::Malformed)?;
    if (now - time).abs() > MAX_SKEW_SECONDS {
        return Err(StampError::Stale);
    }
    let hash = stamp_hash(origin, body_digest, time, counter);
    if leading_zero_bits(&hash) < u32::from(bits) {
        return Err(StampError::TooWeak);
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_bound_to_vault_body_time_and_difficulty() {
        let now = 1_800_000_000;
        let stamp = mint("v.example/log", b"body", 12, now);
        check(&stamp, "v.example/log", b"body", 12, now + 5).unwrap();
        assert!(check(&stamp, "v.example/log", b"other body", 12, now).is_err());
        assert!(check(&stamp, "other.example/log", b"body", 12, now).is_err());
        assert_eq!(
            check(&stamp, "v.example/log", b"body", 12, now + 601),
            Err(StampError::Stale)
        );
        // Raising the difficulty eventually refuses it (12 bits minted; 40
        // zero bits happen by chance once in 2^28 stamps).
        assert_eq!(
            check(&stamp, "v.example/log", b"body", 40, now),
            Err(StampError::TooWeak)
        );
        for bad in ["", "v1", "v2 1 2", "v1 01 2", "v1 1 2 3", "v1 -1 2", "v1 1 x"] {
            assert_eq!(
                check(bad, "v.example/log", b"body", 0, 1),
                Err(StampError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn counts_leading_zero_bits() {
        let mut h = [0xffu8; 32];
        assert_eq!(leading_zero_bits(&h), 0);
        h[0] = 0;
        h[1] = 0x10;
        assert_eq!(leading_zero_bits(&h), 11);
        assert_eq!(leading_zero_bits(&[0; 32]), 256);
    }
}
