//! What a [`LogAuditor`] of a whole log knows after its last entry, in a
//! form a file can keep: so that the next audit replays only the entries
//! after it. Whoever keeps it must keep it from being edited (the client's
//! state file is signed by the auditor); this only carries it.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::{Frontier, LogAuditor};
use crate::identity::{Card, KeyId, Role};

/// A whole-log auditor's knowledge after `size` entries. Keys are base64
/// of their 32 bytes, hashes hex, and the spent nonces one base64 string
/// of their 16-byte keys in order (a megabyte of text per 50,000 signed
/// requests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayState {
    /// Entries replayed.
    pub size: u64,
    /// The tree's perfect subtree roots, largest first, hex.
    frontier: Vec<String>,
    /// Each chain's last sequence number and event hash.
    heads: BTreeMap<String, (u64, String)>,
    principals: BTreeMap<KeyId, (String, Role)>,
    /// Submitter keys, with their case.
    submitters: BTreeMap<KeyId, (String, String)>,
    retired: BTreeMap<KeyId, String>,
    spent: String,
    anchors: Vec<Card>,
    intake: BTreeSet<KeyId>,
    holders: BTreeMap<String, BTreeSet<KeyId>>,
    stored: BTreeMap<String, BTreeSet<String>>,
    signed_seen: bool,
}

/// Why a [`ReplayState`] cannot be resumed.
#[derive(Debug, thiserror::Error)]
#[error("audit state: {0}")]
pub struct StateError(&'static str);

fn key(b64: &str) -> Result<VerifyingKey, StateError> {
    let bytes: [u8; 32] = B64
        .decode(b64)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(StateError("a key is not 32 bytes of base64"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| StateError("a key is not a point"))
}

impl LogAuditor {
    /// What this auditor knows, to resume it later with
    /// [`LogAuditor::resume`]. Only for an auditor of a whole log (not a
    /// selection) that passed every entry so far.
    pub fn state(&self) -> ReplayState {
        debug_assert!(!self.partial, "a selection is not resumed");
        let mut spent: Vec<[u8; 16]> = self.spent.iter().copied().collect();
        spent.sort_unstable();
        ReplayState {
            size: self.tree.size(),
            frontier: self.tree.hashes().iter().map(hex::encode).collect(),
            heads: self.heads.iter().map(|(c, h)| (c.clone(), h.clone())).collect(),
            principals: self
                .principals
                .iter()
                .map(|(id, (k, role))| (id.clone(), (B64.encode(k.as_bytes()), *role)))
                .collect(),
            submitters: self
                .submitters
                .iter()
                .map(|(id, (case, k))| (id.clone(), (case.clone(), B64.encode(k.as_bytes()))))
                .collect(),
            retired: self.retired.iter().map(|(k, s)| (k.clone(), s.clone())).collect(),
            spent: B64.encode(spent.concat()),
            anchors: self.anchors.clone(),
            intake: self.intake.clone(),
            holders: self
                .holders
                .iter()
                .map(|(c, h)| (c.clone(), h.iter().cloned().collect()))
                .collect(),
            stored: self
                .stored
                .iter()
                .map(|(c, o)| (c.clone(), o.iter().cloned().collect()))
                .collect(),
            signed_seen: self.signed_seen,
        }
    }

    /// An auditor that carries on from `state`, ready for entry
    /// `state.size`; its summary counts only what it checks from there.
    pub fn resume(state: &ReplayState) -> Result<Self, StateError> {
        let hashes = state
            .frontier
            .iter()
            .map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok()))
            .collect::<Option<Vec<[u8; 32]>>>()
            .ok_or(StateError("a tree hash is not 32 bytes of hex"))?;
        let tree = Frontier::from_hashes(state.size, &hashes).ok_or(StateError("the tree does not match its size"))?;
        let spent = B64
            .decode(&state.spent)
            .map_err(|_| StateError("the spent nonces are not base64"))?;
        if spent.len() % 16 != 0 {
            return Err(StateError("the spent nonces are not 16 bytes each"));
        }
        let keyed = |(id, k): (&KeyId, &String)| -> Result<_, StateError> {
            let k = key(k)?;
            if KeyId::of(&k) != *id {
                return Err(StateError("a key is filed under another key's id"));
            }
            Ok(k)
        };
        Ok(LogAuditor {
            tree,
            heads: state.heads.iter().map(|(c, h)| (c.clone(), h.clone())).collect(),
            principals: state
                .principals
                .iter()
                .map(|(id, (k, role))| Ok((id.clone(), (keyed((id, k))?, *role))))
                .collect::<Result<_, StateError>>()?,
            submitters: state
                .submitters
                .iter()
                .map(|(id, (case, k))| Ok((id.clone(), (case.clone(), keyed((id, k))?))))
                .collect::<Result<_, StateError>>()?,
            retired: state.retired.iter().map(|(k, s)| (k.clone(), s.clone())).collect(),
            spent: spent
                .chunks_exact(16)
                .map(|c| c.try_into().expect("16 bytes"))
                .collect(),
            anchors: state.anchors.clone(),
            intake: state.intake.clone(),
            holders: state
                .holders
                .iter()
                .map(|(c, h)| (c.clone(), h.iter().cloned().collect()))
                .collect(),
            stored: state
                .stored
                .iter()
                .map(|(c, o)| (c.clone(), o.iter().cloned().collect()))
                .collect(),
            partial: false,
            signed_seen: state.signed_seen,
            summary: Default::default(),
            pending: None,
            prepared: None,
        })
    }
}
