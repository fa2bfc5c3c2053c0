//! The receipt a submitter keeps, and the witnesses' word on it: a
//! checkpoint cosigned by the vault's witnesses that provably extends the
//! receipts' own. Does not upload or audit; `submit` and `audit` call it.

use serde::{Deserialize, Serialize};

use super::{verify, Result};
use crate::trust::Trusted;
use crate::Client;
use custos_core::audit::decode_hashes;
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::custody::{merkle, Receipt};

/// The receipt a submitter keeps: every event of the submission with its
/// proof and checkpoint, and the log key that signed them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiptFile {
    /// Case id.
    pub case_id: String,
    /// Vault origin.
    pub origin: String,
    /// Log verifier key.
    pub vkey: String,
    /// Receipts, case creation first.
    pub receipts: Vec<Receipt>,
    /// The vault's witnesses' word on the receipts, when it has witnesses
    /// and they cosigned in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<Witnessed>,
}

/// A checkpoint cosigned by every witness the client holds the vault to,
/// and the proof that it extends the receipts' last checkpoint: the
/// receipts' events are then in a history the witnesses saw, which no fork
/// shown to others can drop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Witnessed {
    /// The cosigned checkpoint note.
    pub checkpoint: String,
    /// Size of the receipts' last checkpoint, which it extends.
    pub from_size: u64,
    /// The RFC 9162 consistency proof between the two, base64 hashes.
    pub consistency: Vec<String>,
    /// The witnesses that cosigned it.
    pub cosigned_by: Vec<String>,
}

/// How long `submit` waits for the witnesses to cosign its receipts.
pub(super) const RECEIPT_COSIGN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The witnesses' word on `receipts`: the vault's newest checkpoint, once
/// every one of `trusted.witnesses` cosigned it, and its consistency with
/// the receipts' last checkpoint. `None` when the vault has no witnesses;
/// an error when they do not cosign within `wait` or the proof fails (the
/// caller says the receipt is the vault's word alone).
pub async fn witness_receipts(
    client: &Client,
    trusted: &Trusted,
    receipts: &[Receipt],
    wait: std::time::Duration,
) -> Result<Option<Witnessed>> {
    if trusted.witnesses.is_empty() {
        return Ok(None);
    }
    let last = receipts.last().ok_or_else(|| verify("no receipt to witness"))?;
    let from = trusted
        .log
        .verify(&last.checkpoint)
        .map_err(|e| verify(format!("receipt checkpoint: {e}")))?;
    let every = crate::bundle::Policy {
        witnesses: trusted.witnesses.clone(),
        quorum: trusted.witnesses.len(),
    };
    let mut cosigned_by = Vec::new();
    let note = cosigned_checkpoint(client, &trusted.log, &every, wait, &mut cosigned_by).await?;
    let cp = trusted
        .log
        .verify(&note)
        .map_err(|e| verify(format!("checkpoint: {e}")))?;
    // The vault's newest checkpoint cannot be older than one it issued
    // before; the consistency check refuses one that is.
    let proof = if cp.size <= from.size {
        Vec::new()
    } else {
        client.consistency(from.size, cp.size).await?.proof
    };
    let hashes = decode_hashes(&proof).ok_or_else(|| verify("consistency proof is malformed"))?;
    merkle::verify_consistency(from.size, cp.size, &hashes, &from.root, &cp.root)
        .map_err(|e| verify(format!("the witnessed checkpoint does not extend the receipt's: {e}")))?;
    Ok(Some(Witnessed {
        checkpoint: note,
        from_size: from.size,
        consistency: proof,
        cosigned_by,
    }))
}

/// The vault's newest checkpoint, once a quorum of `policy`'s witnesses
/// cosigned it (waiting up to `wait` for them to catch up with a write
/// that has just landed); at once when no quorum is asked for.
/// `cosigned_by` is left naming the witnesses whose cosignatures verified
/// on the last checkpoint seen, whether or not they made the quorum.
pub(super) async fn cosigned_checkpoint(
    client: &Client,
    log: &LogVerifier,
    policy: &crate::bundle::Policy,
    wait: std::time::Duration,
    cosigned_by: &mut Vec<String>,
) -> Result<String> {
    let started = std::time::Instant::now();
    loop {
        let note = client.checkpoint().await?;
        log.verify(&note).map_err(|e| verify(format!("checkpoint: {e}")))?;
        let now = custos_core::custody::unix_now();
        let names = custos_core::custody::cosignature::cosigners(&note, &policy.witnesses, now);
        *cosigned_by = names.iter().map(|n| (*n).to_owned()).collect();
        if names.len() >= policy.quorum {
            return Ok(note);
        }
        if started.elapsed() >= wait {
            return Err(verify(format!(
                "the checkpoint is cosigned by {} of the {} witnesses within {} s; the quorum is {}",
                names.len(),
                policy.witnesses.len(),
                wait.as_secs(),
                policy.quorum
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
