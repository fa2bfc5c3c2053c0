use super::*;
use crate::envelope::{decrypt_bytes, decrypt_capturing, encrypt_bytes, CaseKey};

/// The sizes where chunking can go wrong: empty, one byte, one short of a
/// chunk, exactly one and three chunks, one byte over, and a ragged tail.
const SIZES: [usize; 8] = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 1, 200_000];

fn plaintext(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn replayed(enc: &ReplayableEncryption, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    enc.reader(plain, plain.len() as u64).read_to_end(&mut out).unwrap();
    out
}

/// Where the header of an age file ends: after the MAC line `--- ...\n`.
fn header_len(age_file: &[u8]) -> usize {
    let mac = age_file.windows(5).position(|w| w == b"\n--- ").unwrap() + 5;
    mac + age_file[mac..].iter().position(|&b| b == b'\n').unwrap() + 1
}

/// Given the header, nonce and file key of a file age's own Encryptor
/// wrote, the replay writes that file again, byte for byte, at every size.
#[test]
fn the_replay_of_an_age_file_is_that_file_byte_for_byte() {
    let case = CaseKey::generate();
    for len in SIZES {
        let plain = plaintext(len);
        let by_age = encrypt_bytes(&plain, &[&case.recipient()]).unwrap();
        let key = decrypt_capturing(&by_age[..], Vec::new(), case.identity()).unwrap();
        let h = header_len(&by_age);
        let enc = ReplayableEncryption {
            header: by_age[..h].to_vec(),
            nonce: by_age[h..h + NONCE].try_into().unwrap(),
            key,
        };
        assert_eq!(enc.ciphertext_len(len as u64), by_age.len() as u64, "length at {len}");
        assert!(replayed(&enc, &plain) == by_age, "bytes at {len}");
    }
}

/// A new encryption is an age file its recipients open, of the length
/// announced before reading, the same on every replay and after a trip
/// through the journal's JSON, and another encryption differs.
#[test]
fn a_replayable_encryption_opens_with_age_and_repeats_exactly() {
    let case = CaseKey::generate();
    let other = age::x25519::Identity::generate();
    for len in SIZES {
        let plain = plaintext(len);
        let enc = ReplayableEncryption::new(&[&case.recipient(), &other.to_public()]).unwrap();
        let ct = replayed(&enc, &plain);
        assert_eq!(ct.len() as u64, enc.ciphertext_len(len as u64));
        assert_eq!(decrypt_bytes(&ct, case.identity()).unwrap(), plain, "case key at {len}");
        assert_eq!(decrypt_bytes(&ct, &other).unwrap(), plain, "second recipient at {len}");
        assert!(replayed(&enc, &plain) == ct);

        let journal = serde_json::to_string(&enc).unwrap();
        let back: ReplayableEncryption = serde_json::from_str(&journal).unwrap();
        assert!(replayed(&back, &plain) == ct, "after the journal at {len}");
        let fresh = ReplayableEncryption::new(&[&case.recipient()]).unwrap();
        assert!(replayed(&fresh, &plain) != ct);
    }
    let enc = ReplayableEncryption::new(&[&case.recipient()]).unwrap();
    assert_eq!(format!("{enc:?}"), "ReplayableEncryption(..)");
}

/// A file that changed size since its length was taken fails the read
/// rather than producing an age file of something else.
#[test]
fn a_file_that_shrank_or_grew_fails_the_read() {
    let case = CaseKey::generate();
    let enc = ReplayableEncryption::new(&[&case.recipient()]).unwrap();
    let plain = plaintext(CHUNK + 10);
    let short = enc
        .reader(&plain[..CHUNK], plain.len() as u64)
        .read_to_end(&mut Vec::new());
    assert_eq!(short.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    let long = enc.reader(&plain[..], CHUNK as u64).read_to_end(&mut Vec::new());
    assert_eq!(long.unwrap_err().kind(), io::ErrorKind::InvalidData);
}

/// A damaged journal is refused, not replayed into garbage.
#[test]
fn a_damaged_journal_entry_is_refused() {
    let bad = r#"{"header":"YWdl","nonce":"AAAA","file_key":"AAAAAAAAAAAAAAAAAAAAAA=="}"#;
    assert!(serde_json::from_str::<ReplayableEncryption>(bad).is_err());
    let bad = r#"{"header":"YWdl","nonce":"AAAAAAAAAAAAAAAAAAAAAA==","file_key":"AAAA"}"#;
    assert!(serde_json::from_str::<ReplayableEncryption>(bad).is_err());
}
