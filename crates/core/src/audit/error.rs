//! What the auditor can find wrong with a log: one variant per check, so a
//! caller (or a test) can tell a forged signature from a broken chain
//! without reading the message. Holds no checking logic; `audit` does.

use crate::custody::Action;
use crate::httpsig::SignatureError;
use crate::identity::{IdentityError, KeyId};

/// The first failure an audit found, and where.
#[derive(Debug, thiserror::Error)]
#[error("entry {index}: {problem}")]
pub struct AuditError {
    /// Log index of the failing entry (or the log size for root checks).
    pub index: u64,
    /// What is wrong.
    #[source]
    pub problem: AuditProblem,
}

/// Why an entry, or the log as a whole, failed the audit.
///
/// A forged actor signature is [`AuditProblem::ActorSignature`], whose
/// source says only which rule of the signature failed, never why the
/// Ed25519 check did.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditProblem {
    // The stored bytes.
    /// The entry is not a custody event.
    #[error("not a valid event: {0}")]
    MalformedEvent(#[source] serde_json::Error),
    /// The event is of a format version this auditor does not know.
    #[error("unknown event version {0}")]
    UnknownVersion(u32),

    // The case's chain.
    /// In a selection, an event does not come after the last one shown of
    /// its case.
    #[error("case {case} events are out of order")]
    OutOfOrder {
        /// The case (or `vault`).
        case: String,
    },
    /// An event's place in its chain skips or repeats one.
    #[error("case {case} sequence is {found} where {expected} was expected")]
    Sequence {
        /// The case (or `vault`).
        case: String,
        /// The event's sequence number.
        found: u64,
        /// The number that follows the chain's last event.
        expected: u64,
    },
    /// An event's `prev` is not the hash of its chain's last event.
    #[error("case {case} chain link does not match the previous event")]
    ChainLink {
        /// The case (or `vault`).
        case: String,
    },

    // The log's trust anchors.
    /// An event without a signature that is not one of the admin cards
    /// `custos init` wrote before any signed event.
    #[error("unsigned event outside the initial trust anchors")]
    UnsignedEvent,
    /// An unsigned anchor event names no admin card.
    #[error("anchor without a card: {0}")]
    AnchorWithoutCard(#[source] serde_json::Error),
    /// In a selection, an anchor the reader does not trust.
    #[error("{0} is not one of the trusted anchors")]
    UntrustedAnchor(KeyId),

    // Who acted.
    /// A signed event carries no request.
    #[error("event has no signed request")]
    NoSignedRequest,
    /// The event's actor is not a key id.
    #[error("the actor is not a key id: {0}")]
    ActorNotAKeyId(#[source] IdentityError),
    /// The actor is neither a registered principal nor a case's
    /// submitter key.
    #[error("actor {0} is not a registered principal or submitter")]
    UnknownActor(KeyId),
    /// The actor's key was removed from the registry before this event.
    #[error("actor {0} was removed from the registry and may no longer act")]
    RetiredActor(KeyId),
    /// A principal whose role does not allow it did what only an admin may.
    #[error("{actor} did what only an admin may do ({action:?})")]
    AdminOnly {
        /// The principal.
        actor: KeyId,
        /// What it did.
        action: Action,
    },
    /// Someone other than a lawyer (a submitter key, an auditor, an admin)
    /// did what only a case's lawyers may do.
    #[error("{actor} did what only a case's lawyers may do ({action:?})")]
    LawyersOnly {
        /// The actor.
        actor: KeyId,
        /// What it did.
        action: Action,
    },
    /// A lawyer who did not hold the case changed its workflow or
    /// disclosed it.
    #[error("{0} acted as a lawyer of a case it did not hold")]
    NotAHolder(String),
    /// A submitter key acted on a case it does not belong to.
    #[error("submitter key {0} acted on another case")]
    SubmitterOtherCase(KeyId),
    /// The actor's signature over its request does not verify.
    #[error("actor signature of {actor}: {source}")]
    ActorSignature {
        /// The actor.
        actor: KeyId,
        /// Which rule of the signature failed.
        source: SignatureError,
    },
    /// The request is signed under another key id than the event's actor.
    #[error("signature key id differs from the actor")]
    SignerNotActor,
    /// A signed request is logged twice (and is not a removal's
    /// revocation, which carries the removal's request again).
    #[error("a signed request of {keyid} is logged a second time (nonce {nonce})")]
    Replayed {
        /// The signer's key id.
        keyid: String,
        /// The request's nonce.
        nonce: String,
    },

    // When.
    /// The event's time is not an RFC 3339 timestamp.
    #[error("the event's time {time:?} is not RFC 3339")]
    TimeNotRfc3339 {
        /// The time as logged.
        time: String,
        /// Why it does not parse.
        source: time::error::Parse,
    },
    /// The event is dated outside its request's validity: backdated or
    /// re-dated.
    #[error("the event is dated {time} but its request was valid from {created} to {expires}")]
    OutsideSignatureWindow {
        /// The time as logged.
        time: String,
        /// The signature's `created` (Unix seconds).
        created: i64,
        /// The signature's `expires` (Unix seconds).
        expires: i64,
    },

    // The request that makes the event.
    /// The signature does not cover a component the auditor binds the
    /// event to (`"method"` or `"target"`).
    #[error("the signature does not cover the {0}")]
    NotCovered(&'static str),
    /// The signed target is not in the one form the server accepts.
    #[error("the signed target {0:?} is not a canonical URL of the API")]
    NonCanonicalTarget(String),
    /// The signed method and path are not the request that makes this
    /// kind of event in this chain.
    #[error("the signed request ({method} {path}) is not the one that makes a {action:?} event of {case}")]
    RequestNotBound {
        /// The signed method.
        method: String,
        /// The signed path, without its leading `/`.
        path: String,
        /// The event's action.
        action: Action,
        /// The event's case (or `vault`).
        case: String,
    },
    /// The event needs its request's body and the log holds none.
    #[error("signed request body is missing")]
    BodyMissing,
    /// The request's body is not the API's body for that request.
    #[error("signed request body: {0}")]
    MalformedBody(#[source] serde_json::Error),
    /// The event names no key where its action needs one.
    #[error("the event names no key id")]
    NoKeyId,
    /// A stored object is not the one the signed commit names.
    #[error("stored object differs from the signed commit")]
    StoredObjectNotSigned,
    /// A signed commit names an object id that is no SHA-256 in lower-case
    /// hex (clients name files after object ids).
    #[error("a commit names an object id that is not a SHA-256 in hex")]
    ObjectIdMalformed,
    /// A grant's grantee is not the one the signed grant names.
    #[error("grantee differs from the signed grant")]
    GranteeNotSigned,
    /// A registration's key is not the signed card's.
    #[error("registered key differs from the signed card")]
    RegisteredKeyNotSigned,
    /// A removal's key is not the one the signed request names.
    #[error("removed key differs from the signed request")]
    RemovedKeyNotSigned,
    /// A revocation carries a removal's request, but no removal of that
    /// key with that request came before it.
    #[error("a revocation by removal that follows no removal of that key")]
    RevocationWithoutRemoval,
    /// A withdrawal is signed by a key that is not one of the case's
    /// submitter keys.
    #[error("a withdrawal not signed by one of the case's submitter keys")]
    WithdrawalNotBySubmitter,
    /// A workflow change whose sealed entry is not base64 of 1 to
    /// `MAX_WORKFLOW_ENTRY` bytes, or that names objects or carries
    /// details the signed request does not.
    #[error("a workflow change whose sealed entry is malformed or too large, or that carries more than it")]
    MalformedWorkflowEntry,
    /// A disclosure whose signed body is not well formed (see
    /// `DiscloseBody::malformed`).
    #[error("a malformed disclosure: {0}")]
    MalformedDisclosure(&'static str),
    /// A disclosure event lists other objects than its signed request.
    #[error("a disclosure event lists other objects than its signed request")]
    DisclosedObjectsNotSigned,
    /// A disclosure names an object its case never stored.
    #[error("a disclosure names object {0}, which its case never stored")]
    DisclosedObjectNotInCase(String),
    /// A contact address set for a principal is not in the plain form the
    /// vault accepts (it could carry a second mail header or recipient).
    #[error("a contact address that {0}")]
    MalformedContact(#[source] crate::identity::contact::EmailError),
    /// A contact address is set for a key that is not a registered lawyer
    /// at that point (an auditor, an admin, a removed or unknown key).
    #[error("a contact address set for {0}, which is not a registered lawyer")]
    ContactNotForLawyer(KeyId),

    // Keys: who is who.
    /// A submitter key in a signed case creation is not a key.
    #[error("a submitter key of the case: {0}")]
    SubmitterKey(#[source] IdentityError),
    /// A case is created by a key that is not one of its submitter keys.
    #[error("case creator is not one of the submitter keys")]
    CreatorNotSubmitter,
    /// A case is wrapped to other keys than the intake lawyers registered
    /// at that point and its submitter keys.
    #[error("the case is wrapped to other keys than the intake lawyers registered then and its submitter keys")]
    WrappedToOtherKeys,
    /// A new case's submitter key is, or was, a principal's.
    #[error("submitter key {0} is or was a principal's key")]
    SubmitterKeyIsPrincipal(KeyId),
    /// A new case's submitter key already serves another case.
    #[error("submitter key {0} was already registered for a case")]
    SubmitterKeyReused(KeyId),
    /// A principal is registered under a submitter's key.
    #[error("principal {0} is a submitter's key")]
    PrincipalIsSubmitterKey(KeyId),
    /// A removed principal is registered again.
    #[error("principal {0} was removed and may not come back")]
    PrincipalReturned(KeyId),
    /// A registry change's list of intake lawyers does not parse.
    #[error("the registry change's intake list is malformed: {0}")]
    MalformedIntakeList(#[source] serde_json::Error),
    /// A registry change names other intake lawyers than the registry
    /// replayed up to it has.
    #[error("the registry change names other intake lawyers than the registry has")]
    IntakeMismatch,

    // The log against its checkpoint.
    /// The checkpoint is of another size than the entries checked.
    #[error("checkpoint covers {checkpoint} entries but the log has {log}")]
    CheckpointSize {
        /// The checkpoint's size.
        checkpoint: u64,
        /// Entries checked.
        log: u64,
    },
    /// The entries' Merkle root is not the checkpoint's.
    #[error("Merkle root of the entries does not match the signed checkpoint")]
    CheckpointRoot,
}
