//! An age file's file key, the one secret that opens that one file and
//! nothing else: what a disclosure hands an outside body for each object
//! it discloses, so that they can check a file against the ciphertext the
//! vault logged without ever holding the case key. Owns capturing the key
//! while a holder decrypts, and decrypting with a key so given; both go
//! through age's public `Identity` trait, so age itself still checks the
//! header's MAC and every payload chunk.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, BufReader, Read, Write};

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use zeroize::Zeroizing;

use super::EnvelopeError;

/// The file key of one age file: 16 bytes that open that file only.
/// Zeroized on drop; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct AgeFileKey(Zeroizing<[u8; FILE_KEY_BYTES]>);

impl fmt::Debug for AgeFileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgeFileKey(..)")
    }
}

impl PartialEq for AgeFileKey {
    fn eq(&self, other: &Self) -> bool {
        // Constant time: a key compared is a secret.
        self.0.iter().zip(other.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl Eq for AgeFileKey {}

impl AgeFileKey {
    /// The key as base64, for a disclosure's key file; zeroized when dropped.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(*self.0))
    }

    /// A key from [`Self::to_base64`]'s text: exactly 16 bytes.
    pub fn from_base64(text: &str) -> Result<Self, EnvelopeError> {
        let raw = Zeroizing::new(B64.decode(text).map_err(|_| EnvelopeError::Malformed("file key"))?);
        let bytes: [u8; FILE_KEY_BYTES] = raw
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::Malformed("file key"))?;
        Ok(AgeFileKey(Zeroizing::new(bytes)))
    }

    pub(super) fn of(key: &FileKey) -> Self {
        AgeFileKey(Zeroizing::new(*key.expose_secret()))
    }

    /// The raw key, for the payload key of a replayed encryption (`replay`).
    pub(super) fn expose(&self) -> &[u8; FILE_KEY_BYTES] {
        &self.0
    }
}

/// An identity that lets `inner` unwrap the file key and keeps a copy.
struct Capturing<'a> {
    inner: &'a dyn age::Identity,
    captured: RefCell<Option<AgeFileKey>>,
}

impl age::Identity for Capturing<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        let unwrapped = self.inner.unwrap_stanzas(stanzas);
        if let Some(Ok(key)) = &unwrapped {
            *self.captured.borrow_mut() = Some(AgeFileKey::of(key));
        }
        unwrapped
    }
}

/// An identity that answers every header with a given file key: age then
/// checks it against the header's MAC, so a key for another file fails.
struct Supplied<'a>(&'a AgeFileKey);

impl age::Identity for Supplied<'_> {
    fn unwrap_stanza(&self, _: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        Some(Ok(FileKey::init_with_mut(|k| k.copy_from_slice(&*self.0 .0))))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        stanzas.first().and_then(|s| self.unwrap_stanza(s))
    }
}

/// Stream-decrypt `input` into `output` with `identity`, as
/// [`super::decrypt_stream`] does, and return the file's file key. The key
/// is returned only once the whole file decrypted and authenticated.
pub fn decrypt_capturing(
    input: impl Read,
    mut output: impl Write,
    identity: &dyn age::Identity,
) -> Result<AgeFileKey, EnvelopeError> {
    let capturing = Capturing {
        inner: identity,
        captured: RefCell::new(None),
    };
    let dec = age::Decryptor::new_buffered(BufReader::new(input)).map_err(|_| EnvelopeError::Decrypt)?;
    let mut r = dec
        .decrypt(std::iter::once(&capturing as &dyn age::Identity))
        .map_err(|_| EnvelopeError::Decrypt)?;
    copy_plaintext(&mut r, &mut output)?;
    capturing.captured.into_inner().ok_or(EnvelopeError::Decrypt)
}

/// A reader of the plaintext of the age file `input`, opened with its
/// file key. A wrong key fails here; altered ciphertext fails while
/// reading, with [`io::ErrorKind::InvalidData`].
pub fn open_with_file_key<'a, R: Read + 'a>(input: R, key: &AgeFileKey) -> Result<Box<dyn Read + 'a>, EnvelopeError> {
    open_with(input, &Supplied(key))
}

/// A reader of the plaintext of the age file `input`, opened with
/// `identity` (a recipient's key).
pub fn open_with<'a, R: Read + 'a>(
    input: R,
    identity: &dyn age::Identity,
) -> Result<Box<dyn Read + 'a>, EnvelopeError> {
    let dec = age::Decryptor::new_buffered(BufReader::new(input)).map_err(|_| EnvelopeError::Decrypt)?;
    let r = dec
        .decrypt(std::iter::once(identity))
        .map_err(|_| EnvelopeError::Decrypt)?;
    Ok(Box::new(r))
}

/// Stream-decrypt `input` into `output` with its file key.
pub fn decrypt_with_file_key(input: impl Read, mut output: impl Write, key: &AgeFileKey) -> Result<(), EnvelopeError> {
    let mut r = open_with_file_key(input, key)?;
    copy_plaintext(&mut r, &mut output)
}

/// Copy decrypted bytes, telling a failed authentication from I/O.
fn copy_plaintext(r: &mut impl Read, output: &mut impl Write) -> Result<(), EnvelopeError> {
    io::copy(r, output).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => EnvelopeError::Decrypt,
        _ => EnvelopeError::Io(e),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{encrypt_bytes, CaseKey, Label, ObjectKind};

    /// A holder captures the key while decrypting; the key alone then opens
    /// that file, byte for byte, and no other; altered ciphertext fails.
    #[test]
    fn a_captured_file_key_opens_its_file_and_no_other() {
        let case = CaseKey::generate();
        let plain: Vec<u8> = (0..150_000u32).map(|i| (i % 241) as u8).collect();
        let ct = encrypt_bytes(&plain, &[&case.recipient()]).unwrap();
        let mut out = Vec::new();
        let key = decrypt_capturing(&ct[..], &mut out, case.identity()).unwrap();
        assert_eq!(out, plain);
        assert_eq!(format!("{key:?}"), "AgeFileKey(..)");

        let back = AgeFileKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(back, key);
        let mut again = Vec::new();
        decrypt_with_file_key(&ct[..], &mut again, &back).unwrap();
        assert_eq!(again, plain);

        // Another file of the same case has another key.
        let other = encrypt_bytes(b"another exhibit", &[&case.recipient()]).unwrap();
        assert!(matches!(
            decrypt_with_file_key(&other[..], Vec::new(), &key),
            Err(EnvelopeError::Decrypt)
        ));
        // One flipped byte of the payload fails while reading.
        let mut bad = ct.clone();
        let at = bad.len() - 100;
        bad[at] ^= 1;
        assert!(matches!(
            decrypt_with_file_key(&bad[..], Vec::new(), &key),
            Err(EnvelopeError::Decrypt)
        ));
        // A stranger's key captures nothing.
        let stranger = age::x25519::Identity::generate();
        assert!(decrypt_capturing(&ct[..], Vec::new(), &stranger).is_err());
        assert!(AgeFileKey::from_base64("AAAA").is_err());
    }

    /// A sealed label opens with its own file key, so a verifier reads a
    /// file's name and kind without the case key.
    #[test]
    fn a_label_opens_with_its_file_key() {
        let case = CaseKey::generate();
        let label = Label {
            name: "exam.pdf".into(),
            media_type: Some("application/pdf".into()),
            kind: ObjectKind::Medical,
            description: None,
            cleaned: None,
        };
        let sealed = label.seal(&case.recipient()).unwrap();
        let (opened, key) = Label::open_capturing(&sealed, &case).unwrap();
        assert_eq!(opened, label);
        assert_eq!(Label::open_with_file_key(&sealed, &key).unwrap(), label);
        let other = label.seal(&case.recipient()).unwrap();
        assert!(Label::open_with_file_key(&other, &key).is_err());
    }
}
