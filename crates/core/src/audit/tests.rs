//! The auditor's unit tests: logs built event by event, each broken in
//! one way, must fail the audit, and the honest ones pass.

use super::*;
use crate::custody::EventDraft;
use crate::httpsig::SignedRequest;
use crate::identity::Identity;

const BASE: &str = "https://vault.example.org";

/// When the test requests are signed, and (ten seconds later) logged.
const SIGNED_AT: i64 = 1_790_000_000;

/// A request signed by `who` for `method path` (and `body`), as stored.
fn signed(who: &Identity, method: &str, path: &str, body: Option<&[u8]>) -> SignedRequest {
    SignedRequest::sign(who.signing_key(), method, &format!("{BASE}{path}"), body, SIGNED_AT)
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A log under construction: each event placed in its case's chain.
#[derive(Clone)]
struct Log {
    events: Vec<Vec<u8>>,
    heads: HashMap<String, (u64, String)>,
    /// The time the next events are logged at.
    time: String,
    /// The intake lawyers registered so far: new cases are wrapped to them.
    intake: Vec<KeyId>,
}

impl Log {
    /// A log whose trust anchor is `admin`, with `lawyer` registered.
    fn new(admin: &Identity, lawyer: &Identity) -> Log {
        let mut log = Log {
            events: Vec::new(),
            heads: HashMap::new(),
            time: rfc3339(SIGNED_AT + 10),
            intake: Vec::new(),
        };
        log.push(VAULT_CASE, VAULT_ACTOR, Action::PrincipalAdded, vec![], None, {
            serde_json::json!({ "card": admin.card() })
        });
        log.register(admin, lawyer, "lawyer");
        log
    }

    fn push(
        &mut self,
        case: &str,
        actor: &str,
        action: Action,
        objects: Vec<String>,
        request: Option<SignedRequest>,
        details: serde_json::Value,
    ) -> Vec<u8> {
        let (seq, prev) = match self.heads.get(case) {
            None => (0, None),
            Some((seq, hash)) => (seq + 1, Some(hash.clone())),
        };
        let draft = EventDraft {
            case: case.into(),
            actor: actor.into(),
            action,
            objects,
            details,
            request,
        };
        let bytes = serde_json::to_vec(&draft.place(seq, prev, self.time.clone())).unwrap();
        self.heads.insert(case.into(), (seq, event_hash(&bytes)));
        self.events.push(bytes.clone());
        bytes
    }

    /// `who` signs `method path` (with `body`) and it is logged as `action`.
    fn act(&mut self, who: &Identity, case: &str, action: Action, method: &str, path: &str, body: Option<&[u8]>) {
        let req = signed(who, method, path, body);
        self.push_signed(who, case, action, vec![], req, serde_json::json!({}));
    }

    fn push_signed(
        &mut self,
        who: &Identity,
        case: &str,
        action: Action,
        objects: Vec<String>,
        mut req: SignedRequest,
        details: serde_json::Value,
    ) {
        if req.body.is_none() && req.value("content-digest").is_some() {
            req.body = Some(B64.encode(b""));
        }
        self.push(case, who.key_id().as_str(), action, objects, Some(req), details);
    }

    fn register(&mut self, admin: &Identity, who: &Identity, role: &str) {
        if role == "lawyer" {
            self.intake.push(who.key_id());
        }
        let body = serde_json::json!({ "card": who.card(), "role": role, "intake": role == "lawyer" });
        let body = serde_json::to_vec(&body).unwrap();
        let req = signed(admin, "POST", "/v1/principals", Some(&body));
        self.push_signed(
            admin,
            VAULT_CASE,
            Action::PrincipalAdded,
            vec![],
            req,
            serde_json::json!({ "key_id": who.key_id() }),
        );
    }

    /// `admin`'s removal of `who`, with the signed request `removal`.
    fn remove(&mut self, admin: &Identity, who: &Identity, removal: SignedRequest) {
        self.intake.retain(|k| *k != who.key_id());
        let details = serde_json::json!({ "key_id": who.key_id() });
        self.push_signed(admin, VAULT_CASE, Action::PrincipalRemoved, vec![], removal, details);
    }

    /// A case opened by `submitter` (whose key is its one submitter key).
    fn open_case(&mut self, submitter: &Identity, case: &str) {
        let mut wrapped = self.intake.clone();
        wrapped.push(submitter.key_id());
        // The body the server parses and logs: the auditor reads it back.
        let recipient = submitter.card().recipient.to_string();
        let body = crate::wire::CreateCase {
            submitter_keys: vec![crate::wire::NewSubmitterKey {
                verifying_key: B64.encode(submitter.signing_key().verifying_key().as_bytes()),
                recipient: recipient.clone(),
            }],
            case_recipient: recipient,
            envelopes: wrapped
                .iter()
                .map(|k| crate::wire::EnvelopeBody {
                    key_id: k.clone(),
                    envelope: "AA".into(),
                })
                .collect(),
            note: None,
            note_envelopes: vec![],
        };
        let body = serde_json::to_vec(&body).unwrap();
        let req = signed(submitter, "POST", "/v1/cases", Some(&body));
        self.push_signed(submitter, case, Action::CaseCreated, vec![], req, serde_json::json!({}));
    }

    /// Audit the whole log; the first failure, if any. The same failure
    /// (or none) three ways: entry by entry, in one batch on all cores,
    /// and resumed from the state after each prefix that passes.
    fn audit(&self) -> Result<(), AuditError> {
        let mut a = LogAuditor::new();
        let one_by_one = self.events.iter().try_for_each(|e| a.push(e));
        let described = |r: &Result<(), AuditError>| r.as_ref().map_err(|e| (e.index, e.to_string())).cloned();
        let batched = LogAuditor::new().push_all(&self.events);
        assert_eq!(described(&batched), described(&one_by_one), "push_all agrees with push");
        for cut in 0..self.events.len() {
            let mut head = LogAuditor::new();
            if head.push_all(&self.events[..cut]).is_err() {
                break;
            }
            let state = head.state();
            let json = serde_json::to_string(&state).unwrap();
            let back: ReplayState = serde_json::from_str(&json).unwrap();
            assert_eq!(back, state, "the state survives its file");
            let mut resumed = LogAuditor::resume(&back).unwrap();
            assert_eq!(resumed.root(), head.root());
            let rest = resumed.push_all(&self.events[cut..]);
            assert_eq!(described(&rest), described(&one_by_one), "resumed at {cut}");
        }
        one_by_one
    }
}

const CASE: &str = "0123456789abcdef01234567";

/// A backup event is an admin's, for the backup endpoint, in the vault
/// chain; the auditor refuses any other.
#[test]
fn only_an_admins_signed_backup_request_is_a_backup_event() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let with_backup = |who: &Identity, path: &str| {
        let mut log = Log::new(&admin, &lawyer);
        log.act(who, VAULT_CASE, Action::VaultBackedUp, "GET", path, None);
        log.audit()
    };
    assert!(with_backup(&admin, "/v1/vault/backup").is_ok());
    let e = with_backup(&lawyer, "/v1/vault/backup").unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::AdminOnly { actor, action: Action::VaultBackedUp } if *actor == lawyer.key_id()),
        "{e}"
    );
    let e = with_backup(&admin, "/v1/principals").unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::RequestNotBound { method, path, .. } if method == "GET" && path == "v1/principals"),
        "{e}"
    );
}

/// Each event is bound to its request's method and exact path: a query,
/// an escape, another method or another case's path fails the audit
/// (the server refuses such requests, so only a forged log has them).
#[test]
fn an_event_is_bound_to_its_signed_method_and_exact_path() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let submitter = Identity::generate("Submitter").unwrap();
    let object = "ab".repeat(32);
    let with = |who: &Identity, action: Action, method: &str, path: &str| {
        let mut log = Log::new(&admin, &lawyer);
        log.open_case(&submitter, CASE);
        let objects = if action == Action::ObjectAccessed {
            vec![object.clone()]
        } else {
            vec![]
        };
        let req = signed(who, method, path, (method == "POST").then_some(&b"{}"[..]));
        log.push_signed(who, CASE, action, objects, req, serde_json::json!({}));
        log.audit()
    };
    let withdraw = format!("/v1/cases/{CASE}/withdraw");
    let download = format!("/v1/cases/{CASE}/objects/{object}");
    assert!(with(&submitter, Action::Withdrawn, "POST", &withdraw).is_ok());
    assert!(with(&lawyer, Action::ObjectAccessed, "GET", &download).is_ok());
    for (who, action, method, path) in [
        (&submitter, Action::Withdrawn, "POST", format!("{withdraw}?x=1")),
        (
            &submitter,
            Action::Withdrawn,
            "POST",
            format!("/v1/cases/{CASE}/withdraw/"),
        ),
        (
            &submitter,
            Action::Withdrawn,
            "POST",
            format!("/v1/cases/{CASE}/./withdraw"),
        ),
        (&submitter, Action::Withdrawn, "GET", withdraw.clone()),
        (
            &submitter,
            Action::Withdrawn,
            "POST",
            format!("/x/v1/cases/{CASE}/withdraw"),
        ),
        (&lawyer, Action::ObjectAccessed, "GET", format!("{download}?x")),
        (
            &lawyer,
            Action::ObjectAccessed,
            "GET",
            download.replacen("ab", "%61b", 1),
        ),
        (&lawyer, Action::ObjectAccessed, "POST", download.clone()),
        (
            &lawyer,
            Action::ObjectAccessed,
            "GET",
            format!("/v1/cases/{CASE}/export"),
        ),
        (
            &lawyer,
            Action::ObjectAccessed,
            "GET",
            download.replace(CASE, "ffffffffffffffffffffffff"),
        ),
        (&lawyer, Action::CaseSealed, "POST", format!("/v1/cases/{CASE}/export")),
    ] {
        assert!(
            with(who, action, method, &path).is_err(),
            "a {action:?} event for {method} {path} passed the audit"
        );
    }
}

/// What an event names (its object, grantee or key) must be what its
/// signed request names, in the body or the path.
#[test]
fn an_event_names_exactly_what_its_signed_request_names() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let submitter = Identity::generate("Submitter").unwrap();
    let (ours, other) = ("ab".repeat(32), "cd".repeat(32));
    let upload = "00".repeat(16);
    let with = |who: &Identity,
                action: Action,
                method: &str,
                path: &str,
                body: Option<Vec<u8>>,
                objects: Vec<String>,
                details: serde_json::Value| {
        let mut log = Log::new(&admin, &lawyer);
        log.open_case(&submitter, CASE);
        let req = signed(who, method, path, body.as_deref());
        log.push_signed(who, CASE, action, objects, req, details);
        log.audit()
    };
    let commit = format!("/v1/cases/{CASE}/uploads/{upload}/commit");
    let commit_body =
        |sha: &str| Some(serde_json::to_vec(&serde_json::json!({ "sha256": sha, "label": "AA" })).unwrap());
    let stored = |sha: &str, objects: Vec<String>| {
        with(
            &submitter,
            Action::ObjectStored,
            "POST",
            &commit,
            commit_body(sha),
            objects,
            serde_json::json!({}),
        )
    };
    assert!(stored(&ours, vec![ours.clone()]).is_ok());
    assert!(
        stored(&ours, vec![other.clone()]).is_err(),
        "another object than committed"
    );
    assert!(
        stored(&ours, vec![ours.clone(), other.clone()]).is_err(),
        "more objects than committed"
    );
    // A commit the log key's holder made up, naming a path for an id:
    // clients name files after object ids.
    let climbing = "../../../../victim.txt".to_owned();
    let refused = stored(&climbing, vec![climbing.clone()]).unwrap_err();
    assert!(refused.to_string().contains("not a SHA-256"), "{refused}");

    let grants = format!("/v1/cases/{CASE}/grants");
    let grant_body =
        Some(serde_json::to_vec(&serde_json::json!({ "key_id": admin.key_id(), "envelope": "AA" })).unwrap());
    let granted = |to: &Identity| {
        with(
            &lawyer,
            Action::EnvelopeGranted,
            "POST",
            &grants,
            grant_body.clone(),
            vec![],
            serde_json::json!({ "key_id": to.key_id() }),
        )
    };
    assert!(granted(&admin).is_ok());
    assert!(granted(&lawyer).is_err(), "another grantee than signed");

    let revoked = |path_key: &Identity, named: &Identity| {
        let path = format!("/v1/cases/{CASE}/grants/{}", path_key.key_id());
        with(
            &lawyer,
            Action::EnvelopeRevoked,
            "DELETE",
            &path,
            None,
            vec![],
            serde_json::json!({ "key_id": named.key_id() }),
        )
    };
    assert!(revoked(&admin, &admin).is_ok());
    assert!(revoked(&admin, &submitter).is_err(), "another key than the path's");

    let mut log = Log::new(&admin, &lawyer);
    let path = format!("/v1/principals/{}", lawyer.key_id());
    let req = signed(&admin, "DELETE", &path, None);
    log.push_signed(
        &admin,
        VAULT_CASE,
        Action::PrincipalRemoved,
        vec![],
        req,
        serde_json::json!({ "key_id": admin.key_id() }),
    );
    assert!(log.audit().is_err(), "a removal of another key than the path's");
}

/// A signed request is logged once, and within its validity: an
/// operator with the log key cannot log an old grant again after a
/// revocation, nor date an event outside its request's window.
#[test]
fn a_replayed_or_redated_request_fails_the_audit() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let colleague = Identity::generate("Colleague").unwrap();
    let submitter = Identity::generate("Submitter").unwrap();
    let grants = format!("/v1/cases/{CASE}/grants");
    let body = serde_json::to_vec(&serde_json::json!({ "key_id": colleague.key_id(), "envelope": "AA" })).unwrap();
    let grant = signed(&lawyer, "POST", &grants, Some(&body));
    let to = serde_json::json!({ "key_id": colleague.key_id() });
    let base = || {
        let mut log = Log::new(&admin, &lawyer);
        log.register(&admin, &colleague, "lawyer");
        log.open_case(&submitter, CASE);
        log.push_signed(
            &lawyer,
            CASE,
            Action::EnvelopeGranted,
            vec![],
            grant.clone(),
            to.clone(),
        );
        let revoke = signed(&lawyer, "DELETE", &format!("{grants}/{}", colleague.key_id()), None);
        log.push_signed(&lawyer, CASE, Action::EnvelopeRevoked, vec![], revoke, to.clone());
        log
    };
    base().audit().unwrap();
    let mut replayed = base();
    replayed.push_signed(
        &lawyer,
        CASE,
        Action::EnvelopeGranted,
        vec![],
        grant.clone(),
        to.clone(),
    );
    let e = replayed.audit().unwrap_err();
    assert!(matches!(e.problem, AuditProblem::Replayed { .. }), "{e}");
    assert!(e.to_string().contains("a second time"), "{e}");

    // Dated after the request expired, or long before it was made.
    for t in [SIGNED_AT + 61, SIGNED_AT - 31] {
        let mut log = base();
        log.time = rfc3339(t);
        let again = signed(&lawyer, "POST", &grants, Some(&body));
        log.push_signed(&lawyer, CASE, Action::EnvelopeGranted, vec![], again, to.clone());
        let e = log.audit().unwrap_err();
        assert!(
            matches!(
                e.problem,
                AuditProblem::OutsideSignatureWindow { created: SIGNED_AT, .. }
            ),
            "{t}: {e}"
        );
    }
}

/// A case is wrapped to exactly the intake lawyers registered when it was
/// opened: not to a removed one (a host re-listing it to read new cases),
/// nor to one who was never intake, and to no fewer.
#[test]
fn a_case_wrapped_to_other_keys_than_the_current_intake_fails_the_audit() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let gone = Identity::generate("Gone").unwrap();
    let submitter = Identity::generate("Submitter").unwrap();
    let mut log = Log::new(&admin, &lawyer);
    log.register(&admin, &gone, "lawyer");
    let removal = signed(&admin, "DELETE", &format!("/v1/principals/{}", gone.key_id()), None);
    log.remove(&admin, &gone, removal);
    let mut honest = log.clone();
    honest.open_case(&submitter, CASE);
    honest.audit().unwrap();
    // The host listed the removed lawyer, and the client wrapped to it.
    log.intake.push(gone.key_id());
    log.open_case(&submitter, CASE);
    let e = log.audit().unwrap_err();
    assert!(matches!(e.problem, AuditProblem::WrappedToOtherKeys), "{e}");
}

/// A principal's removal revokes its envelopes in each case's chain with
/// the admin's one request; the auditor accepts exactly that, and no key
/// crosses between principals and submitters.
#[test]
fn removal_revokes_with_its_own_request_and_keys_never_cross_roles() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let submitter = Identity::generate("Submitter").unwrap();
    let removal = signed(&admin, "DELETE", &format!("/v1/principals/{}", lawyer.key_id()), None);
    let details = serde_json::json!({ "key_id": lawyer.key_id() });
    let base = || {
        let mut log = Log::new(&admin, &lawyer);
        log.open_case(&submitter, CASE);
        log
    };
    let mut log = base();
    log.remove(&admin, &lawyer, removal.clone());
    log.push_signed(
        &admin,
        CASE,
        Action::EnvelopeRevoked,
        vec![],
        removal.clone(),
        details.clone(),
    );
    log.audit().unwrap();

    // The same revocation without the removal before it, or with
    // another request than the removal's, is not one.
    let mut log = base();
    log.push_signed(
        &admin,
        CASE,
        Action::EnvelopeRevoked,
        vec![],
        removal.clone(),
        details.clone(),
    );
    let e = log.audit().unwrap_err();
    assert!(matches!(e.problem, AuditProblem::RevocationWithoutRemoval), "{e}");
    let mut log = base();
    log.remove(&admin, &lawyer, removal.clone());
    let other = signed(&admin, "DELETE", &format!("/v1/principals/{}", lawyer.key_id()), None);
    log.push_signed(&admin, CASE, Action::EnvelopeRevoked, vec![], other, details.clone());
    let e = log.audit().unwrap_err();
    assert!(matches!(e.problem, AuditProblem::RevocationWithoutRemoval), "{e}");

    // A removed key registered again.
    let mut log = base();
    log.remove(&admin, &lawyer, removal.clone());
    log.register(&admin, &lawyer, "lawyer");
    let e = log.audit().unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::PrincipalReturned(id) if *id == lawyer.key_id()),
        "{e}"
    );

    // A removed principal's key opening a case, or a submitter's key
    // made a principal.
    let mut log = base();
    log.remove(&admin, &lawyer, removal);
    log.open_case(&lawyer, "ffffffffffffffffffffffff");
    let e = log.audit().unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::SubmitterKeyIsPrincipal(id) if *id == lawyer.key_id()),
        "{e}"
    );
    let mut log = base();
    log.register(&admin, &submitter, "lawyer");
    let e = log.audit().unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::PrincipalIsSubmitterKey(id) if *id == submitter.key_id()),
        "{e}"
    );
}

/// A signature changed after signing is the signature failure, at its
/// entry, and says no more than that it does not verify; the message
/// names the entry and the actor, and the error's sources lead to the
/// signature's own error.
#[test]
fn a_tampered_signature_is_the_actor_signature_failure() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let mut log = Log::new(&admin, &lawyer);
    let mut req = signed(&admin, "GET", "/v1/vault/backup", None);
    let mut sig = B64.decode(&req.signature).unwrap();
    sig[0] ^= 1;
    req.signature = B64.encode(sig);
    log.push_signed(
        &admin,
        VAULT_CASE,
        Action::VaultBackedUp,
        vec![],
        req,
        serde_json::json!({}),
    );
    let e = log.audit().unwrap_err();
    assert_eq!(e.index, 2, "{e}");
    assert!(
        matches!(
            &e.problem,
            AuditProblem::ActorSignature { actor, source: crate::httpsig::SignatureError::Invalid }
                if *actor == admin.key_id()
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "entry 2: actor signature of {}: signature does not verify",
            admin.key_id()
        )
    );
    let problem = std::error::Error::source(&e).expect("the problem is the source");
    let signature = problem.source().expect("the signature error is the problem's source");
    assert_eq!(signature.to_string(), "signature does not verify");
}

/// An event whose link or sequence number does not follow its chain's
/// last event is a chain failure, naming the case and the numbers.
#[test]
fn a_broken_chain_is_the_chain_failure() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let submitter = Identity::generate("Submitter").unwrap();
    let withdraw = format!("/v1/cases/{CASE}/withdraw");
    let mut base = Log::new(&admin, &lawyer);
    base.open_case(&submitter, CASE);
    base.audit().unwrap();

    // The case's next event links to something else than its first.
    let mut log = base.clone();
    log.heads.get_mut(CASE).unwrap().1 = "00".repeat(32);
    log.act(&submitter, CASE, Action::Withdrawn, "POST", &withdraw, Some(b"{}"));
    let e = log.audit().unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::ChainLink { case } if case == CASE),
        "{e}"
    );

    // Or skips a number.
    let mut log = base.clone();
    log.heads.get_mut(CASE).unwrap().0 += 1;
    log.act(&submitter, CASE, Action::Withdrawn, "POST", &withdraw, Some(b"{}"));
    let e = log.audit().unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::Sequence { case, found: 2, expected: 1 } if case == CASE),
        "{e}"
    );
    assert!(e.to_string().contains("sequence is 2 where 1 was expected"), "{e}");
}

/// A removed principal's key may sign nothing more, and the audit says
/// it was removed rather than that it was never known.
#[test]
fn a_removed_principal_acting_is_the_retired_actor_failure() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let stranger = Identity::generate("Stranger").unwrap();
    let mut log = Log::new(&admin, &lawyer);
    let removal = signed(&admin, "DELETE", &format!("/v1/principals/{}", lawyer.key_id()), None);
    log.remove(&admin, &lawyer, removal);
    log.audit().unwrap();

    let mut after = log.clone();
    after.act(
        &lawyer,
        VAULT_CASE,
        Action::VaultBackedUp,
        "GET",
        "/v1/vault/backup",
        None,
    );
    let e = after.audit().unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::RetiredActor(id) if *id == lawyer.key_id()),
        "{e}"
    );

    log.act(
        &stranger,
        VAULT_CASE,
        Action::VaultBackedUp,
        "GET",
        "/v1/vault/backup",
        None,
    );
    let e = log.audit().unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::UnknownActor(id) if *id == stranger.key_id()),
        "{e}"
    );
}

/// A workflow change is a lawyer's, with a sealed entry of bounded size,
/// on its own case's path; and the summary counts events by action.
#[test]
fn only_lawyers_change_a_cases_workflow() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let auditor = Identity::generate("Auditor").unwrap();
    let submitter = Identity::generate("Submitter").unwrap();
    let path = format!("/v1/cases/{CASE}/workflow");
    let body = |entry: &[u8]| {
        serde_json::to_vec(&crate::wire::WorkflowBody {
            entry: B64.encode(entry),
        })
        .unwrap()
    };
    let late = Identity::generate("Lawyer who never held it").unwrap();
    let chain = crate::custody::lawyers_chain(CASE);
    let with_in = |chain: &str, who: &Identity, path: &str, body: &[u8]| {
        let mut log = Log::new(&admin, &lawyer);
        log.register(&admin, &auditor, "auditor");
        log.open_case(&submitter, CASE);
        // Registered after the case opened: not wrapped to it.
        log.register(&admin, &late, "lawyer");
        log.act(who, chain, Action::WorkflowChanged, "POST", path, Some(body));
        let mut a = LogAuditor::new();
        for e in &log.events {
            a.push(e)?;
        }
        Ok::<_, AuditError>(a.summary())
    };
    let with = |who: &Identity, path: &str, body: &[u8]| with_in(&chain, who, path, body);
    let summary = with(&lawyer, &path, &body(b"sealed")).unwrap();
    assert_eq!(summary.actions.get("workflow_changed"), Some(&1));
    assert_eq!(summary.actions.get("case_created"), Some(&1));
    for who in [&submitter, &auditor, &admin] {
        let e = with(who, &path, &body(b"sealed")).unwrap_err();
        assert!(
            matches!(&e.problem, AuditProblem::LawyersOnly { actor, action: Action::WorkflowChanged } if *actor == who.key_id()),
            "{e}"
        );
    }
    let too_large = vec![0u8; crate::protocol::MAX_WORKFLOW_ENTRY + 1];
    for bad in [body(b""), body(&too_large)] {
        let e = with(&lawyer, &path, &bad).unwrap_err();
        assert!(matches!(e.problem, AuditProblem::MalformedWorkflowEntry), "{e}");
    }
    let other = format!("/v1/cases/{}/workflow", "f".repeat(24));
    let e = with(&lawyer, &other, &body(b"sealed")).unwrap_err();
    assert!(matches!(e.problem, AuditProblem::RequestNotBound { .. }), "{e}");
    // In the case's own chain, where codename holders would count it.
    let e = with_in(CASE, &lawyer, &path, &body(b"sealed")).unwrap_err();
    assert!(matches!(e.problem, AuditProblem::RequestNotBound { .. }), "{e}");
    // A lawyer who never held the case.
    let e = with(&late, &path, &body(b"sealed")).unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::NotAHolder(k) if *k == late.key_id().to_string()),
        "{e}"
    );
}

/// A disclosure is a lawyer's, on its own case's path, with a well-formed
/// body naming exactly the event's objects, each one the case stored; the
/// one-event checks a disclosure bundle runs agree.
#[test]
fn only_lawyers_disclose_what_their_case_stored() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let auditor = Identity::generate("Auditor").unwrap();
    let submitter = Identity::generate("Submitter").unwrap();
    let court = age::x25519::Identity::generate().to_public().to_string();
    let (first, second, never) = ("ab".repeat(32), "cd".repeat(32), "ef".repeat(32));
    let path = format!("/v1/cases/{CASE}/disclosures");
    let body = |objects: &[&String], recipient: &str| {
        serde_json::to_vec(&crate::wire::DiscloseBody {
            recipient: recipient.to_owned(),
            recipient_key_id: None,
            objects: objects.iter().map(|o| (*o).clone()).collect(),
            plaintext: false,
            cleaned: Vec::new(),
        })
        .unwrap()
    };
    let late = Identity::generate("Lawyer who never held it").unwrap();
    // A case that stored `first` and `second`, then `who`'s disclosure.
    let with = |who: &Identity, path: &str, body: &[u8], listed: Vec<String>| {
        let mut log = Log::new(&admin, &lawyer);
        log.register(&admin, &auditor, "auditor");
        log.open_case(&submitter, CASE);
        // Registered after the case opened: not wrapped to it.
        log.register(&admin, &late, "lawyer");
        for (i, sha) in [&first, &second].into_iter().enumerate() {
            let commit = serde_json::to_vec(&serde_json::json!({ "sha256": sha, "label": "AA" })).unwrap();
            let upload = format!("/v1/cases/{CASE}/uploads/{}/commit", format!("{i}").repeat(32));
            let req = signed(&submitter, "POST", &upload, Some(&commit));
            log.push_signed(
                &submitter,
                CASE,
                Action::ObjectStored,
                vec![sha.clone()],
                req,
                serde_json::json!({}),
            );
        }
        let req = signed(who, "POST", path, Some(body));
        log.push_signed(who, CASE, Action::CaseDisclosed, listed, req, serde_json::json!({}));
        let mut a = LogAuditor::new();
        for e in &log.events {
            a.push(e)?;
        }
        Ok::<_, AuditError>((a.summary(), log.events.last().unwrap().clone()))
    };
    let both = vec![first.clone(), second.clone()];
    let (summary, bytes) = with(&lawyer, &path, &body(&[&first, &second], &court), both.clone()).unwrap();
    assert_eq!(summary.actions.get("case_disclosed"), Some(&1));
    // The one-event reading a bundle verifier does: the body, and the
    // lawyer's signature once the lawyer's key is known.
    let event: Event = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(signed_disclosure(&event).unwrap().objects, both);
    check_signature(&event, &lawyer.signing_key().verifying_key()).unwrap();
    assert!(matches!(
        check_signature(&event, &admin.signing_key().verifying_key()),
        Err(AuditProblem::SignerNotActor)
    ));

    for who in [&submitter, &auditor, &admin] {
        let e = with(who, &path, &body(&[&first], &court), vec![first.clone()]).unwrap_err();
        assert!(
            matches!(&e.problem, AuditProblem::LawyersOnly { actor, action: Action::CaseDisclosed } if *actor == who.key_id()),
            "{e}"
        );
    }
    for (bad, listed, why) in [
        (
            body(&[&second, &first], &court),
            vec![second.clone(), first.clone()],
            "order",
        ),
        (
            body(&[&first, &first], &court),
            vec![first.clone(), first.clone()],
            "twice",
        ),
        (body(&[], &court), vec![], "none"),
        (body(&[&first], "age1nope"), vec![first.clone()], "recipient"),
    ] {
        let e = with(&lawyer, &path, &bad, listed).unwrap_err();
        assert!(matches!(e.problem, AuditProblem::MalformedDisclosure(_)), "{why}: {e}");
    }
    let e = with(&lawyer, &path, &body(&[&first], &court), both.clone()).unwrap_err();
    assert!(matches!(e.problem, AuditProblem::DisclosedObjectsNotSigned), "{e}");
    let e = with(&lawyer, &path, &body(&[&never], &court), vec![never.clone()]).unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::DisclosedObjectNotInCase(o) if *o == never),
        "{e}"
    );
    let other = format!("/v1/cases/{}/disclosures", "f".repeat(24));
    let e = with(&lawyer, &other, &body(&[&first], &court), vec![first.clone()]).unwrap_err();
    assert!(matches!(e.problem, AuditProblem::RequestNotBound { .. }), "{e}");
    let e = with(&late, &path, &body(&[&first], &court), vec![first.clone()]).unwrap_err();
    assert!(
        matches!(&e.problem, AuditProblem::NotAHolder(k) if *k == late.key_id().to_string()),
        "{e}"
    );
}

/// A lawyer's digest address is set by an admin only, for a registered
/// lawyer only, on the vault's chain, in the plain form that cannot carry
/// a second header; clearing it (no address) is an admin's change too.
#[test]
fn only_admins_set_a_lawyers_contact_address() {
    use crate::identity::contact::EmailError;
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let auditor = Identity::generate("Auditor").unwrap();
    let submitter = Identity::generate("Submitter").unwrap();
    let body = |email: Option<&str>| {
        serde_json::to_vec(&crate::wire::ContactBody {
            email: email.map(str::to_owned),
        })
        .unwrap()
    };
    let with = |who: &Identity, of: &Identity, case: &str, body: &[u8]| {
        let mut log = Log::new(&admin, &lawyer);
        log.register(&admin, &auditor, "auditor");
        log.open_case(&submitter, CASE);
        let path = format!("/v1/principals/{}/contact", of.key_id());
        let req = signed(who, "PUT", &path, Some(body));
        let details = serde_json::json!({ "key_id": of.key_id() });
        log.push_signed(who, case, Action::PrincipalContactSet, vec![], req, details);
        let mut a = LogAuditor::new();
        for e in &log.events {
            a.push(e)?;
        }
        Ok::<_, AuditError>(a.summary())
    };
    let summary = with(&admin, &lawyer, VAULT_CASE, &body(Some("lawyer@example.org"))).unwrap();
    assert_eq!(summary.actions.get("principal_contact_set"), Some(&1));
    with(&admin, &lawyer, VAULT_CASE, &body(None)).unwrap();
    for who in [&lawyer, &auditor] {
        let e = with(who, &lawyer, VAULT_CASE, &body(Some("lawyer@example.org"))).unwrap_err();
        assert!(
            matches!(&e.problem, AuditProblem::AdminOnly { actor, action: Action::PrincipalContactSet } if *actor == who.key_id()),
            "{e}"
        );
    }
    let e = with(&submitter, &lawyer, VAULT_CASE, &body(Some("lawyer@example.org"))).unwrap_err();
    assert!(matches!(e.problem, AuditProblem::SubmitterOtherCase(_)), "{e}");
    let e = with(
        &admin,
        &lawyer,
        VAULT_CASE,
        &body(Some("lawyer@example.org\r\nBcc: spy@example.net")),
    )
    .unwrap_err();
    assert!(
        matches!(e.problem, AuditProblem::MalformedContact(EmailError::WhiteSpace)),
        "{e}"
    );
    for not_a_lawyer in [&auditor, &admin, &submitter] {
        let e = with(&admin, not_a_lawyer, VAULT_CASE, &body(Some("x@example.org"))).unwrap_err();
        assert!(
            matches!(&e.problem, AuditProblem::ContactNotForLawyer(k) if *k == not_a_lawyer.key_id()),
            "{e}"
        );
    }
    let e = with(&admin, &lawyer, CASE, &body(Some("lawyer@example.org"))).unwrap_err();
    assert!(matches!(e.problem, AuditProblem::RequestNotBound { .. }), "{e}");
}

/// A signature the vault's check refuses, among many good ones checked
/// together on all cores, is the failure, at its own entry, even when a
/// later entry fails another check too.
#[test]
fn a_bad_signature_among_many_checked_together_is_the_first_failure() {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let submitter = Identity::generate("Submitter").unwrap();
    let mut log = Log::new(&admin, &lawyer);
    log.open_case(&submitter, CASE);
    let object = "ab".repeat(32);
    let path = format!("/v1/cases/{CASE}/objects/{object}");
    for _ in 0..150 {
        let req = signed(&lawyer, "GET", &path, None);
        log.push_signed(
            &lawyer,
            CASE,
            Action::ObjectAccessed,
            vec![object.clone()],
            req,
            serde_json::json!({}),
        );
    }
    assert!(LogAuditor::new().push_all(&log.events).is_ok());
    let bad_at = 100;
    let mut forged = log.clone();
    let event: Event = serde_json::from_slice(&log.events[bad_at]).unwrap();
    let mut req = event.request.clone().unwrap();
    let mut sig = B64.decode(&req.signature).unwrap();
    sig[5] ^= 0x40;
    req.signature = B64.encode(sig);
    // Rebuild the log from the forged entry on, so every chain still links.
    forged.events.truncate(bad_at);
    forged
        .heads
        .insert(CASE.into(), (event.seq - 1, event.prev.clone().unwrap()));
    forged.push_signed(
        &lawyer,
        CASE,
        Action::ObjectAccessed,
        vec![object.clone()],
        req,
        serde_json::json!({}),
    );
    for _ in bad_at + 1..log.events.len() {
        let req = signed(&lawyer, "GET", &path, None);
        forged.push_signed(
            &lawyer,
            CASE,
            Action::ObjectAccessed,
            vec![object.clone()],
            req,
            serde_json::json!({}),
        );
    }
    // And a later entry by nobody the registry knows.
    forged.act(
        &submitter,
        CASE,
        Action::Withdrawn,
        "POST",
        "/v1/cases/x/withdraw",
        Some(b"{}"),
    );
    let e = LogAuditor::new().push_all(&forged.events).unwrap_err();
    assert_eq!(e.index, bad_at as u64, "{e}");
    assert!(
        matches!(&e.problem, AuditProblem::ActorSignature { actor, source: crate::httpsig::SignatureError::Invalid }
            if *actor == lawyer.key_id()),
        "{e}"
    );
    // Single verification refuses it too: the batch accepts no more.
    assert!(req_of(&forged.events[bad_at])
        .verify(&lawyer.card().verifying_key)
        .is_err());
}

fn req_of(bytes: &[u8]) -> SignedRequest {
    serde_json::from_slice::<Event>(bytes).unwrap().request.unwrap()
}
