//! Who may do what on which case: pure functions over the actor and the facts
//! the API looked up. This is the second layer; the first is that content is
//! encrypted to the case key, which the server never holds.

use custos_core::identity::{KeyId, Principal, Role};

/// The authenticated sender of a request.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A registered principal.
    Principal(Box<Principal>),
    /// A submitter, known only by a codename key registered for one case.
    Submitter {
        /// The submitter's key id.
        key_id: KeyId,
        /// The case the key belongs to.
        case_id: String,
    },
}

impl Actor {
    /// The actor's key id.
    pub fn key_id(&self) -> &KeyId {
        match self {
            Actor::Principal(p) => &p.key_id,
            Actor::Submitter { key_id, .. } => key_id,
        }
    }

    fn role(&self) -> Option<Role> {
        match self {
            Actor::Principal(p) => Some(p.role),
            Actor::Submitter { .. } => None,
        }
    }

    fn submitter_of(&self, case: &str) -> bool {
        matches!(self, Actor::Submitter { case_id, .. } if case_id == case)
    }
}

/// Facts about the actor's relation to one case.
#[derive(Debug, Clone, Copy)]
pub struct CaseAccess {
    /// The actor holds an envelope (can decrypt).
    pub holds_envelope: bool,
}

/// Which cases a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListScope {
    /// Only cases the actor holds an envelope for.
    Holding,
    /// Every case (metadata only).
    All,
}

/// May the actor see a case's metadata (status, object ids, sizes, labels
/// as ciphertext, its own envelope)? An envelope counts only in a lawyer's
/// hands: whatever key holds one, the role decides.
pub fn may_view_case(actor: &Actor, case: &str, access: CaseAccess) -> bool {
    actor.submitter_of(case)
        || (actor.role() == Some(Role::Lawyer) && access.holds_envelope)
        || actor.role() == Some(Role::Auditor)
}

/// May the actor add an object to the case?
pub fn may_upload(actor: &Actor, case: &str, access: CaseAccess) -> bool {
    actor.submitter_of(case) || (actor.role() == Some(Role::Lawyer) && access.holds_envelope)
}

/// May the actor download a ciphertext object of the case? Only those who can
/// decrypt it: holders and the case's submitter. Auditors and admins verify
/// hashes through the log and never need content.
pub fn may_download(actor: &Actor, case: &str, access: CaseAccess) -> bool {
    actor.submitter_of(case) || (actor.role() == Some(Role::Lawyer) && access.holds_envelope)
}

/// Who may export a case as a bundle (ciphertext, events, proofs): auditors,
/// who cannot decrypt it, and lawyers who hold the case key.
pub fn may_export(actor: &Actor, access: CaseAccess) -> bool {
    actor.role() == Some(Role::Auditor) || (actor.role() == Some(Role::Lawyer) && access.holds_envelope)
}

/// May the actor grant the case to a principal of role `grantee`?
pub fn may_grant(actor: &Actor, access: CaseAccess, grantee: Role) -> bool {
    actor.role() == Some(Role::Lawyer) && access.holds_envelope && grantee == Role::Lawyer
}

/// May the actor change the case's workflow or add a note? Only its
/// lawyers: the entry is sealed to their key, and a codename holder (who
/// may be a coercer) must neither write nor see it.
pub fn may_change_workflow(actor: &Actor, access: CaseAccess) -> bool {
    actor.role() == Some(Role::Lawyer) && access.holds_envelope
}

/// May the actor disclose objects of the case to an outside body? Only
/// its lawyers: they hold the case key the disclosed files are decrypted
/// with, and the decision to hand evidence on is theirs, never a codename
/// holder's (who may be a coercer) nor an auditor's.
pub fn may_disclose(actor: &Actor, access: CaseAccess) -> bool {
    actor.role() == Some(Role::Lawyer) && access.holds_envelope
}

/// May the actor revoke someone's envelope for the case?
pub fn may_revoke(actor: &Actor, access: CaseAccess) -> bool {
    match actor.role() {
        Some(Role::Lawyer) => access.holds_envelope,
        Some(Role::Admin) => true,
        _ => false,
    }
}

/// May the actor change the registry?
pub fn may_manage_registry(actor: &Actor) -> bool {
    actor.role() == Some(Role::Admin)
}

/// May the actor set a principal's contact address (where its digest is
/// mailed)? Only an admin, as for every registry change: an address set by
/// anyone else could send a lawyer's digest to a stranger.
pub fn may_set_contact(actor: &Actor) -> bool {
    actor.role() == Some(Role::Admin)
}

/// May the actor take a backup of the whole vault? Only an admin: a backup
/// is ciphertext, but of every case.
pub fn may_take_backup(actor: &Actor) -> bool {
    actor.role() == Some(Role::Admin)
}

/// May the actor read the registry (who the principals are)?
pub fn may_read_registry(actor: &Actor) -> bool {
    actor.role().is_some()
}

/// May the actor read the custody log's entries and proofs by index? They
/// name every case, when it moved and who touched it: auditors only.
pub fn may_read_log_entries(actor: &Actor) -> bool {
    actor.role() == Some(Role::Auditor)
}

/// Which cases the actor's listing shows, if any.
pub fn list_scope(actor: &Actor) -> Option<ListScope> {
    match actor.role() {
        Some(Role::Lawyer) => Some(ListScope::Holding),
        Some(Role::Auditor) => Some(ListScope::All),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_core::identity::Identity;

    fn principal(role: Role) -> Actor {
        let card = Identity::generate("p").unwrap().card();
        Actor::Principal(Box::new(Principal {
            key_id: card.key_id(),
            name: "p".into(),
            role,
            intake: false,
            card,
        }))
    }

    fn submitter(case: &str) -> Actor {
        Actor::Submitter {
            key_id: "0123456789abcdef".parse().unwrap(),
            case_id: case.into(),
        }
    }

    const HOLDS: CaseAccess = CaseAccess { holds_envelope: true };
    const NONE: CaseAccess = CaseAccess { holds_envelope: false };

    #[test]
    fn exports_go_to_auditors_and_holding_lawyers_only() {
        assert!(may_export(&principal(Role::Auditor), NONE));
        assert!(may_export(&principal(Role::Lawyer), HOLDS));
        assert!(!may_export(&principal(Role::Lawyer), NONE));
        assert!(!may_export(&principal(Role::Admin), HOLDS));
        assert!(!may_export(&submitter("c"), HOLDS));
    }

    #[test]
    fn content_reaches_only_holders_and_the_submitter() {
        assert!(may_download(&principal(Role::Lawyer), "c", HOLDS));
        assert!(!may_download(&principal(Role::Lawyer), "c", NONE));
        assert!(!may_download(&principal(Role::Auditor), "c", HOLDS));
        assert!(!may_download(&principal(Role::Admin), "c", HOLDS));
        assert!(may_download(&submitter("c"), "c", NONE));
        assert!(!may_download(&submitter("other"), "c", NONE));
    }

    #[test]
    fn registry_changes_need_an_admin() {
        assert!(may_manage_registry(&principal(Role::Admin)));
        for a in [principal(Role::Lawyer), principal(Role::Auditor), submitter("c")] {
            assert!(!may_manage_registry(&a));
        }
        assert!(!may_read_registry(&submitter("c")));
        assert!(may_read_registry(&principal(Role::Lawyer)));
        assert!(may_read_log_entries(&principal(Role::Auditor)));
        for a in [principal(Role::Lawyer), principal(Role::Admin), submitter("c")] {
            assert!(!may_read_log_entries(&a));
        }
    }

    #[test]
    fn grants_go_from_holding_lawyers_to_lawyers() {
        assert!(may_grant(&principal(Role::Lawyer), HOLDS, Role::Lawyer));
        assert!(!may_grant(&principal(Role::Lawyer), HOLDS, Role::Auditor));
        assert!(!may_grant(&principal(Role::Lawyer), NONE, Role::Lawyer));
        assert!(!may_grant(&principal(Role::Admin), HOLDS, Role::Lawyer));
        assert!(may_revoke(&principal(Role::Admin), NONE));
        assert!(!may_revoke(&principal(Role::Auditor), NONE));
        assert!(!may_revoke(&submitter("c"), NONE));
    }

    #[test]
    fn workflow_is_written_by_holding_lawyers_only() {
        assert!(may_change_workflow(&principal(Role::Lawyer), HOLDS));
        assert!(!may_change_workflow(&principal(Role::Lawyer), NONE));
        for a in [principal(Role::Auditor), principal(Role::Admin), submitter("c")] {
            assert!(!may_change_workflow(&a, HOLDS));
        }
    }

    #[test]
    fn disclosures_are_made_by_holding_lawyers_only() {
        assert!(may_disclose(&principal(Role::Lawyer), HOLDS));
        assert!(!may_disclose(&principal(Role::Lawyer), NONE));
        for a in [principal(Role::Auditor), principal(Role::Admin), submitter("c")] {
            assert!(!may_disclose(&a, HOLDS));
        }
    }

    #[test]
    fn contact_addresses_are_set_by_admins_only() {
        assert!(may_set_contact(&principal(Role::Admin)));
        for a in [principal(Role::Lawyer), principal(Role::Auditor), submitter("c")] {
            assert!(!may_set_contact(&a));
        }
    }

    #[test]
    fn views_and_listings() {
        assert!(may_view_case(&principal(Role::Auditor), "c", NONE));
        assert!(!may_view_case(&principal(Role::Admin), "c", NONE));
        assert!(!may_view_case(&principal(Role::Lawyer), "c", NONE));
        // An envelope in an admin's hands (a key that was a lawyer's, say)
        // opens nothing.
        assert!(!may_view_case(&principal(Role::Admin), "c", HOLDS));
        assert!(may_upload(&submitter("c"), "c", NONE));
        assert!(!may_upload(&principal(Role::Auditor), "c", HOLDS));
        assert_eq!(list_scope(&principal(Role::Lawyer)), Some(ListScope::Holding));
        assert_eq!(list_scope(&principal(Role::Admin)), None);
    }
}
