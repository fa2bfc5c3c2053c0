//! Receipts and included entries: an event's stored bytes, proven to be in
//! a checkpointed tree signed by the pinned log key. What every client
//! checks of what the vault answers.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::custody::checkpoint::{Checkpoint, LogVerifier};
use crate::custody::merkle::{self, Hash};
use crate::custody::{Event, Receipt};

/// Why a receipt was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The receipt is not well formed.
    #[error("malformed receipt: {0}")]
    Malformed(&'static str),
    /// The checkpoint is not signed by the pinned log key.
    #[error(transparent)]
    Checkpoint(#[from] crate::custody::checkpoint::CheckpointError),
    /// The event is not in the checkpointed tree.
    #[error("inclusion proof: {0}")]
    Proof(#[from] merkle::ProofError),
}

/// Check a receipt against the pinned log key: the checkpoint signature and
/// the event's inclusion. Returns the event and the checkpoint.
pub fn verify_receipt(receipt: &Receipt, log: &LogVerifier) -> Result<(Event, Checkpoint), ReceiptError> {
    let checkpoint = log.verify(&receipt.checkpoint)?;
    let bytes = included(receipt.index, &receipt.event, &receipt.proof, &checkpoint)?;
    let event = serde_json::from_slice(&bytes).map_err(|_| ReceiptError::Malformed("event is not valid JSON"))?;
    Ok((event, checkpoint))
}

/// An entry's stored bytes, given as receipts, exports and case logs carry
/// them (the event and its inclusion proof in base64), once its inclusion
/// at `index` in the tree of a verified `checkpoint` is proven.
pub fn included(index: u64, event: &str, proof: &[String], checkpoint: &Checkpoint) -> Result<Vec<u8>, ReceiptError> {
    let bytes = B64
        .decode(event)
        .map_err(|_| ReceiptError::Malformed("event is not base64"))?;
    let proof = decode_hashes(proof).ok_or(ReceiptError::Malformed("proof hashes"))?;
    merkle::verify_inclusion(
        index,
        checkpoint.size,
        &merkle::leaf_hash(&bytes),
        &proof,
        &checkpoint.root,
    )?;
    Ok(bytes)
}

/// Decode base64 hashes; `None` if any is not 32 bytes of base64.
pub fn decode_hashes(items: &[String]) -> Option<Vec<Hash>> {
    items
        .iter()
        .map(|h| B64.decode(h).ok().and_then(|b| Hash::try_from(b.as_slice()).ok()))
        .collect()
}
