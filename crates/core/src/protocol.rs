//! Constants of the protocol that clients, the server and the page agree
//! on: the limits a request must keep, and the tus version spoken. The
//! server's own tunable limits (timeouts, quotas) are its settings, in the
//! server's `config`.

/// Size of a tus PATCH and of the chunks the vault stores. Uploads are cut
/// at this size, so memory per request stays bounded whatever the object
/// size; to a vault that keeps chunks as files a PATCH is one chunk, so its
/// signed digest is also the chunk's address (one hash per byte). Chunks this large are files on the vault,
/// not database values (see the server's `store::SMALL_CHUNK`).
pub const CHUNK_SIZE: usize = 4 * 1024 * 1024;

/// The tus protocol version every upload request and answer carries.
pub const TUS_VERSION: &str = "1.0.0";

/// Largest JSON request body: case creation with a few dozen envelopes and a
/// note fits in a few KiB; 256 KiB leaves room without inviting abuse.
pub const MAX_JSON_BODY: usize = 256 * 1024;

/// Largest tus PATCH body: four chunks. Clients send what the vault's
/// `Custos-Patch-Size` asks (one chunk where chunks are files on the vault,
/// four where each waits on an S3 bucket, whose PUTs then overlap). The
/// server buffers one PATCH to check its digest before storing it, so this
/// bounds memory per upload request.
pub const MAX_PATCH_BODY: usize = 4 * CHUNK_SIZE;

/// Largest object. Set high: evidence can be hours of video.
pub const MAX_UPLOAD_LENGTH: u64 = 64 * 1024 * 1024 * 1024;

/// Most log entries returned by one `entries` request.
pub const MAX_ENTRIES_PER_PAGE: u64 = 1000;

/// Largest sealed workflow entry (a status, tag or assignment change, or a
/// lawyer's note), in bytes of age ciphertext. A note of a few pages fits;
/// it is kept in the log for ever, so larger documents go in as replies
/// or files.
pub const MAX_WORKFLOW_ENTRY: usize = 64 * 1024;

/// Workflow entries are padded to a power of two of at least this many
/// bytes before they are sealed, so the log's copy does not tell a status
/// change from a short note, and shows only the size class of a long one.
pub const WORKFLOW_PAD: usize = 1024;

/// Most objects one disclosure may name. A disclosure is a chosen part
/// of a case (a statement and a few exhibits); its signed request is kept
/// in the log for ever, and this bounds it at about 70 KiB.
pub const MAX_DISCLOSED_OBJECTS: usize = 1000;

/// Length of a case id: 12 random bytes (the server draws them), as hex.
pub const CASE_ID_HEX_LEN: usize = 24;

/// Whether `s` is a case id as the server makes them: 24 lower-case hex
/// digits. A client checks every case id a host hands it, which it then
/// prints and puts in paths.
pub fn is_case_id(s: &str) -> bool {
    is_lower_hex(s, CASE_ID_HEX_LEN)
}

/// Whether `s` is exactly `len` lower-case hex digits: the one spelling of
/// case ids, key ids and object ids (a second spelling of one id would be
/// a second key for the same thing).
pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A SHA-256 written as 64 lower-case hex digits (an object id, a chunk's
/// name), or none.
pub fn hash_from_hex(s: &str) -> Option<[u8; 32]> {
    if !is_lower_hex(s, 64) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_one_spelling() {
        let id = "ab".repeat(32);
        assert_eq!(hash_from_hex(&id), Some([0xab; 32]));
        assert_eq!(hash_from_hex(&id.to_uppercase()), None);
        assert_eq!(hash_from_hex(&id[..62]), None);
        assert!(is_lower_hex("0123456789abcdef", 16));
        assert!(!is_lower_hex("0123456789abcdeF", 16));
        assert!(!is_lower_hex("0123456789abcde", 16));
        assert!(is_case_id("0123456789abcdef01234567"));
        assert!(!is_case_id("0123456789abcdef0123456\u{1b}"));
        assert!(!is_case_id("../0123456789abcdef01234"));
    }
}
