//! Proof-of-work stamps for anonymous case creation. The vault keeps no IP
//! addresses, so it cannot rate-limit by sender; instead each new case must
//! carry a stamp that took the sender's device about a second to find and
//! takes the server one hash to check. A stamp is bound to the vault, the
//! exact request body and a time, and the server refuses to see it twice.
//! Pure logic; the server checks, the client mints.
//!
//! Two kinds, each costing a sender about the same work for a given
//! difficulty, and the server accepts either:
//! - `v1 TIME COUNTER`: one SHA-256 per try, 2^bits tries. What native
//!   clients (the CLI) mint: a flooder's best tool is native code anyway.
//! - `v2 TIME COUNTER`: one PBKDF2-HMAC-SHA256 of [`V2_ROUNDS`] rounds per
//!   try, which browsers run natively (`crypto.subtle`) even with their
//!   JIT off (Tor Browser's "Safer" level), where v1's JavaScript SHA-256
//!   took 13 s. Each try is 2^7 SHA-256 compressions, so v2 asks for
//!   [`V2_DISCOUNT`] fewer bits ([`v2_bits`]): 2^11 tries at the default,
//!   the same 2^18 compressions as v1. The server's check is one short
//!   PBKDF2, tens of microseconds.

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

/// PBKDF2 rounds of one v2 try: 2 SHA-256 compressions each (the HMAC's
/// inner and outer hash, their keyed states computed once), 2^7 per try.
/// Few rounds and many tries, because the server checks one try for any
/// request that carries a stamp, valid or not: 64 rounds keep that near
/// the cost of reading a request (measured with `cargo bench --bench
/// stamp`), while a browser's cost per try is mostly the call itself
/// (2^11 tries take about 0.2 s without a JIT here, `web/bench.mjs`).
pub const V2_ROUNDS: u32 = 64;

/// How many fewer bits a v2 stamp needs than a v1 stamp of the same
/// work: log2 of the compressions in one v2 try.
pub const V2_DISCOUNT: u8 = 7;

/// The leading zero bits a v2 stamp needs where a v1 stamp needs `bits`.
/// Below [`V2_DISCOUNT`] one v2 try already costs more than the v1 stamp.
pub fn v2_bits(bits: u8) -> u8 {
    bits.saturating_sub(V2_DISCOUNT)
}

/// Header that carries the stamp.
pub const HEADER: &str = "custos-stamp";

/// Why a stamp was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StampError {
    /// Not of the form `v1 TIME COUNTER` or `v2 TIME COUNTER`.
    #[error("malformed proof-of-work stamp")]
    Malformed,
    /// Too far from the server's time.
    #[error("the proof-of-work stamp is too old or dated in the future")]
    Stale,
    /// Not enough leading zero bits.
    #[error("the proof-of-work stamp does not meet the required difficulty")]
    TooWeak,
}

/// SHA-256 fed with everything a stamp of `version` is bound to but its
/// counter: the vault, the body (by its SHA-256) and the time.
fn bound(version: &str, origin: &str, body_digest: &[u8; 32], time: i64) -> Sha256 {
    let mut h = Sha256::new();
    h.update(format!("custos stamp {version}\n{origin}\n").as_bytes());
    h.update(body_digest);
    h.update(time.to_be_bytes());
    h
}

/// The hash a v1 stamp is judged by, from the SHA-256 of the body.
fn stamp_hash(origin: &str, body_digest: &[u8; 32], time: i64, counter: u64) -> [u8; 32] {
    let mut h = bound("v1", origin, body_digest, time);
    h.update(counter.to_be_bytes());
    h.finalize().into()
}

/// The PBKDF2 password of a v2 stamp: everything it is bound to but the
/// counter, which is the salt.
fn v2_password(origin: &str, body_digest: &[u8; 32], time: i64) -> [u8; 32] {
    bound("v2", origin, body_digest, time).finalize().into()
}

/// The hash a v2 stamp is judged by.
fn v2_hash(password: &[u8; 32], counter: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &counter.to_be_bytes(), V2_ROUNDS, &mut out);
    out
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
    let prefix = bound("v1", origin, &Sha256::digest(body).into(), time);
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

/// Find a v2 stamp (the page's kind) for `body` sent to the vault `origin`
/// at `time`, where a v1 stamp would need `bits`: about 2^[`v2_bits`]
/// PBKDF2 tries.
pub fn mint_v2(origin: &str, body: &[u8], bits: u8, time: i64) -> String {
    let password = v2_password(origin, &Sha256::digest(body).into(), time);
    let need = u32::from(v2_bits(bits));
    (0u64..)
        .find(|&counter| leading_zero_bits(&v2_hash(&password, counter)) >= need)
        .map(|counter| format!("v2 {time} {counter}"))
        .expect("some counter meets any difficulty up to MAX_BITS")
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
    let (Some(version @ ("v1" | "v2")), Some(time), Some(counter), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(StampError::Malformed);
    };
    let time: i64 = crate::custody::tlog_proof::parse_decimal(time)
        .and_then(|t| i64::try_from(t).ok())
        .ok_or(StampError::Malformed)?;
    let counter = crate::custody::tlog_proof::parse_decimal(counter).ok_or(StampError::Malformed)?;
    if (now - time).abs() > MAX_SKEW_SECONDS {
        return Err(StampError::Stale);
    }
    let (hash, need) = if version == "v1" {
        (stamp_hash(origin, body_digest, time, counter), bits)
    } else {
        (v2_hash(&v2_password(origin, body_digest, time), counter), v2_bits(bits))
    };
    if leading_zero_bits(&hash) < u32::from(need) {
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
        for bad in ["", "v1", "v2 1", "v3 1 2", "v1 01 2", "v1 1 2 3", "v2 -1 2", "v1 1 x"] {
            assert_eq!(
                check(bad, "v.example/log", b"body", 0, 1),
                Err(StampError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_v2_stamp_is_bound_the_same_way_and_asks_for_fewer_bits() {
        let now = 1_800_000_000;
        let stamp = mint_v2("v.example/log", b"body", 16, now);
        assert!(stamp.starts_with("v2 "));
        check(&stamp, "v.example/log", b"body", 16, now + 5).unwrap();
        assert!(check(&stamp, "v.example/log", b"other body", 16, now).is_err());
        assert!(check(&stamp, "other.example/log", b"body", 16, now).is_err());
        assert_eq!(
            check(&stamp, "v.example/log", b"body", 16, now + 601),
            Err(StampError::Stale)
        );
        // Judged by v2's own hash: the same numbers as a v1 stamp are too
        // weak, and a v1 stamp read as v2 likewise (all inputs are fixed,
        // so this holds on every run).
        let as_v1 = stamp.replacen("v2", "v1", 1);
        assert_eq!(
            check(&as_v1, "v.example/log", b"body", 16, now),
            Err(StampError::TooWeak)
        );
        let v1 = mint("v.example/log", b"body", 16, now);
        assert_eq!(
            check(&v1.replacen("v1", "v2", 1), "v.example/log", b"body", 27, now),
            Err(StampError::TooWeak)
        );
        assert_eq!(
            check(&stamp, "v.example/log", b"body", 40, now),
            Err(StampError::TooWeak)
        );
        // The vault spends a stamp by the hash it returns: the same numbers
        // under each version must not be one spent stamp.
        let (v1, v2) = (format!("v1 {now} 5"), format!("v2 {now} 5"));
        assert_ne!(
            check(&v1, "v.example/log", b"body", 0, now),
            check(&v2, "v.example/log", b"body", 0, now)
        );
        assert_eq!((v2_bits(18), v2_bits(7), v2_bits(3)), (11, 0, 0));
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
