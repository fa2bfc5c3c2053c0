//! An age encryption that can be made again, byte for byte: what lets an
//! upload resume after a crash without a copy of the ciphertext on disk.
//!
//! age is randomised (a fresh file key and payload nonce each time), so the
//! same file encrypted twice is two different objects. Here age's own
//! `Encryptor` writes the header (the recipients' stanzas and the MAC) and
//! the payload nonce, while a wrapper around its public `Recipient` trait
//! keeps the file key it wraps; the payload is then age's STREAM
//! (age-encryption.org/v1: ChaCha20-Poly1305 over 64 KiB chunks under
//! `HKDF-SHA256(salt = nonce, ikm = file key, info = "payload")`, each
//! chunk's nonce an 11-byte big-endian counter and a last-chunk flag),
//! written here because age keeps its stream type private. With those three
//! things kept, any run produces the same bytes, and the ciphertext's length
//! follows from the plaintext's before a byte is read (tus asks for it
//! first). The result is a standard age file: age opens it, and
//! [`ReplayableEncryption::new`] checks its own payload against age's for an
//! empty file before it is used.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read};

use age_core::format::{FileKey, Stanza};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use super::{AgeFileKey, EnvelopeError};

/// Plaintext bytes per STREAM chunk (the age spec's 64 KiB).
const CHUNK: usize = 64 * 1024;
/// Poly1305 tag after each chunk.
const TAG: usize = 16;
/// The payload nonce after the header.
const NONCE: usize = 16;

/// What makes an age encryption repeatable: its header, its payload nonce
/// and its file key. The file key opens the one file; it is zeroized on
/// drop and `Debug` shows nothing of it. Serialises (for a resume journal,
/// private to its owner) with every field in base64.
#[derive(Clone)]
pub struct ReplayableEncryption {
    header: Vec<u8>,
    nonce: [u8; NONCE],
    key: AgeFileKey,
}

impl fmt::Debug for ReplayableEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplayableEncryption(..)")
    }
}

/// A recipient that lets `inner` wrap the file key and keeps a copy.
struct Capturing<'a> {
    inner: &'a dyn age::Recipient,
    captured: &'a RefCell<Option<AgeFileKey>>,
}

impl age::Recipient for Capturing<'_> {
    fn wrap_file_key(&self, file_key: &FileKey) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        // Every recipient of a file wraps the same key: keep the first.
        self.captured
            .borrow_mut()
            .get_or_insert_with(|| AgeFileKey::of(file_key));
        self.inner.wrap_file_key(file_key)
    }
}

impl ReplayableEncryption {
    /// A new encryption to `recipients`: age makes the file key, the header
    /// and the nonce (by encrypting an empty file); the key is captured.
    pub fn new(recipients: &[&age::x25519::Recipient]) -> Result<Self, EnvelopeError> {
        let captured = RefCell::new(None);
        let wrapped: Vec<Capturing<'_>> = recipients
            .iter()
            .map(|r| Capturing {
                inner: *r,
                captured: &captured,
            })
            .collect();
        let enc = age::Encryptor::with_recipients(wrapped.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|_| EnvelopeError::Encrypt)?;
        let mut empty = Vec::new();
        enc.wrap_output(&mut empty)?.finish()?;
        drop(wrapped);
        let key = captured.into_inner().ok_or(EnvelopeError::Encrypt)?;
        // An empty file is header, nonce and one empty last chunk (its tag).
        let header_len = empty.len().checked_sub(NONCE + TAG).ok_or(EnvelopeError::Encrypt)?;
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&empty[header_len..header_len + NONCE]);
        let this = ReplayableEncryption {
            header: empty[..header_len].to_vec(),
            nonce,
            key,
        };
        // The payload written here must be age's: check it on the one
        // chunk age wrote, so a change in either fails at once, not at
        // some later decryption.
        let mut again = Vec::new();
        this.reader(io::empty(), 0).read_to_end(&mut again)?;
        if again != empty {
            return Err(EnvelopeError::Encrypt);
        }
        Ok(this)
    }

    /// The length of the age file of a `plaintext_len`-byte plaintext:
    /// header, nonce, and a tag per chunk (an empty file still has one).
    pub fn ciphertext_len(&self, plaintext_len: u64) -> u64 {
        let chunks = plaintext_len.div_ceil(CHUNK as u64).max(1);
        (self.header.len() + NONCE) as u64 + plaintext_len + chunks * TAG as u64
    }

    /// The age file of `plaintext`, which must be exactly `plaintext_len`
    /// bytes long (reading fails if it ends early or goes on), as a reader.
    pub fn reader<R: Read>(&self, plaintext: R, plaintext_len: u64) -> CiphertextReader<R> {
        let payload_key = Zeroizing::new(age_core::primitives::hkdf(&self.nonce, b"payload", self.key.expose()));
        let mut out = Vec::with_capacity(CHUNK + TAG);
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.nonce);
        CiphertextReader {
            plaintext,
            left: plaintext_len,
            aead: ChaCha20Poly1305::new((&*payload_key).into()),
            counter: 0,
            finished: false,
            out,
            at: 0,
        }
    }
}

/// The age file of a plaintext, chunk by chunk as it is read; memory is
/// one chunk whatever the size. See [`ReplayableEncryption::reader`].
pub struct CiphertextReader<R> {
    plaintext: R,
    left: u64,
    aead: ChaCha20Poly1305,
    counter: u64,
    finished: bool,
    /// Bytes made and not yet read: the header and nonce first, then one
    /// encrypted chunk at a time.
    out: Vec<u8>,
    at: usize,
}

impl<R> fmt::Debug for CiphertextReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CiphertextReader(..)")
    }
}

impl<R: Read> CiphertextReader<R> {
    /// Encrypt the next chunk into `out`; false once the last is done.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.finished {
            return Ok(false);
        }
        let n = self.left.min(CHUNK as u64) as usize;
        let last = n as u64 == self.left;
        self.out.clear();
        self.out.resize(n, 0);
        self.plaintext.read_exact(&mut self.out).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(e.kind(), "the file shrank while it was encrypted"),
            _ => e,
        })?;
        if last {
            let mut probe = [0u8; 1];
            if read_some(&mut self.plaintext, &mut probe)? != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the file grew while it was encrypted",
                ));
            }
        }
        // age's nonce: an 11-byte big-endian chunk counter, then 1 on the last.
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&self.counter.to_be_bytes());
        nonce[11] = u8::from(last);
        let tag = self
            .aead
            .encrypt_in_place_detached((&nonce).into(), b"", &mut self.out)
            .map_err(|_| io::Error::other("chunk encryption failed"))?;
        self.out.extend_from_slice(&tag);
        self.counter += 1;
        self.left -= n as u64;
        self.finished = last;
        self.at = 0;
        Ok(true)
    }
}

/// `read`, retried when interrupted.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl<R: Read> Read for CiphertextReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.at == self.out.len() && !self.next_chunk()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The journal's form: three base64 strings.
#[derive(Serialize, Deserialize)]
struct Stored<K> {
    header: String,
    nonce: String,
    file_key: K,
}

impl Serialize for ReplayableEncryption {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let key = self.key.to_base64();
        Stored {
            header: B64.encode(&self.header),
            nonce: B64.encode(self.nonce),
            file_key: key.as_str(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ReplayableEncryption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let stored = Stored::<String>::deserialize(d)?;
        let file_key = Zeroizing::new(stored.file_key);
        let key = AgeFileKey::from_base64(&file_key).map_err(D::Error::custom)?;
        let header = B64.decode(&stored.header).map_err(D::Error::custom)?;
        let nonce = B64
            .decode(&stored.nonce)
            .ok()
            .and_then(|n| <[u8; NONCE]>::try_from(n).ok())
            .ok_or_else(|| D::Error::custom("bad payload nonce"))?;
        Ok(ReplayableEncryption { header, nonce, key })
    }
}

#[cfg(test)]
mod tests;
