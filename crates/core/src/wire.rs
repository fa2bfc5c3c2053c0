//! Request and response bodies of the HTTP API, shared by the server and the
//! client so the two cannot drift apart. A signed request body must be
//! exactly the compact serialisation of its type (fields in this order,
//! absent options left out): the server refuses any other form, because
//! the custody log keeps these bodies for ever.

use serde::{Deserialize, Serialize};

use crate::custody::Receipt;
use crate::identity::{Card, KeyId, Principal, Role};

/// Public parameters a submitting client needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntakeParams {
    /// Log origin; also salts codename derivation.
    pub origin: String,
    /// The log's verifier key.
    pub vkey: String,
    /// Admin cards the vault was created with.
    pub anchors: Vec<Card>,
    /// Principals every new case is wrapped to, each with the admin-signed
    /// event that registered it, so the client can check it.
    pub intake: Vec<IntakePrincipal>,
    /// Proof-of-work difficulty for case creation, in leading zero bits.
    pub stamp_bits: u8,
    /// The checkpoint the registrations below are proven against.
    #[serde(default)]
    pub checkpoint: String,
    /// The log's last registry change: its details name the intake lawyers
    /// after it (`registry_intake`), a state the log commits to and
    /// auditors check. The `intake` list must be exactly those.
    #[serde(default)]
    pub registry: Option<ExportEntry>,
    /// The witnesses (vkeys) that cosign this vault's checkpoints: clients
    /// hold their receipts to them.
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// Largest object the vault accepts, in bytes of age ciphertext (the
    /// tus `Upload-Length`), so that a client can refuse a larger file
    /// before it encrypts or sends anything. `None` from a vault that does
    /// not say (older versions): the upload's `413` is then the first word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_upload_bytes: Option<u64>,
    /// Most ciphertext one case may hold, stored and being uploaded, so
    /// that a client can refuse a set of files whose total will not fit
    /// before it opens a case that would then hold only some of them.
    /// `None` from a vault that does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_case_bytes: Option<u64>,
}

/// One intake principal and the proof of its registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntakePrincipal {
    /// The principal.
    pub principal: Principal,
    /// Log index of its `principal_added` event.
    pub index: u64,
    /// That event's stored bytes, base64.
    pub event: String,
    /// Its inclusion proof against [`IntakeParams::checkpoint`], base64.
    #[serde(default)]
    pub proof: Vec<String>,
}

/// A submitter key at case creation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NewSubmitterKey {
    /// Ed25519 verifying key, base64.
    pub verifying_key: String,
    /// age recipient.
    pub recipient: String,
}

/// One envelope: the case key wrapped to a key id's recipient.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeBody {
    /// Whose envelope.
    pub key_id: KeyId,
    /// age ciphertext, base64.
    pub envelope: String,
}

/// `POST /v1/cases`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCase {
    /// The submitter's keys, an unordered set of one or two.
    pub submitter_keys: Vec<NewSubmitterKey>,
    /// age recipient of the case key.
    pub case_recipient: String,
    /// Envelopes for every intake principal and every submitter key.
    pub envelopes: Vec<EnvelopeBody>,
    /// Note saying which submitter key, if any, is the duress key: age
    /// ciphertext, base64, encrypted to a note key that only lawyers get
    /// (never the submitter keys, so a coercer holding the duress codename
    /// cannot read it). Opaque to the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The note key wrapped to each intake principal (exactly those).
    #[serde(default)]
    pub note_envelopes: Vec<EnvelopeBody>,
}

/// Response to case creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseCreated {
    /// New case id.
    pub case_id: String,
    /// Receipt of the `case_created` event.
    pub receipt: Receipt,
}

/// One line of a case listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseSummary {
    /// Case id.
    pub case_id: String,
    /// Status.
    pub status: String,
    /// Creation time.
    pub created: String,
    /// Number of objects.
    pub objects: usize,
}

/// `GET /v1/cases/{case}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseDetail {
    /// Case id.
    pub case_id: String,
    /// Status.
    pub status: String,
    /// Creation time.
    pub created: String,
    /// age recipient of the case key.
    pub case_recipient: String,
    /// Objects with their encrypted labels.
    pub objects: Vec<CaseObject>,
    /// The requester's own envelope, base64, if it holds one.
    pub envelope: Option<String>,
    /// Key ids holding an envelope.
    pub holders: Vec<KeyId>,
    /// The submitter keys' age recipients, in key id order (an unordered
    /// set), so that replies reach the submitter whichever codename is used.
    #[serde(default)]
    pub submitter_recipients: Vec<String>,
    /// The encrypted duress note, base64.
    #[serde(default)]
    pub note: Option<String>,
    /// The requester's envelope of the note key, if it holds one (lawyers).
    #[serde(default)]
    pub note_envelope: Option<String>,
    /// The withdrawal, once the submitter withdrew.
    #[serde(default)]
    pub withdrawal: Option<WithdrawalView>,
}

/// A withdrawal as a case's reader is shown it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WithdrawalView {
    /// Time, RFC 3339.
    pub time: String,
    /// The submitter key that signed it; shown to the case's lawyers, never
    /// to its submitters: a coercer holding one codename must not learn
    /// whether the other one withdrew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<KeyId>,
    /// Reason encrypted to the case key, base64.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/cases/{case}/withdraw`, signed by a submitter key.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    /// The submitter's reason, encrypted to the case key, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /v1/cases/{case}/workflow`, signed by a lawyer holding the case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowBody {
    /// One change of the case's workflow (status, tags, assignee, a note),
    /// age-encrypted to the lawyers' key of the case (the duress note's
    /// key, which codename holders never get), base64. Padded before
    /// encryption, so its size says little of what it holds.
    pub entry: String,
}

/// `POST /v1/cases/{case}/disclosures`, signed by a lawyer holding the
/// case: which of its objects go to which outside body. The vault logs it
/// as a `case_disclosed` event that lists the same objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscloseBody {
    /// The recipient's age X25519 recipient (`age1...`), to which the
    /// disclosed files and their keys are encrypted, spelt as age writes
    /// it (lower case): the one spelling [`Self::malformed`] accepts.
    pub recipient: String,
    /// The key id of the recipient's custos card, when the lawyer named
    /// the recipient by a card: the lawyer's claim. The client takes it
    /// from the same card as `recipient`, but no one else can check that
    /// the card with this key id carries this recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_key_id: Option<KeyId>,
    /// The object ids disclosed, in ascending order, each once.
    pub objects: Vec<String>,
    /// Whether the files went out in the clear (for a court filing) rather
    /// than encrypted to the recipient.
    pub plaintext: bool,
    /// The files that went out as copies cleaned of identifying metadata
    /// (`custos disclose --clean`), in ascending order of object id, each
    /// one of `objects`: what the recipient got for those is not the
    /// logged object's plaintext, so the log binds the copy's own hash.
    /// Absent when empty, so that a disclosure without it is spelt, signed
    /// and audited exactly as before the field existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleaned: Vec<CleanedCopy>,
}

/// One file of a disclosure that went out as a cleaned copy: which logged
/// object it was made from, and the SHA-256 of the copy's plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanedCopy {
    /// The logged object the copy was made from (one of the disclosure's
    /// objects).
    pub object: String,
    /// Hex SHA-256 of the cleaned copy's plaintext, as the recipient reads
    /// it.
    pub sha256: String,
}

impl DiscloseBody {
    /// Why the body is not a well-formed disclosure, if it is not: the
    /// recipient must be an age X25519 recipient, and the objects 1 to
    /// `MAX_DISCLOSED_OBJECTS` object ids in ascending order (one spelling
    /// of one set). The server and the auditor hold it to the same rules.
    pub fn malformed(&self) -> Option<&'static str> {
        match crate::identity::parse_recipient(&self.recipient) {
            Err(_) => return Some("the recipient is not an age1... X25519 recipient"),
            // One spelling (bech32 also reads upper case), so that the log
            // names the recipient as their card and `age-keygen` do.
            Ok(r) if r.to_string() != self.recipient => {
                return Some("the recipient is not spelt canonically (lower case, as age writes it)")
            }
            Ok(_) => {}
        }
        if self.objects.is_empty() || self.objects.len() > crate::protocol::MAX_DISCLOSED_OBJECTS {
            return Some("a disclosure names 1 to 1000 objects");
        }
        if !self.objects.iter().all(|o| crate::protocol::is_lower_hex(o, 64)) {
            return Some("an object id is not 64 lower-case hex digits");
        }
        if !self.objects.windows(2).all(|w| w[0] < w[1]) {
            return Some("the objects are not in ascending order, each once");
        }
        if !self
            .cleaned
            .iter()
            .all(|c| crate::protocol::is_lower_hex(&c.object, 64) && crate::protocol::is_lower_hex(&c.sha256, 64))
        {
            return Some("a cleaned copy's object id or SHA-256 is not 64 lower-case hex digits");
        }
        if !self.cleaned.windows(2).all(|w| w[0].object < w[1].object) {
            return Some("the cleaned copies are not in ascending order of object, each once");
        }
        // Both lists ascend, so a binary search is exact.
        if !self
            .cleaned
            .iter()
            .all(|c| self.objects.binary_search(&c.object).is_ok())
        {
            return Some("a cleaned copy names an object the disclosure does not");
        }
        None
    }
}

/// `PUT /v1/principals/{key}/contact`, signed by an admin: where the
/// vault mails the lawyer's digest. Its `Debug` says only whether an
/// address is set: an address must not reach a log line by accident.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    /// The lawyer's mail address, in the plain form
    /// [`crate::identity::contact::EmailAddress`] accepts; absent to clear
    /// it (no more digests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl std::fmt::Debug for ContactBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let email = if self.email.is_some() { "set" } else { "cleared" };
        f.debug_struct("ContactBody").field("email", &email).finish()
    }
}

/// `POST .../uploads/{id}/commit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitUpload {
    /// Expected hex SHA-256 of the whole ciphertext.
    pub sha256: String,
    /// Encrypted label, base64.
    pub label: String,
}

/// Response to a commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectCommitted {
    /// The object id.
    pub object_id: String,
    /// Receipt of the `object_stored` event.
    pub receipt: Receipt,
}

/// `POST /v1/cases/{case}/grants`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// Grantee.
    pub key_id: KeyId,
    /// Case key wrapped to the grantee, base64.
    pub envelope: String,
    /// The duress note's key wrapped to the grantee, base64, when the
    /// granting lawyer holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_envelope: Option<String>,
}

/// `POST /v1/principals`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalBody {
    /// The new principal's card.
    pub card: Card,
    /// Role.
    pub role: Role,
    /// Whether new cases are wrapped to it (lawyers only).
    #[serde(default)]
    pub intake: bool,
}

/// A write's receipt alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// The receipt.
    pub receipt: Receipt,
}

/// `GET /v1/log/entries`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entries {
    /// Index of the first entry.
    pub start: u64,
    /// Stored bytes, base64.
    pub entries: Vec<String>,
}

/// An inclusion or consistency proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofBody {
    /// Hashes, base64.
    pub proof: Vec<String>,
}

/// One event of an export, with its inclusion proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportEntry {
    /// Log index.
    pub index: u64,
    /// Stored event bytes, base64.
    pub event: String,
    /// Inclusion proof against the export's checkpoint, base64 hashes.
    pub proof: Vec<String>,
}

/// Answer to an export: the vault's and the case's chains, proven against
/// one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportBody {
    /// The case.
    pub case_id: String,
    /// The checkpoint, with any witness cosignatures.
    pub checkpoint: String,
    /// Events in log order.
    pub entries: Vec<ExportEntry>,
}

/// `GET /v1/cases/{case}/log`: the case's events a holder may see, each with
/// its inclusion proof against one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseLog {
    /// The case.
    pub case_id: String,
    /// The checkpoint, with any witness cosignatures.
    pub checkpoint: String,
    /// Events in log order.
    pub entries: Vec<ExportEntry>,
}

/// An object's membership of a case, with its encrypted label.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaseObject {
    /// Object id (hex SHA-256 of the ciphertext).
    pub object_id: String,
    /// Ciphertext size.
    pub size: u64,
    /// Encrypted label, base64.
    pub label: String,
    /// Log index of the `object_stored` event.
    pub index: u64,
    /// Who uploaded it. Left out of what submitters are shown: a coercer
    /// holding the duress codename must not see that another codename of
    /// the case is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<KeyId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_body_never_prints_its_address() {
        let set = ContactBody {
            email: Some("lawyer@example.org".into()),
        };
        let shown = format!("{set:?}");
        assert!(!shown.contains("lawyer") && !shown.contains("example.org"), "{shown}");
        assert!(shown.contains("set"));
    }

    #[test]
    fn a_disclosure_names_its_recipient_in_one_spelling() {
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        let body = DiscloseBody {
            recipient: recipient.clone(),
            recipient_key_id: None,
            objects: vec!["0".repeat(64)],
            plaintext: false,
            cleaned: Vec::new(),
        };
        assert_eq!(body.malformed(), None);
        // Bech32 reads upper case too, but the log must hold the one
        // spelling a reader compares with a card.
        for other in [
            recipient.to_uppercase(),
            format!(" {recipient}"),
            format!("{recipient}\n"),
        ] {
            let body = DiscloseBody {
                recipient: other.clone(),
                ..body.clone()
            };
            assert!(body.malformed().is_some(), "{other:?}");
        }
    }

    /// The cleaned copies a disclosure lists are held to the objects'
    /// rules: hex ids and hashes, ascending, each once, each disclosed;
    /// and a body without any is spelt exactly as before the field.
    #[test]
    fn cleaned_copies_are_listed_once_in_order_and_only_of_disclosed_objects() {
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        let (a, b, c) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        let copy = |object: &str, sha256: &str| CleanedCopy {
            object: object.to_owned(),
            sha256: sha256.to_owned(),
        };
        let body = DiscloseBody {
            recipient,
            recipient_key_id: None,
            objects: vec![a.clone(), b.clone()],
            plaintext: true,
            cleaned: Vec::new(),
        };
        let json = serde_json::to_string(&body).unwrap();
        assert!(!json.contains("cleaned"), "{json}");
        let with = |cleaned: Vec<CleanedCopy>| DiscloseBody {
            cleaned,
            ..body.clone()
        };
        assert_eq!(with(vec![copy(&a, &c), copy(&b, &c)]).malformed(), None);
        for bad in [
            vec![copy(&b, &c), copy(&a, &c)],
            vec![copy(&a, &c), copy(&a, &c)],
            vec![copy(&c, &a)],
            vec![copy(&a, &c.to_uppercase())],
            vec![copy(&a, &c[..63])],
            vec![copy(&a.to_uppercase(), &c)],
        ] {
            assert!(with(bad.clone()).malformed().is_some(), "{bad:?}");
        }
        let parsed: DiscloseBody =
            serde_json::from_str(&serde_json::to_string(&with(vec![copy(&a, &c)])).unwrap()).unwrap();
        assert_eq!(parsed.cleaned, vec![copy(&a, &c)]);
    }
}
