//! What the store keeps about cases, objects, uploads and the registry, as
//! records, and the keys they are filed under. Plain data: how they are
//! written together is `Store::apply`'s business.

use super::*;

/// Where a case's chain ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainHead {
    /// Sequence number of the last event.
    pub seq: u64,
    /// Hex SHA-256 of its bytes.
    pub hash: String,
}

/// A stored object: its size and number of chunks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectManifest {
    /// Ciphertext size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u64,
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
    pub principal: crate::identity::Principal,
    /// Index of its `principal_added` event.
    pub index: u64,
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
    let raw = hex::decode(object_id).ok()?;
    Hash::try_from(raw.as_slice()).ok()
}
