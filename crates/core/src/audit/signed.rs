//! One event's signed request, read by a verifier that holds that event
//! rather than the whole log (a disclosure or an export bundle): what it
//! records, and whose signature it carries.

use ed25519_dalek::VerifyingKey;

use super::*;

/// What a `case_disclosed` event records, read from its signed request
/// for a verifier that holds this one event rather than the whole log (a
/// disclosure bundle): the request is the disclosure of this event's
/// case, and its body is well formed and names exactly the event's
/// objects. Whose signature it carries is [`check_signature`]'s.
pub fn signed_disclosure(e: &Event) -> Result<DiscloseBody, AuditProblem> {
    let (method, path) = signed_target(e)?;
    let bound = e.action == Action::CaseDisclosed
        && method == "POST"
        && e.case != VAULT_CASE
        && matches!(path.as_slice(), ["v1", "cases", c, "disclosures"] if *c == e.case);
    if !bound {
        return Err(not_bound(e, method, &path));
    }
    disclosure_body(e, &e.request.as_ref().expect("checked").body_bytes())
}

/// What an `object_stored` event records, read from its signed commit
/// for a verifier that holds this one event: the request is a commit in
/// this event's case, naming exactly the event's object. The submitter's
/// signature is left to whoever holds the case's creation, which names
/// the submitter's keys.
pub fn signed_commit(e: &Event) -> Result<CommitUpload, AuditProblem> {
    let (method, path) = signed_target(e)?;
    let bound = e.action == Action::ObjectStored
        && method == "POST"
        && e.case != VAULT_CASE
        && matches!(path.as_slice(), ["v1", "cases", c, "uploads", _, "commit"] if *c == e.case);
    if !bound {
        return Err(not_bound(e, method, &path));
    }
    let b: CommitUpload = parse_body(&e.request.as_ref().expect("checked").body_bytes())?;
    if e.objects != [b.sha256.clone()] {
        return Err(AuditProblem::StoredObjectNotSigned);
    }
    Ok(b)
}

/// What a `principal_added` event records, read from the admin's signed
/// request for a verifier that holds this one event: the request is a
/// registration, and the event names the card's key. The admin's
/// signature is left to whoever holds the registry up to its anchors.
pub fn signed_registration(e: &Event) -> Result<PrincipalBody, AuditProblem> {
    let (method, path) = signed_target(e)?;
    let bound =
        e.action == Action::PrincipalAdded && method == "POST" && e.case == VAULT_CASE && path == ["v1", "principals"];
    if !bound {
        return Err(not_bound(e, method, &path));
    }
    let b: PrincipalBody = parse_body(&e.request.as_ref().expect("checked").body_bytes())?;
    if e.details["key_id"] != b.card.key_id().as_str() {
        return Err(AuditProblem::RegisteredKeyNotSigned);
    }
    Ok(b)
}

/// Check that `key` signed the event's request, for the event's actor,
/// and that the event is dated within the request's validity: what the
/// auditor checks of every signed event, for a verifier that learnt the
/// actor's key elsewhere than from a whole log.
pub fn check_signature(e: &Event, key: &VerifyingKey) -> Result<(), AuditProblem> {
    let req = e.request.as_ref().ok_or(AuditProblem::NoSignedRequest)?;
    let actor: KeyId = e.actor.parse().map_err(AuditProblem::ActorNotAKeyId)?;
    if KeyId::of(key) != actor {
        return Err(AuditProblem::SignerNotActor);
    }
    let params = req
        .verify(key)
        .map_err(|source| AuditProblem::ActorSignature { actor, source })?;
    if params.keyid != e.actor {
        return Err(AuditProblem::SignerNotActor);
    }
    check_time(e, &params)
}
