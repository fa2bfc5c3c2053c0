//! The running SHA-256 of each open upload, in memory: each PATCH adds its
//! body, and the commit finishes the hash instead of reading every stored
//! chunk back, so each byte is hashed once more than its PATCH digest, not
//! read again from disk. Nothing here is durable: after a restart, or
//! whenever a PATCH failed partway, the upload has no running hash and
//! its commit re-reads what is stored (`Store::hash_sequence`), as before.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::Sha256;

/// A hash of an upload's first `offset` bytes.
struct Running {
    offset: u64,
    hasher: Sha256,
}

/// The running hashes, by upload id.
#[derive(Default)]
pub(super) struct UploadHashes(Mutex<HashMap<String, Running>>);

impl UploadHashes {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        // A panic while the map was held leaves whole entries (each change
        // is one insert or remove): carry on with it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl super::Store {
    /// Take (remove) the running hash of `upload` if it covers exactly its
    /// first `offset` bytes; an upload at 0 starts one. Whoever takes it
    /// hands it back with [`Self::keep_upload_hash`] once the bytes it
    /// added count, so a PATCH that fails leaves none, never a wrong one.
    pub fn take_upload_hash(&self, upload: &str, offset: u64) -> Option<Sha256> {
        let taken = self.upload_hashes.map().remove(upload);
        match taken {
            Some(r) if r.offset == offset => Some(r.hasher),
            _ if offset == 0 => Some(sha2::Digest::new()),
            _ => None,
        }
    }

    /// Keep `hasher` as the hash of `upload`'s first `offset` bytes.
    pub fn keep_upload_hash(&self, upload: &str, offset: u64, hasher: Sha256) {
        self.upload_hashes
            .map()
            .insert(upload.to_owned(), Running { offset, hasher });
    }

    /// Forget the running hash of an upload that is gone.
    pub fn forget_upload_hash(&self, upload: &str) {
        self.upload_hashes.map().remove(upload);
    }

    /// Forget every running hash whose upload no longer exists (ended by a
    /// revocation or a removed principal); the expiry sweep calls this.
    pub fn forget_stale_upload_hashes(&self) -> super::Result<()> {
        let ids: Vec<String> = self.upload_hashes.map().keys().cloned().collect();
        for id in ids {
            if self.get_json::<super::UploadRecord>(super::T::Uploads, &id)?.is_none() {
                self.forget_upload_hash(&id);
            }
        }
        Ok(())
    }
}
