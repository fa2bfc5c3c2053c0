//! Auditing many entries at once on all cores: entries are parsed and
//! hashed in parallel, replayed in log order (chains, registry, nonces:
//! each depends on the ones before), and their actors' signatures, each
//! with the key the registry held at its place in the log, are checked
//! in parallel once the batch has been replayed.
//!
//! Each signature is checked singly with ed25519-dalek's `verify`, the
//! check the vault ran when the request arrived, so the audit accepts
//! exactly the signatures it did. Not its batch verification: that checks
//! one random-looking combination of all the signatures of a batch
//! without the cofactor, so a signature whose `R` carries a small-order
//! component (which only the key's holder can make, and which `verify`
//! refuses) passes it whenever the combination's coefficient happens to
//! cancel that component (one time in two for a component of order two),
//! and ed25519-dalek derives the coefficients from the batch itself, so
//! whoever writes the log can try again until one does. Refusing such an
//! `R` first means checking that it is in the prime-order subgroup, a
//! scalar multiplication per signature that costs about what the batch
//! saves.
//!
//! The failure reported is the one a one-by-one replay reports: the first
//! entry in log order that fails any check, its signature's check first
//! when that fails too.

use ed25519_dalek::VerifyingKey;

use super::{parallel, AuditError, AuditProblem, LogAuditor};
use crate::custody::{event_hash, merkle, Event};
use crate::httpsig::{SignatureCheck, SignatureError, SignatureParams, SignedRequest};
use crate::identity::KeyId;

/// What [`SignedRequest::prepare`] made of an entry's request.
pub(super) type Prepared = Result<(SignatureParams, SignatureCheck, Result<(), SignatureError>), SignatureError>;

/// A signature whose Ed25519 check is left to run with the others.
pub(super) struct Pending {
    /// The entry's index in the log.
    index: u64,
    actor: KeyId,
    key: VerifyingKey,
    check: SignatureCheck,
}

impl LogAuditor {
    /// Check and absorb the next entries' stored bytes, in log order, as
    /// [`push`](Self::push) of each would, spread over all cores. After an
    /// error the auditor is spent: it may hold some of the entries after
    /// the one that failed.
    pub fn push_all<B: AsRef<[u8]> + Sync>(&mut self, entries: &[B]) -> Result<(), AuditError> {
        let parsed = parallel::map(entries, |bytes| {
            let bytes = bytes.as_ref();
            let event = serde_json::from_slice::<Event>(bytes);
            // The signature's base and parameters, which do not depend on
            // the entries before (its key, checked in order, does).
            let prepared = event
                .as_ref()
                .ok()
                .and_then(|e| e.request.as_ref())
                .map(|r| r.prepare());
            (merkle::leaf_hash(bytes), event_hash(bytes), event, prepared)
        });
        self.pending = Some(Vec::with_capacity(entries.len()));
        let mut replayed = Ok(());
        for (leaf, hash, event, prepared) in parsed {
            let index = self.tree.size();
            self.prepared = prepared;
            let checked = event
                .map_err(AuditProblem::MalformedEvent)
                .and_then(|event| self.check_parsed(event, hash));
            if let Err(problem) = checked {
                replayed = Err(AuditError { index, problem });
                break;
            }
            self.tree.push(leaf);
        }
        self.prepared = None;
        let pending = self.pending.take().unwrap_or_default();
        // A bad signature at or before the entry whose replay failed is
        // the first failure: the replay after it may have trusted it.
        let checked = parallel::map(&pending, |p| p.check.verify(&p.key).err());
        if let Some((p, source)) = pending.iter().zip(checked).find_map(|(p, e)| Some((p, e?))) {
            return Err(AuditError {
                index: p.index,
                problem: AuditProblem::ActorSignature {
                    actor: p.actor.clone(),
                    source,
                },
            });
        }
        replayed
    }

    /// The request's signature by `key`: checked now, or (in
    /// [`push_all`](Self::push_all)) everything but the Ed25519 check,
    /// which is left to run with the batch's.
    pub(super) fn signature(
        &mut self,
        req: &SignedRequest,
        actor: &KeyId,
        key: VerifyingKey,
    ) -> Result<SignatureParams, SignatureError> {
        let index = self.tree.size();
        let Some(pending) = self.pending.as_mut() else {
            return req.verify(&key);
        };
        let (params, check, digest) = self.prepared.take().unwrap_or_else(|| req.prepare())?;
        pending.push(Pending {
            index,
            actor: actor.clone(),
            key,
            check,
        });
        // Reported after the signature's own check, as `verify` does: the
        // caller's error sends the batch to its checks first.
        digest?;
        Ok(params)
    }
}
