//! Verification of the custody log from its entries alone: the per-case hash
//! chains, the actors' request signatures (against the registry replayed from
//! the log itself), the Merkle root against a signed checkpoint, and receipts.
//! Needs only public keys and never sees content.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use crate::custody::checkpoint::Checkpoint;
use crate::custody::merkle::{self, Hash};
use crate::custody::{event_hash, Action, Event, EVENT_VERSION, VAULT_ACTOR, VAULT_CASE};
use crate::identity::{Card, KeyId, Role};
// The bodies the server parsed when it logged the request: the auditor
// reads them with the same types, so the two cannot disagree on a field.
use crate::protocol::MAX_WORKFLOW_ENTRY;
use crate::wire::{CommitUpload, ContactBody, CreateCase, DiscloseBody, GrantBody, PrincipalBody, WorkflowBody};

mod batch;
mod error;
mod frontier;
mod parallel;
mod receipt;
mod signed;
mod state;

pub use self::error::{AuditError, AuditProblem};
pub use self::frontier::Frontier;
pub use self::receipt::{decode_hashes, included, verify_receipt, ReceiptError};
pub use self::signed::{check_signature, signed_commit, signed_disclosure, signed_registration};
pub use self::state::ReplayState;

/// What an audit checked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuditSummary {
    /// Entries verified.
    pub entries: u64,
    /// Distinct chains (cases plus the vault chain).
    pub chains: usize,
    /// Actor signatures verified.
    pub signatures: u64,
    /// Entries by action (`case_created`, `workflow_changed`, ...): what
    /// happened and how often, never what it held.
    pub actions: BTreeMap<&'static str, u64>,
}

/// Replays log entries in order and checks each as it comes.
#[derive(Default)]
pub struct LogAuditor {
    /// The tree's right edge: all the audit needs of it is its root.
    tree: Frontier,
    heads: HashMap<String, (u64, String)>,
    principals: HashMap<KeyId, (VerifyingKey, Role)>,
    submitters: HashMap<KeyId, (String, VerifyingKey)>,
    /// Keys removed from the registry, each with the signature of the
    /// admin's request that removed it last: the request the case chains'
    /// revocations of that removal carry.
    retired: HashMap<KeyId, String>,
    /// Every signed request seen, by its signer and nonce (the first 16
    /// bytes of their SHA-256: a false match needs 2^64 requests).
    spent: std::collections::HashSet<[u8; 16]>,
    /// The admin cards `custos init` wrote, unsigned, at the log's start.
    anchors: Vec<Card>,
    /// The registered lawyers new cases are wrapped to.
    intake: std::collections::BTreeSet<KeyId>,
    /// Who holds each case's key (its envelopes, as granted and not
    /// revoked): only a lawyer among them may change its workflow or
    /// disclose it. Kept when whole chains are checked.
    holders: HashMap<String, std::collections::HashSet<KeyId>>,
    /// The objects each case stored: a disclosure may name only those.
    stored: HashMap<String, std::collections::HashSet<String>>,
    /// Checking a selection of events, not whole chains.
    partial: bool,
    signed_seen: bool,
    summary: AuditSummary,
    /// Signatures whose Ed25519 check is left to run together, while
    /// [`LogAuditor::push_all`] replays a batch of entries.
    pending: Option<Vec<batch::Pending>>,
    /// The current entry's request, prepared with the batch's.
    prepared: Option<batch::Prepared>,
}

impl LogAuditor {
    /// A verifier for a log starting at index 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier for a selection of events that need not be whole chains
    /// (what a submitter's client is shown of its case): every event is
    /// checked as in a whole log (signature, the request that makes it,
    /// replays, time, who may act) but for its place in its chain, whose
    /// other events may be left out. Trusts `anchors` as admins from the
    /// start, as their own unsigned events may be left out too.
    pub fn selection(anchors: &[Card]) -> Self {
        let mut auditor = Self {
            partial: true,
            ..Self::default()
        };
        for card in anchors {
            auditor
                .principals
                .insert(card.key_id(), (card.verifying_key, Role::Admin));
            auditor.anchors.push(card.clone());
        }
        auditor
    }

    /// Number of entries checked so far.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Root of the entries checked so far.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// Summary so far.
    pub fn summary(&self) -> AuditSummary {
        AuditSummary {
            chains: self.heads.len(),
            ..self.summary.clone()
        }
    }

    /// The log's trust anchors: the admin cards its first, unsigned
    /// events name.
    pub fn anchors(&self) -> &[Card] {
        &self.anchors
    }

    /// The keys the entries so far removed from the registry.
    pub fn retired(&self) -> std::collections::BTreeSet<KeyId> {
        self.retired.keys().cloned().collect()
    }

    /// The submitter keys the entries so far registered, with their case.
    pub fn submitters(&self) -> BTreeMap<KeyId, String> {
        self.submitters
            .iter()
            .map(|(k, (case, _))| (k.clone(), case.clone()))
            .collect()
    }

    /// Each chain's last sequence number and event hash (hex).
    pub fn heads(&self) -> BTreeMap<String, (u64, String)> {
        self.heads.iter().map(|(c, h)| (c.clone(), h.clone())).collect()
    }

    /// Check and absorb the next entry's stored bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        let index = self.tree.size();
        self.check_event(bytes)
            .map_err(|problem| AuditError { index, problem })?;
        self.tree.push(merkle::leaf_hash(bytes));
        Ok(())
    }

    /// Check the next event's chain link, actor and signature without
    /// placing it in the tree. For a selection of whole chains (a bundle
    /// holds the vault's chain and one case's), fed in log order, whose
    /// inclusion the caller proves separately.
    pub fn check_event(&mut self, bytes: &[u8]) -> Result<Event, AuditProblem> {
        let event: Event = serde_json::from_slice(bytes).map_err(AuditProblem::MalformedEvent)?;
        self.check_parsed(event, event_hash(bytes))
    }

    /// [`check_event`](Self::check_event) of an event already parsed,
    /// whose stored bytes hash to `hash` (hex).
    fn check_parsed(&mut self, event: Event, hash: String) -> Result<Event, AuditProblem> {
        if event.v != EVENT_VERSION {
            return Err(AuditProblem::UnknownVersion(event.v));
        }
        let (want_seq, want_prev) = match self.heads.get(&event.case) {
            None => (0, None),
            Some((seq, hash)) => (seq + 1, Some(hash.clone())),
        };
        if self.partial {
            if self.heads.get(&event.case).is_some_and(|(seq, _)| event.seq <= *seq) {
                return Err(AuditProblem::OutOfOrder { case: event.case });
            }
        } else if event.seq != want_seq {
            return Err(AuditProblem::Sequence {
                case: event.case,
                found: event.seq,
                expected: want_seq,
            });
        }
        if !self.partial && event.prev != want_prev {
            return Err(AuditProblem::ChainLink { case: event.case });
        }
        self.check_actor(&event)?;
        self.heads.insert(event.case.clone(), (event.seq, hash));
        self.summary.entries += 1;
        *self.summary.actions.entry(event.action.name()).or_default() += 1;
        Ok(event)
    }

    /// Check the actor's authority and signature, and learn keys from the event.
    fn check_actor(&mut self, e: &Event) -> Result<(), AuditProblem> {
        if e.actor == VAULT_ACTOR {
            // Only the trust anchors written by `custos init` carry no
            // signature, and only before the first signed event.
            if self.signed_seen || e.action != Action::PrincipalAdded || e.case != VAULT_CASE {
                return Err(AuditProblem::UnsignedEvent);
            }
            let card: Card =
                serde_json::from_value(e.details["card"].clone()).map_err(AuditProblem::AnchorWithoutCard)?;
            if self.partial {
                // A selection's anchors are the ones its reader trusts.
                if !self.anchors.contains(&card) {
                    return Err(AuditProblem::UntrustedAnchor(card.key_id()));
                }
                return Ok(());
            }
            self.principals.insert(card.key_id(), (card.verifying_key, Role::Admin));
            self.anchors.push(card);
            return Ok(());
        }
        self.signed_seen = true;
        let req = e.request.as_ref().ok_or(AuditProblem::NoSignedRequest)?;
        let actor: KeyId = e.actor.parse().map_err(AuditProblem::ActorNotAKeyId)?;
        let body = req.body_bytes();
        let key = if e.action == Action::CaseCreated {
            let body: CreateCase = parse_body(&body)?;
            let keys: Vec<VerifyingKey> = body
                .submitter_keys
                .iter()
                .map(|k| crate::identity::parse_verifying_key(&k.verifying_key))
                .collect::<Result<_, _>>()
                .map_err(AuditProblem::SubmitterKey)?;
            let key = *keys
                .iter()
                .find(|k| KeyId::of(k) == actor)
                .ok_or(AuditProblem::CreatorNotSubmitter)?;
            // The case is wrapped to exactly the intake lawyers registered
            // (and not removed) at this point, and to its submitter keys: a
            // host that lists a removed intake lawyer to a submitter, to
            // read what comes next, is caught here.
            let mut wrapped: Vec<KeyId> = body.envelopes.iter().map(|env| env.key_id.clone()).collect();
            let mut expected: Vec<KeyId> = self.intake.iter().cloned().collect();
            expected.extend(keys.iter().map(KeyId::of));
            wrapped.sort();
            expected.sort();
            if wrapped != expected {
                return Err(AuditProblem::WrappedToOtherKeys);
            }
            for k in keys {
                let id = KeyId::of(&k);
                // A key serves one case, and is a submitter's or a
                // principal's for good: never both.
                if self.principals.contains_key(&id) || self.retired.contains_key(&id) {
                    return Err(AuditProblem::SubmitterKeyIsPrincipal(id));
                }
                if self.submitters.contains_key(&id) {
                    return Err(AuditProblem::SubmitterKeyReused(id));
                }
                self.submitters.insert(id, (e.case.clone(), k));
            }
            key
        } else if let Some((key, role)) = self.principals.get(&actor) {
            let admin_only = matches!(
                e.action,
                Action::PrincipalAdded | Action::PrincipalRemoved | Action::VaultBackedUp | Action::PrincipalContactSet
            );
            if admin_only && *role != Role::Admin {
                return Err(AuditProblem::AdminOnly {
                    actor,
                    action: e.action,
                });
            }
            if lawyers_only(e.action) && *role != Role::Lawyer {
                return Err(AuditProblem::LawyersOnly {
                    actor,
                    action: e.action,
                });
            }
            *key
        } else if let Some((case, key)) = self.submitters.get(&actor) {
            // A codename holder never writes the lawyers' workflow, nor
            // discloses the case to anyone.
            if lawyers_only(e.action) {
                return Err(AuditProblem::LawyersOnly {
                    actor,
                    action: e.action,
                });
            }
            if *case != e.case {
                return Err(AuditProblem::SubmitterOtherCase(actor));
            }
            *key
        } else if self.retired.contains_key(&actor) {
            return Err(AuditProblem::RetiredActor(actor));
        } else {
            return Err(AuditProblem::UnknownActor(actor));
        };
        let params = self
            .signature(req, &actor, key)
            .map_err(|source| AuditProblem::ActorSignature { actor, source })?;
        if params.keyid != e.actor {
            return Err(AuditProblem::SignerNotActor);
        }
        self.summary.signatures += 1;
        check_time(e, &params)?;
        let rides_on_removal = self.check_action(e, &body)?;
        // A signed request is used once: the server spends its nonce. Only
        // a removal's revocations carry the removal's own request again.
        if !rides_on_removal && !self.spent.insert(spent_key(&params)) {
            return Err(AuditProblem::Replayed {
                keyid: params.keyid,
                nonce: params.nonce,
            });
        }
        Ok(())
    }

    /// Check that the signed request is exactly the one request of the API
    /// that makes this event: its method, and its path segment by segment,
    /// naming this event's case, objects and keys. Nothing else may ride in
    /// the signed target (no query, no escape): the server refuses such
    /// requests, so a log that holds one was not made by it.
    ///
    /// Returns whether the event is one of a removal's revocations, which
    /// carry the removal's request again.
    fn check_action(&mut self, e: &Event, body: &Option<Vec<u8>>) -> Result<bool, AuditProblem> {
        let req = e.request.as_ref().expect("checked by the caller");
        let method = req.value("@method").ok_or(AuditProblem::NotCovered("method"))?;
        let path = signed_path(req.value("@target-uri").ok_or(AuditProblem::NotCovered("target"))?)?;
        let case = e.case.as_str();
        let in_case = case != VAULT_CASE;
        let key_of = || serde_json::from_value::<KeyId>(e.details["key_id"].clone()).map_err(|_| AuditProblem::NoKeyId);
        let bound = match (e.action, method, path.as_slice()) {
            (Action::CaseCreated, "POST", ["v1", "cases"]) => in_case,
            (Action::ObjectStored, "POST", ["v1", "cases", c, "uploads", _, "commit"]) => {
                let b: CommitUpload = parse_body(body)?;
                if !crate::protocol::is_lower_hex(&b.sha256, 64) {
                    return Err(AuditProblem::ObjectIdMalformed);
                }
                if e.objects != [b.sha256.clone()] {
                    return Err(AuditProblem::StoredObjectNotSigned);
                }
                self.stored.entry(e.case.clone()).or_default().insert(b.sha256);
                *c == case
            }
            (Action::ObjectAccessed, "GET", ["v1", "cases", c, "objects", o])
            | (Action::ObjectAccessed, "GET", ["v1", "cases", c, "export", "objects", o]) => {
                *c == case && e.objects == [*o]
            }
            (Action::EnvelopeGranted, "POST", ["v1", "cases", c, "grants"]) => {
                let b: GrantBody = parse_body(body)?;
                if e.details["key_id"] != b.key_id.as_str() {
                    return Err(AuditProblem::GranteeNotSigned);
                }
                *c == case
            }
            (Action::EnvelopeRevoked, "DELETE", ["v1", "cases", c, "grants", k]) => {
                *c == case && key_of()?.as_str() == *k
            }
            // A principal's removal revokes every envelope it held, each in
            // its case's chain, with the admin's one signed request.
            (Action::EnvelopeRevoked, "DELETE", ["v1", "principals", k]) => {
                let id = key_of()?;
                if self.retired.get(&id) != Some(&req.signature) {
                    return Err(AuditProblem::RevocationWithoutRemoval);
                }
                in_case && id.as_str() == *k
            }
            (Action::Withdrawn, "POST", ["v1", "cases", c, "withdraw"]) => {
                let by_submitter = e
                    .actor
                    .parse::<KeyId>()
                    .is_ok_and(|k| self.submitters.get(&k).is_some_and(|(case, _)| *case == e.case));
                if !by_submitter {
                    return Err(AuditProblem::WithdrawalNotBySubmitter);
                }
                *c == case
            }
            (Action::CaseExported, "POST", ["v1", "cases", c, "export"]) => *c == case,
            (Action::WorkflowChanged, "POST", ["v1", "cases", c, "workflow"]) => {
                let b: WorkflowBody = parse_body(body)?;
                let sealed = B64.decode(&b.entry).map_err(|_| AuditProblem::MalformedWorkflowEntry)?;
                let no_details = e.details.as_object().is_some_and(|d| d.is_empty());
                if sealed.is_empty() || sealed.len() > MAX_WORKFLOW_ENTRY || !e.objects.is_empty() || !no_details {
                    return Err(AuditProblem::MalformedWorkflowEntry);
                }
                // Only a lawyer holding the case: the server checks this
                // under its writer lock, and a log that breaks it was not
                // made by an honest server.
                let in_lawyers_chain = case == crate::custody::lawyers_chain(c);
                let holds = self
                    .holders
                    .get(*c)
                    .is_some_and(|h| e.actor.parse().is_ok_and(|k| h.contains(&k)));
                if in_lawyers_chain && !self.partial && !holds {
                    return Err(AuditProblem::NotAHolder(e.actor.clone()));
                }
                in_lawyers_chain
            }
            (Action::CaseDisclosed, "POST", ["v1", "cases", c, "disclosures"]) => {
                let b = disclosure_body(e, body)?;
                // A selection may leave out the objects' storing; a whole
                // log may not.
                if !self.partial {
                    let stored = self.stored.get(case);
                    if let Some(o) = b.objects.iter().find(|o| !stored.is_some_and(|s| s.contains(*o))) {
                        return Err(AuditProblem::DisclosedObjectNotInCase(o.clone()));
                    }
                    let holds = self
                        .holders
                        .get(case)
                        .is_some_and(|h| e.actor.parse().is_ok_and(|k| h.contains(&k)));
                    if *c == case && !holds {
                        return Err(AuditProblem::NotAHolder(e.actor.clone()));
                    }
                }
                in_case && *c == case
            }
            (Action::PrincipalAdded, "POST", ["v1", "principals"]) => {
                let b: PrincipalBody = parse_body(body)?;
                let id = b.card.key_id();
                if e.details["key_id"] != id.as_str() {
                    return Err(AuditProblem::RegisteredKeyNotSigned);
                }
                if self.submitters.contains_key(&id) {
                    return Err(AuditProblem::PrincipalIsSubmitterKey(id));
                }
                if self.retired.contains_key(&id) {
                    return Err(AuditProblem::PrincipalReturned(id));
                }
                if b.intake {
                    self.intake.insert(id.clone());
                }
                self.principals.insert(id, (b.card.verifying_key, b.role));
                !in_case
            }
            (Action::PrincipalRemoved, "DELETE", ["v1", "principals", k]) => {
                let id = key_of()?;
                if id.as_str() != *k {
                    return Err(AuditProblem::RemovedKeyNotSigned);
                }
                self.principals.remove(&id);
                self.intake.remove(&id);
                self.retired.insert(id, req.signature.clone());
                !in_case
            }
            (Action::VaultBackedUp, "GET", ["v1", "vault", "backup"]) => !in_case,
            // A lawyer's digest address: an admin's, for a lawyer registered
            // now, in the one plain form that cannot smuggle a header.
            (Action::PrincipalContactSet, "PUT", ["v1", "principals", k, "contact"]) => {
                let b: ContactBody = parse_body(body)?;
                if let Some(email) = &b.email {
                    crate::identity::contact::EmailAddress::parse(email).map_err(AuditProblem::MalformedContact)?;
                }
                let id = key_of()?;
                if !matches!(self.principals.get(&id), Some((_, Role::Lawyer))) {
                    return Err(AuditProblem::ContactNotForLawyer(id));
                }
                !in_case && e.objects.is_empty() && id.as_str() == *k
            }
            _ => false,
        };
        if bound && !self.partial {
            self.track_holders(e, body, &key_of)?;
        }
        if !bound {
            return Err(AuditProblem::RequestNotBound {
                method: method.to_owned(),
                path: path.join("/"),
                action: e.action,
                case: case.to_owned(),
            });
        }
        // A registry change names the intake lawyers after it: the state
        // clients hold a vault's intake list to. (Logs from before it was
        // written have none.)
        if matches!(e.action, Action::PrincipalAdded | Action::PrincipalRemoved) {
            if let Some(named) = e.details.get("registry_intake") {
                let named: std::collections::BTreeSet<KeyId> =
                    serde_json::from_value(named.clone()).map_err(AuditProblem::MalformedIntakeList)?;
                if named != self.intake {
                    return Err(AuditProblem::IntakeMismatch);
                }
            }
        }
        Ok(e.action == Action::EnvelopeRevoked && path.get(1) == Some(&"principals"))
    }

    /// Follow who holds each case: its creation's envelopes, then grants
    /// and revocations (a removal's included).
    fn track_holders(
        &mut self,
        e: &Event,
        body: &Option<Vec<u8>>,
        key_of: &dyn Fn() -> Result<KeyId, AuditProblem>,
    ) -> Result<(), AuditProblem> {
        match e.action {
            Action::CaseCreated => {
                let b: CreateCase = parse_body(body)?;
                let holders = self.holders.entry(e.case.clone()).or_default();
                holders.extend(b.envelopes.into_iter().map(|env| env.key_id));
            }
            Action::EnvelopeGranted => {
                let b: GrantBody = parse_body(body)?;
                self.holders.entry(e.case.clone()).or_default().insert(b.key_id);
            }
            Action::EnvelopeRevoked => {
                let key = key_of()?;
                if let Some(h) = self.holders.get_mut(&e.case) {
                    h.remove(&key);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Check that everything pushed so far is exactly the tree of `checkpoint`.
    pub fn check_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), AuditError> {
        let index = self.tree.size();
        if checkpoint.size != index {
            return Err(AuditError {
                index,
                problem: AuditProblem::CheckpointSize {
                    checkpoint: checkpoint.size,
                    log: index,
                },
            });
        }
        if self.root() != checkpoint.root {
            return Err(AuditError {
                index,
                problem: AuditProblem::CheckpointRoot,
            });
        }
        Ok(())
    }
}

/// Actions only a case's lawyers may take: its workflow and its
/// disclosure are theirs, never a codename holder's, an auditor's or an
/// admin's.
fn lawyers_only(action: Action) -> bool {
    matches!(action, Action::WorkflowChanged | Action::CaseDisclosed)
}

/// The signed body of a `case_disclosed` event, well formed and naming
/// exactly the event's objects.
fn disclosure_body(e: &Event, body: &Option<Vec<u8>>) -> Result<DiscloseBody, AuditProblem> {
    let b: DiscloseBody = parse_body(body)?;
    if let Some(why) = b.malformed() {
        return Err(AuditProblem::MalformedDisclosure(why));
    }
    if e.objects != b.objects {
        return Err(AuditProblem::DisclosedObjectsNotSigned);
    }
    Ok(b)
}

/// The method and path segments of an event's signed request.
fn signed_target(e: &Event) -> Result<(&str, Vec<&str>), AuditProblem> {
    let req = e.request.as_ref().ok_or(AuditProblem::NoSignedRequest)?;
    let method = req.value("@method").ok_or(AuditProblem::NotCovered("method"))?;
    let path = signed_path(req.value("@target-uri").ok_or(AuditProblem::NotCovered("target"))?)?;
    Ok((method, path))
}

fn not_bound(e: &Event, method: &str, path: &[&str]) -> AuditProblem {
    AuditProblem::RequestNotBound {
        method: method.to_owned(),
        path: path.join("/"),
        action: e.action,
        case: e.case.clone(),
    }
}

/// The key a signed request is remembered by: its signer and its nonce.
fn spent_key(params: &crate::httpsig::SignatureParams) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(params.keyid.as_bytes());
    h.update([0]);
    h.update(params.nonce.as_bytes());
    h.finalize()[..16].try_into().expect("16 of 32 bytes")
}

/// An event must be dated within its request's validity: the server
/// refuses a request before `created` (but for clock skew) and logs none
/// after `expires`, so an event outside it was backdated or re-dated.
fn check_time(e: &Event, params: &crate::httpsig::SignatureParams) -> Result<(), AuditProblem> {
    let time = time::OffsetDateTime::parse(&e.time, &time::format_description::well_known::Rfc3339)
        .map_err(|source| AuditProblem::TimeNotRfc3339 {
            time: e.time.clone(),
            source,
        })?
        .unix_timestamp();
    if time < params.created - crate::httpsig::MAX_FUTURE_SKEW_SECS || time > params.expires {
        return Err(AuditProblem::OutsideSignatureWindow {
            time: e.time.clone(),
            created: params.created,
            expires: params.expires,
        });
    }
    Ok(())
}

/// The path of a signed `@target-uri` (`scheme://authority/path`), as its
/// segments, if it is in the one form the server accepts: no query or
/// fragment, no percent-escape, no empty or dot segment.
fn signed_path(target: &str) -> Result<Vec<&str>, AuditProblem> {
    let bad = || AuditProblem::NonCanonicalTarget(target.to_owned());
    let rest = target
        .strip_prefix("https://")
        .or_else(|| target.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let path = &rest[rest.find('/').ok_or_else(bad)?..];
    if !crate::httpsig::canonical_target(path, None, &[]) {
        return Err(bad());
    }
    Ok(path[1..].split('/').collect())
}

/// The signed request's body, read as the API's body `T` for it.
fn parse_body<T: for<'de> Deserialize<'de>>(body: &Option<Vec<u8>>) -> Result<T, AuditProblem> {
    let body = body.as_ref().ok_or(AuditProblem::BodyMissing)?;
    serde_json::from_slice(body).map_err(AuditProblem::MalformedBody)
}

#[cfg(test)]
mod tests;
