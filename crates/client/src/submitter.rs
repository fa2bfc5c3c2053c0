//! A submitter coming back with only a codename: see the case, add evidence,
//! read the lawyers' replies, withdraw. Every request is signed with the key
//! the codename derives; a duress codename works exactly the same way.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;

use super::flows::{check_receipt, trusted_vault, upload_files_cleaned, SubmitFile};
use super::proven::{prove_case, Reader};
use super::resume::{fingerprint, FilesDone, Journal};
use super::trust::TrustStore;
use super::{Client, ClientError};
use custos_core::custody::{Action, Receipt};
use custos_core::envelope::{decrypt_bytes, encrypt_bytes, CaseKey, Label, ObjectKind};
use custos_core::identity::codename::{Codename, KdfVersion, SubmitterKeys};
use custos_core::wire::{CaseDetail, WithdrawBody};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Replies are short messages; one larger than this is not printed.
const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// A codename session on one case.
pub struct Session {
    client: Client,
    keys: SubmitterKeys,
    case_id: String,
    case_key: CaseKey,
    detail: CaseDetail,
    log: custos_core::custody::checkpoint::LogVerifier,
    /// The admin cards this client trusts, which replies' signers must
    /// trace their registrations to.
    anchors: Vec<custos_core::identity::Card>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({})", self.case_id)
    }
}

/// The one answer to a wrong codename and to an unknown case alike, so that
/// neither can be told from the other.
fn no_such_case(case_id: &str) -> ClientError {
    ClientError::Usage(format!(
        "no case {case_id} opens with this codename (check the case id and every word of the codename)"
    ))
}

/// Open a session: derive the keys from the codename (salted with the
/// vault's origin) and open the case with them. Each KDF version is tried
/// until the vault knows the key, oldest first: a request signed with the
/// wrong version's key shows the host that public key, a check of guesses
/// of the codename, and v1's (scrypt) is the costlier check to hand over.
/// A v2 codename pays one native scrypt more (a tenth of a second), a
/// wrong codename all of them.
pub async fn open(client: &Client, trust: &TrustStore, codename: Codename, case_id: &str) -> Result<Session> {
    let (params, trusted) = trusted_vault(client, trust, &[]).await?;
    let codename = std::sync::Arc::new(codename);
    let mut found = None;
    for version in KdfVersion::ALL.into_iter().rev() {
        let (codename, origin) = (codename.clone(), params.origin.clone());
        let keys = tokio::task::spawn_blocking(move || codename.derive_version(version, &origin))
            .await
            .map_err(|e| ClientError::Verify(format!("key derivation failed: {e}")))?;
        match client.case(keys.signing_key(), case_id).await {
            Ok(d) => {
                found = Some((keys, d));
                break;
            }
            Err(e) if matches!(e.code(), Some("unknown_key" | "not_found")) => continue,
            Err(e) => return Err(e),
        }
    }
    let Some((keys, detail)) = found else {
        return Err(no_such_case(case_id));
    };
    if detail.envelope.is_none() {
        return Err(no_such_case(case_id));
    }
    // The case key, and so everything this session encrypts, comes from
    // the envelope and recipient of the case's signed creation, never from
    // the host's record: a host that put in a key of its own would read
    // every later file.
    let proven = prove_case(
        client,
        keys.signing_key(),
        &trusted.log,
        &trusted.admins,
        case_id,
        Reader::Submitter,
    )
    .await?;
    proven.check_record(&detail, &keys.key_id(), Reader::Submitter)?;
    let envelope = proven
        .envelopes
        .get(&keys.key_id())
        .and_then(|e| B64.decode(e).ok())
        .ok_or_else(|| ClientError::Verify(format!("the signed log of case {case_id} holds no envelope for you")))?;
    let case_key = CaseKey::open(&envelope, keys.age_identity())?;
    if case_key.recipient().to_string() != proven.creation.case_recipient {
        return Err(ClientError::Verify("the envelope does not hold this case's key".into()));
    }
    Ok(Session {
        client: client.clone(),
        keys,
        case_id: case_id.to_owned(),
        case_key,
        detail,
        log: trusted.log,
        anchors: trusted.admins,
    })
}

/// What the submitter sees of the case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseStatus {
    /// Case id.
    pub case_id: String,
    /// `open` or `withdrawn` (a submitter never sees whether a withdrawal
    /// was under duress: whoever holds the duress codename must not learn it).
    pub status: String,
    /// Creation time.
    pub created: String,
    /// The case's objects, names decrypted.
    pub objects: Vec<StatusObject>,
}

/// One object in the submitter's view.
#[derive(Debug, Clone, Serialize)]
pub struct StatusObject {
    /// Object id.
    pub object_id: String,
    /// What it is.
    pub kind: ObjectKind,
    /// File name.
    pub name: String,
    /// Ciphertext size.
    pub size: u64,
    /// Log index of its `object_stored` event (the order things arrived in).
    pub index: u64,
}

/// A lawyer's reply.
#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    /// Object id.
    pub object_id: String,
    /// Log index of its `object_stored` event.
    pub index: u64,
    /// Who wrote it: the registered name and key id of the lawyer whose
    /// signed request stored it, proven by the log to hold the case then.
    pub from: String,
    /// The message.
    pub text: String,
}

/// The replies to a case: those the log proves came from a lawyer holding
/// it, and the ids of any other message labelled a reply, which are not
/// shown (anyone who can encrypt to the case, a coercer holding the duress
/// codename or the host, could have planted them).
#[derive(Debug, Clone, Serialize)]
pub struct Replies {
    /// Proven replies, oldest first.
    pub replies: Vec<Reply>,
    /// Messages labelled replies that no lawyer holding the case signed.
    pub unproven: Vec<String>,
}

impl Session {
    /// The case id.
    pub fn case_id(&self) -> &str {
        &self.case_id
    }

    fn labelled(&self) -> Result<Vec<(Label, &custos_core::wire::CaseObject)>> {
        self.detail
            .objects
            .iter()
            .map(|o| {
                let sealed = B64
                    .decode(&o.label)
                    .map_err(|_| ClientError::Verify("label is not base64".into()))?;
                Ok((Label::open(&sealed, &self.case_key)?, o))
            })
            .collect()
    }

    /// The case's status and objects.
    pub fn status(&self) -> Result<CaseStatus> {
        Ok(CaseStatus {
            case_id: self.case_id.clone(),
            status: self.detail.status.clone(),
            created: self.detail.created.clone(),
            objects: self
                .labelled()?
                .into_iter()
                .map(|(label, o)| StatusObject {
                    object_id: o.object_id.clone(),
                    kind: label.kind,
                    name: label.safe_file_name(),
                    size: o.size,
                    index: o.index,
                })
                .collect(),
        })
    }

    /// Add files to the case, each encrypted to the case key and logged as
    /// stored by this codename's key. Returns the receipts. Interrupted, the
    /// same call resumes from its journal under `journal_root` (see
    /// [`super::resume`]); this journal holds the file key of the file being
    /// sent (what makes its ciphertext again), readable by its owner only.
    pub async fn add(&self, files: &[SubmitFile], journal_root: &std::path::Path) -> Result<Vec<Receipt>> {
        self.add_cleaned(files, &[], journal_root).await
    }

    /// [`Self::add`] with the submitter's cleaning choice for each file
    /// (see [`super::flows::submit_cleaned`]).
    pub async fn add_cleaned(
        &self,
        files: &[SubmitFile],
        cleaned: &[Option<bool>],
        journal_root: &std::path::Path,
    ) -> Result<Vec<Receipt>> {
        let what = super::flows::cleaning_note(&format!("submitter add {}", self.case_id), cleaned);
        let journal = Journal::open(
            journal_root,
            &fingerprint(&what, self.client.base(), files)?,
            "submitter add",
        )?;
        let mut done: FilesDone = journal.load()?.unwrap_or_default();
        let mut save = |f: &FilesDone| journal.save(f);
        upload_files_cleaned(
            &self.client,
            self.keys.signing_key(),
            &self.case_id,
            &self.case_key,
            files,
            cleaned,
            &mut done,
            &mut save,
        )
        .await?;
        for r in &done.receipts {
            check_receipt(r, &self.log, Action::ObjectStored)?;
        }
        journal.finish()?;
        Ok(done.receipts)
    }

    /// Download and decrypt the lawyers' replies, oldest first: only those
    /// whose storing the case's log proves was signed by a lawyer holding
    /// the case (see [`Replies`]).
    pub async fn replies(&self) -> Result<Replies> {
        let proven = prove_case(
            &self.client,
            self.keys.signing_key(),
            &self.log,
            &self.anchors,
            &self.case_id,
            Reader::Submitter,
        )
        .await?;
        proven.check_record(&self.detail, &self.keys.key_id(), Reader::Submitter)?;
        let mut out = Vec::new();
        let mut unproven = Vec::new();
        for (label, o) in self.labelled()? {
            if label.kind != ObjectKind::Reply {
                continue;
            }
            let from = match proven.stored.get(&o.object_id) {
                Some(by) if by.held_the_case => {
                    format!("{} ({})", by.principal.as_deref().unwrap_or_default(), by.key_id)
                }
                _ => {
                    unproven.push(o.object_id.clone());
                    continue;
                }
            };
            if o.size > MAX_REPLY_BYTES as u64 {
                return Err(ClientError::Verify(format!(
                    "reply {} is too large to print",
                    o.object_id
                )));
            }
            let mut ciphertext = Vec::new();
            let (receipt, sha) = self
                .client
                .download(self.keys.signing_key(), &self.case_id, &o.object_id, &mut ciphertext)
                .await?;
            if sha != o.object_id {
                return Err(ClientError::Verify(format!(
                    "reply {} does not match its hash",
                    o.object_id
                )));
            }
            check_receipt(&receipt, &self.log, Action::ObjectAccessed)?;
            let plain = decrypt_bytes(&ciphertext, self.keys.age_identity())?;
            out.push(Reply {
                object_id: o.object_id.clone(),
                index: o.index,
                from,
                text: String::from_utf8_lossy(&plain).into_owned(),
            });
        }
        out.sort_by_key(|r| r.index);
        Ok(Replies { replies: out, unproven })
    }

    /// Withdraw the complaint. Evidence stays; the reason, if any, is
    /// encrypted to the case.
    pub async fn withdraw(&self, reason: Option<&str>) -> Result<Receipt> {
        let reason = reason
            .map(|r| encrypt_bytes(r.as_bytes(), &[&self.case_key.recipient()]).map(|c| B64.encode(c)))
            .transpose()?;
        let receipt = self
            .client
            .withdraw(self.keys.signing_key(), &self.case_id, &WithdrawBody { reason })
            .await?;
        check_receipt(&receipt, &self.log, Action::Withdrawn)?;
        Ok(receipt)
    }
}
