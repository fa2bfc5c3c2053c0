//! What the store keeps about cases, objects, uploads and the registry, as
//! records, and the keys they are filed under. Plain data: how they are
//! written together is `Store::apply`'s business.

use super::*;
use custos_core::identity::contact::EmailAddress;
use custos_core::identity::Role;

/// Where a case's chain ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainHead {
    /// Sequence number of the last event.
    pub seq: u64,
    /// Hex SHA-256 of its bytes.
    pub hash: String,
}

/// A stored object: its size, number of chunks and, in records written
/// since they existed, the size of its chunks and a hash of their list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectManifest {
    /// Ciphertext size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// Bytes in every chunk but the last (which holds the rest, at least
    /// one byte), when the chunks are even, as the vault cuts PATCH
    /// bodies: chunk `i` starts at `i * chunk_size`, so a resumed download
    /// finds the chunk it starts in by a division, without reading the
    /// chunks before it. None in records written before it existed, and
    /// for uneven chunks (a tus client sending odd-sized PATCHes);
    /// downloads then take the chunks' lengths from the store. Reads check
    /// every chunk they send against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u64>,
    /// Hex SHA-256 of the chunks' addresses (their SHA-256s), in order, as
    /// the commit that checked the object's hash found them. Each chunk is
    /// checked against its address when read, so a whole download checks
    /// this list instead of hashing the whole object a second time. None
    /// in records written before it existed: those hash the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_sha256: Option<String>,
}

/// An object's membership of a case, as stored and as clients see it.
pub use custos_core::wire::CaseObject;

/// A submitter's public keys as registered at intake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubmitterKey {
    /// Key id of the signing key.
    pub key_id: KeyId,
    /// Ed25519 key, base64.
    pub verifying_key: String,
    /// age recipient.
    pub recipient: String,
}

/// A case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaseRecord {
    /// Case id.
    pub case_id: String,
    /// Creation time.
    pub created: String,
    /// `open` (or `withdrawn` once that exists).
    pub status: String,
    /// age recipient all content is encrypted to.
    pub case_recipient: String,
    /// The submitter's keys (an unordered set).
    pub submitter_keys: Vec<SubmitterKey>,
    /// Encrypted note about the keys, base64, opaque to the server.
    #[serde(default)]
    pub note: Option<String>,
    /// Set when a submitter key withdrew the complaint.
    #[serde(default)]
    pub withdrawal: Option<Withdrawal>,
}

/// A withdrawal: when, by which of the case's submitter keys, and the
/// encrypted reason. The server cannot tell a duress key from the real one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Withdrawal {
    /// Time, RFC 3339.
    pub time: String,
    /// The submitter key that signed it.
    pub key_id: KeyId,
    /// Reason encrypted to the case key, base64.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A registry entry: the principal and the log index of the event that
/// registered it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistryRecord {
    /// The principal.
    pub principal: custos_core::identity::Principal,
    /// Index of its `principal_added` event.
    pub index: u64,
    /// Where a lawyer's digest is mailed, as an admin's signed
    /// `principal_contact_set` last set it; none: no digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<EmailAddress>,
}

/// How far one lawyer's digests have counted: the log's size when the
/// last digest that reached the relay was made (or when the address was
/// set), and that digest's slot. A digest that fails is retried at the
/// next slot and counts from here, so nothing is lost. A digest that
/// reached the relay but whose record was not written (a crash, a failed
/// write) is counted again in the next one: counted twice, never lost.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct DigestState {
    /// Log entries below this index are counted in a digest already sent.
    pub counted_to: u64,
    /// Unix time of the slot of the last digest sent (0: none yet).
    pub sent_slot: i64,
}

/// An upload in progress (tus).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRecord {
    /// Case the object will join.
    pub case_id: String,
    /// Declared total length.
    pub length: u64,
    /// Bytes received so far.
    pub offset: u64,
    /// Chunks stored so far.
    pub chunks: u64,
    /// Who created the upload; only they may continue it.
    pub owner: KeyId,
    /// Unix time of creation.
    pub created: i64,
    /// Unix time of the last accepted PATCH (0 before the first).
    #[serde(default)]
    pub touched: i64,
}

/// How long an upload may sit without progress before it is dropped: a
/// week, so that someone cut off can come back days later, while abandoned
/// partial ciphertext does not pile up for ever.
pub const UPLOAD_TTL_SECS: i64 = 7 * 24 * 3600;

impl UploadRecord {
    /// When this upload expires unless it moves on (Unix time).
    pub fn expires(&self) -> i64 {
        self.created.max(self.touched) + UPLOAD_TTL_SECS
    }
}

pub(super) fn node_key(level: u32, index: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&level.to_be_bytes());
    k[4..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The size of every chunk but the last, if chunks of lengths `lens` are
/// even, hold `size` bytes, and the last holds the rest (at least one
/// byte, at most as many as the others).
fn even_chunk_size(lens: &[u64], size: u64) -> Option<u64> {
    let (&last, full) = lens.split_last()?;
    let chunk = full.first().copied().unwrap_or(last);
    let even = chunk > 0 && full.iter().all(|&l| l == chunk) && (1..=chunk).contains(&last);
    let holds = (full.len() as u64).checked_mul(chunk).and_then(|b| b.checked_add(last)) == Some(size);
    (even && holds).then_some(chunk)
}

/// Key of item `index` under a 32-byte or textual prefix.
pub fn indexed_key(prefix: &[u8], index: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Key of a chain's event: `case/` then the sequence number, big-endian,
/// so a prefix scan returns the chain in order.
pub(super) fn chain_key(case: &str, seq: u64) -> Vec<u8> {
    indexed_key(format!("{case}/").as_bytes(), seq)
}

/// Key `a/b` for two-part keys.
pub fn pair_key(a: &str, b: &str) -> Vec<u8> {
    format!("{a}/{b}").into_bytes()
}

/// Decode a hex object id into its hash bytes.
pub fn object_hash(object_id: &str) -> Option<Hash> {
    custos_core::protocol::hash_from_hex(object_id)
}

/// Lookups by what the API asks, so that no caller names a tree for them.
impl Store {
    /// The registry's record of `key_id`, if it is a principal's.
    pub fn registry_record(&self, key_id: &str) -> Result<Option<RegistryRecord>> {
        self.get_json(T::Registry, key_id)
    }

    /// Every lawyer with a contact address, in key id order: who the
    /// digest is mailed to.
    pub fn lawyer_contacts(&self) -> Result<Vec<(KeyId, EmailAddress)>> {
        Ok(self
            .scan_json::<RegistryRecord>(T::Registry, "")?
            .into_iter()
            .filter(|r| r.principal.role == Role::Lawyer)
            .filter_map(|r| Some((r.principal.key_id, r.contact?)))
            .collect())
    }

    /// Set (or clear) `record`'s contact address in `batch`. A lawyer
    /// given an address for the first time counts from the log's size
    /// now; a changed address keeps the count; a cleared one forgets it.
    pub fn set_contact(
        &self,
        batch: &mut Batch,
        mut record: RegistryRecord,
        contact: Option<EmailAddress>,
    ) -> Result<()> {
        let key = record.principal.key_id.as_str().to_owned();
        match &contact {
            Some(_) if self.digest_state(&key)?.is_none() => {
                let state = DigestState {
                    counted_to: self.log_size()?,
                    sent_slot: 0,
                };
                batch.put_json(T::Digests, key.as_str(), &state);
            }
            Some(_) => {}
            None => batch.remove(T::Digests, key.as_str()),
        }
        record.contact = contact;
        batch.put_json(T::Registry, key.as_str(), &record);
        Ok(())
    }

    /// How far `key_id`'s digests have counted, if it has an address.
    pub fn digest_state(&self, key_id: &str) -> Result<Option<DigestState>> {
        self.get_json(T::Digests, key_id)
    }

    /// Record that a digest reached the relay for `key_id`, and make it
    /// durable; the writer lock is taken for the write.
    pub async fn record_digest_sent(&self, key_id: &KeyId, state: DigestState) -> Result<()> {
        let guard = self.writer().await;
        // Only while the address is still set: a digest that was on its
        // way when an admin cleared it must not bring the count back.
        if self.digest_state(key_id.as_str())?.is_some() {
            let mut batch = Batch::default();
            batch.put_json(T::Digests, key_id.as_str(), &state);
            self.apply(&guard, batch)?;
        }
        drop(guard);
        self.flush().await
    }

    /// Start `key_id`'s digest count at log index `from` if it has an
    /// address and no count yet (a crash or a restore left it without),
    /// and make it durable; the writer lock is taken for the write.
    pub async fn start_digest_count(&self, key_id: &KeyId, from: u64) -> Result<()> {
        let guard = self.writer().await;
        let has_address = self
            .registry_record(key_id.as_str())?
            .is_some_and(|r| r.contact.is_some());
        if has_address && self.digest_state(key_id.as_str())?.is_none() {
            let mut batch = Batch::default();
            let state = DigestState {
                counted_to: from,
                sent_slot: 0,
            };
            batch.put_json(T::Digests, key_id.as_str(), &state);
            self.apply(&guard, batch)?;
        }
        drop(guard);
        self.flush().await
    }

    /// Forget `key_id`'s digest count in `batch` (its principal is removed).
    pub fn forget_digest(&self, batch: &mut Batch, key_id: &KeyId) {
        batch.remove(T::Digests, key_id.as_str());
    }

    /// Whether `key_id` holds an envelope of `case`: it may open the case.
    pub fn holds_envelope(&self, case: &str, key_id: &str) -> Result<bool> {
        Ok(self.tree(T::Envelopes).contains_key(pair_key(case, key_id))?)
    }

    /// The key ids holding an envelope of `case`.
    pub fn holders(&self, case: &str) -> Result<Vec<KeyId>> {
        Ok(self
            .paired_with(T::Envelopes, case)?
            .into_iter()
            .filter_map(|id| id.parse().ok())
            .collect())
    }

    /// `key_id`'s envelope of `case` (the case key wrapped to it).
    pub fn envelope(&self, case: &str, key_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(T::Envelopes).get(pair_key(case, key_id))?.map(|e| e.to_vec()))
    }

    /// `key_id`'s envelope of `case`'s note key (lawyers only).
    pub fn note_envelope(&self, case: &str, key_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree(T::NoteEnvelopes)
            .get(pair_key(case, key_id))?
            .map(|e| e.to_vec()))
    }

    /// Whether `key_id` is a registered principal's.
    pub fn is_principal(&self, key_id: &str) -> Result<bool> {
        Ok(self.tree(T::Registry).contains_key(key_id)?)
    }

    /// Whether `key_id` was a principal's and was removed (for good).
    pub fn is_retired(&self, key_id: &str) -> Result<bool> {
        Ok(self.tree(T::Retired).contains_key(key_id)?)
    }

    /// The case `key_id` is a submitter key of, if it is one.
    pub fn submitter_case(&self, key_id: &str) -> Result<Option<String>> {
        Ok(self
            .tree(T::Submitters)
            .get(key_id)?
            .map(|c| String::from_utf8_lossy(&c).into_owned()))
    }

    /// Whether `key_id` has ever been used, as a principal's, a removed
    /// principal's or a submitter's: a key serves one role for good.
    pub fn key_is_known(&self, key_id: &str) -> Result<bool> {
        Ok(self.submitter_case(key_id)?.is_some() || self.is_principal(key_id)? || self.is_retired(key_id)?)
    }

    /// How many objects `case` holds.
    pub fn case_object_count(&self, case: &str) -> usize {
        self.tree(T::CaseObjects).scan_prefix(pair_key(case, "")).count()
    }

    /// Whether `case` holds `object_id`.
    pub fn case_has_object(&self, case: &str, object_id: &str) -> Result<bool> {
        Ok(self.tree(T::CaseObjects).contains_key(pair_key(case, object_id))?)
    }

    /// The manifest of an object made of the `chunks` chunks of upload
    /// `upload_id`, `size` bytes in all, which the caller checked against
    /// the object's hash. Blocking (it asks the chunk store for each
    /// chunk's length); the caller checks under the writer lock that the
    /// upload has not changed since.
    pub fn manifest_of_upload(&self, upload_id: &str, size: u64, chunks: u64) -> Result<ObjectManifest> {
        self.manifest_of(T::UploadChunks, upload_id.as_bytes(), size, chunks)
    }

    /// The manifest of the chunk sequence `prefix` in `t`: the size of its
    /// chunks when they are even, and the hash of their list, from their
    /// addresses and lengths (no chunk is read).
    pub fn manifest_of(&self, t: T, prefix: &[u8], size: u64, chunks: u64) -> Result<ObjectManifest> {
        let mut list = Sha256::new();
        let addresses = (0..chunks)
            .map(|i| self.chunk_at(t, prefix, i))
            .collect::<Result<Vec<_>>>()?;
        for address in &addresses {
            list.update(address);
        }
        let lens = self.chunk_lens(&addresses)?;
        Ok(ObjectManifest {
            size,
            chunks,
            chunk_size: even_chunk_size(&lens, size),
            chunks_sha256: Some(hex::encode(list.finalize())),
        })
    }

    /// Whether an upload of this id is open.
    pub fn has_upload(&self, upload_id: &str) -> Result<bool> {
        Ok(self.tree(T::Uploads).contains_key(upload_id.as_bytes())?)
    }

    /// Whether an object of this hash is stored (in any case).
    pub fn has_object(&self, object: &Hash) -> Result<bool> {
        Ok(self.tree(T::Objects).contains_key(object)?)
    }

    /// Every open upload whose record reads, with its record. One that
    /// does not read is logged and left out, so that a damaged record
    /// cannot stop the expiry of all the others.
    pub fn uploads(&self) -> Result<Vec<(String, UploadRecord)>> {
        let mut out = Vec::new();
        for kv in self.tree(T::Uploads).iter() {
            let (k, v) = kv?;
            match serde_json::from_slice(&v) {
                Ok(record) => out.push((String::from_utf8_lossy(&k).into_owned(), record)),
                Err(e) => tracing::warn!(error = %e, "an upload record does not read; left out"),
            }
        }
        Ok(out)
    }

    /// The ids of every open upload.
    pub fn upload_ids(&self) -> Result<Vec<String>> {
        self.tree(T::Uploads)
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }
}
