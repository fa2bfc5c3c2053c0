//! Submitting a case, and resuming a submission that was cut: codenames and
//! case key kept in a journal, the case opened once, each file uploaded
//! from the vault's offset. File transfer is `upload`'s; witnessing is `witnessed`'s.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::duress::duress_note;
use super::upload::upload_files_cleaned;
use super::witnessed::{witness_receipts, ReceiptFile, RECEIPT_COSIGN_WAIT};
use super::{check_receipt, trusted_vault, verify, Result, SubmitFile};
use crate::resume::{self, FilesDone, Journal};
use crate::trust::{TrustStore, Trusted};
use crate::{Client, ClientError};
use custos_core::custody::{Action, Receipt};
use custos_core::envelope::{encrypt_bytes, CaseKey, ObjectKind};
use custos_core::identity::codename::{Codename, KdfVersion, SubmitterKeys};
use custos_core::identity::Card;
use custos_core::wire::{CreateCase, EnvelopeBody, IntakeParams, NewSubmitterKey};

/// What a submitter takes away.
#[derive(Debug)]
pub struct Submitted {
    /// The case id.
    pub case_id: String,
    /// The codename, to be shown once.
    pub codename: Codename,
    /// The duress codename, when one was asked for.
    pub duress_codename: Option<Codename>,
    /// The receipt document.
    pub receipt: ReceiptFile,
}

fn kdf_v1() -> String {
    KdfVersion::V1.name().to_owned()
}

/// What an unfinished `submit` keeps in its journal: the secrets it cannot
/// make again (codenames, case key), the case once it exists, and the files'
/// progress. Zeroized when dropped.
#[derive(Serialize, Deserialize)]
struct SubmitState {
    codename: String,
    second: String,
    /// The KDF both codenames derive their keys with. A journal written
    /// before there was a choice has none: v1, what it was made with.
    #[serde(default = "kdf_v1")]
    kdf: String,
    duress: bool,
    case_key: String,
    /// Whether the second codename's key opened the case.
    opened_by_second: bool,
    case_id: Option<String>,
    created: Option<custos_core::custody::Receipt>,
    files: FilesDone,
}

impl Drop for SubmitState {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.codename.zeroize();
        self.second.zeroize();
        self.case_key.zeroize();
    }
}

/// Submit a case: generate a codename (and, with `duress`, a second one
/// that works exactly like it but marks any withdrawal as coerced) and a
/// case key, wrap the case key to the verified intake principals and to both
/// submitter keys, write the duress note for lawyers, pay the proof-of-work
/// stamp, encrypt and upload each file, and check every receipt.
///
/// Every case registers two submitter keys and a note: without `duress` the
/// second key comes from a codename nobody is shown, so the server cannot
/// even tell which cases have a duress codename.
///
/// Interrupted (a cut connection, a killed process), the same call resumes
/// from its journal in the trust store's folder: the same case, each upload
/// from the vault's offset (see [`crate::resume`]).
pub async fn submit(
    client: &Client,
    trust: &TrustStore,
    explicit: &[Card],
    files: &[SubmitFile],
    duress: bool,
) -> Result<Submitted> {
    submit_cleaned(client, trust, explicit, files, &[], duress).await
}

/// [`submit`], with the submitter's choice for each file (parallel to
/// `files`, or empty): `Some(true)` sends a cleaned copy of it, without
/// identifying metadata (see `custos_meta`), `Some(false)` the file as is
/// after its findings were shown, `None` as is without asking. The label
/// of each file says which.
pub async fn submit_cleaned(
    client: &Client,
    trust: &TrustStore,
    explicit: &[Card],
    files: &[SubmitFile],
    cleaned: &[Option<bool>],
    duress: bool,
) -> Result<Submitted> {
    submit_as(client, trust, explicit, files, cleaned, duress, Run::ResumeOrStart).await
}

/// Whether a submission takes up the journal of an earlier run of the same
/// command (see [`crate::resume`]) or is a separate one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Resume the interrupted run of these files if there is one, else start
    /// one that a rerun resumes; stop at once if a live run holds it.
    ResumeOrStart,
    /// A new case of these files whatever other runs there are
    /// (`custos submit --new`): it meets no other run's journal and, cut
    /// off, is not resumed.
    Separate,
}

/// [`submit_cleaned`], choosing how it meets other runs of the same files.
pub async fn submit_as(
    client: &Client,
    trust: &TrustStore,
    explicit: &[Card],
    files: &[SubmitFile],
    cleaned: &[Option<bool>],
    duress: bool,
    run: Run,
) -> Result<Submitted> {
    if !files.iter().any(|f| f.kind == ObjectKind::Statement) {
        return Err(ClientError::Usage("a submission needs a statement".into()));
    }
    let (params, trusted) = trusted_vault(client, trust, explicit).await?;
    let what = if duress { "submit --duress" } else { "submit" };
    // Another choice of cleaning is another submission, not a resumed one.
    let what = cleaning_note(what, cleaned);
    let fingerprint = resume::fingerprint(&what, client.base(), files)?;
    let journal = match run {
        Run::ResumeOrStart => Journal::open(trust.dir(), &fingerprint, "submit")?,
        Run::Separate => Journal::open_new(trust.dir(), &fingerprint, "submit")?,
    };
    let mut state = journal_state(&journal, duress)?;
    let ((codename, keys), (second, second_keys)) = derive_keys(&state, &params.origin).await?;
    let case_key = CaseKey::import_secret(&state.case_key)?;
    let opener = if state.opened_by_second { &second_keys } else { &keys };

    let case_id = match &state.case_id {
        Some(id) => id.clone(),
        None => {
            let req = case_request(&trusted, &params, &case_key, [&keys, &second_keys], state.duress)?;
            let created = client
                .create_case(opener.signing_key(), &req, &params.origin, params.stamp_bits)
                .await?;
            check_receipt(&created.receipt, &trusted.log, Action::CaseCreated)?;
            state.case_id = Some(created.case_id.clone());
            state.created = Some(created.receipt);
            journal.save(&state)?;
            created.case_id
        }
    };

    let mut files_done = std::mem::take(&mut state.files);
    {
        let mut save = |f: &FilesDone| {
            state.files = f.clone();
            journal.save(&state)
        };
        upload_files_cleaned(
            client,
            opener.signing_key(),
            &case_id,
            &case_key,
            files,
            cleaned,
            &mut files_done,
            &mut save,
        )
        .await?;
    }
    for r in &files_done.receipts {
        check_receipt(r, &trusted.log, Action::ObjectStored)?;
    }
    let mut receipts: Vec<_> = state.created.iter().cloned().collect();
    receipts.extend(files_done.receipts);
    let duress = state.duress;
    drop(state);
    journal.finish()?;
    let receipt = receipt_file(client, &trusted, params, &case_id, receipts).await;
    Ok(Submitted {
        case_id,
        codename,
        duress_codename: duress.then_some(second),
        receipt,
    })
}

/// A command's name for its resume fingerprint, with its cleaning
/// choices when any was made (so journals of earlier versions still match).
pub(crate) fn cleaning_note(what: &str, cleaned: &[Option<bool>]) -> String {
    if cleaned.iter().all(Option::is_none) {
        what.to_owned()
    } else {
        format!("{what} cleaned {cleaned:?}")
    }
}

/// The journal's state of this submission, or a new one (codenames, case
/// key, which key opens the case), saved before the case exists so that a
/// crash from here on comes back to the same codenames.
fn journal_state(journal: &Journal, duress: bool) -> Result<SubmitState> {
    if let Some(state) = journal.load::<SubmitState>()? {
        return Ok(state);
    }
    let state = SubmitState {
        codename: Codename::generate().expose().to_owned(),
        second: Codename::generate().expose().to_owned(),
        kdf: KdfVersion::CURRENT.name().to_owned(),
        duress,
        case_key: CaseKey::generate().export_secret().to_string(),
        // Open the case with either key at random: if the real key
        // always opened it, anyone reading the log could tell a
        // later action by the other key (a duress withdrawal, say)
        // from the real submitter's.
        opened_by_second: rand::random::<bool>(),
        case_id: None,
        created: None,
        files: FilesDone::default(),
    };
    journal.save(&state)?;
    Ok(state)
}

/// Both codenames and the keys they derive for `origin`; the derivation
/// is slow on purpose, so it runs off the async threads.
async fn derive_keys(
    state: &SubmitState,
    origin: &str,
) -> Result<((Codename, SubmitterKeys), (Codename, SubmitterKeys))> {
    let codename = Codename::parse(&state.codename).map_err(|_| verify("the resume journal is damaged"))?;
    let second = Codename::parse(&state.second).map_err(|_| verify("the resume journal is damaged"))?;
    let version = KdfVersion::from_name(&state.kdf).ok_or_else(|| verify("the resume journal is damaged"))?;
    let origin = origin.to_owned();
    tokio::task::spawn_blocking(move || {
        let keys = codename.derive_version(version, &origin);
        let second_keys = second.derive_version(version, &origin);
        ((codename, keys), (second, second_keys))
    })
    .await
    .map_err(|e| verify(format!("key derivation failed: {e}")))
}

/// The request that opens the case: the case key wrapped to the verified
/// intake principals and to both submitter keys, and the duress note
/// (naming the second key when `duress`) with its key wrapped to the
/// principals only.
fn case_request(
    trusted: &Trusted,
    params: &IntakeParams,
    case_key: &CaseKey,
    submitters: [&SubmitterKeys; 2],
    duress: bool,
) -> Result<CreateCase> {
    let intake = trusted.verify_intake(params)?;
    let note_key = CaseKey::generate();
    let mut envelopes = Vec::new();
    let mut note_envelopes = Vec::new();
    for p in &intake {
        envelopes.push(EnvelopeBody {
            key_id: p.key_id.clone(),
            envelope: B64.encode(case_key.wrap(&p.card.age_recipient())?),
        });
        note_envelopes.push(EnvelopeBody {
            key_id: p.key_id.clone(),
            envelope: B64.encode(note_key.wrap(&p.card.age_recipient())?),
        });
    }
    let mut submitter_keys = Vec::new();
    for k in submitters {
        let recipient = k.age_identity().to_public();
        envelopes.push(EnvelopeBody {
            key_id: k.key_id(),
            envelope: B64.encode(case_key.wrap(&recipient)?),
        });
        submitter_keys.push(NewSubmitterKey {
            verifying_key: B64.encode(k.signing_key().verifying_key().as_bytes()),
            recipient: recipient.to_string(),
        });
    }
    // An unordered set: do not let the real key always come first.
    if rand::random::<bool>() {
        submitter_keys.swap(0, 1);
    }
    let note = duress_note(duress.then(|| submitters[1].key_id()).as_ref());
    Ok(CreateCase {
        submitter_keys,
        case_recipient: case_key.recipient().to_string(),
        envelopes,
        note: Some(B64.encode(encrypt_bytes(note.as_bytes(), &[&note_key.recipient()])?)),
        note_envelopes,
    })
}

/// The receipt document, witnessed when the vault has witnesses. With
/// witnesses, the receipts are only as good as the history they are in:
/// have the witnesses see it. Failing that the submission still stands,
/// and the receipt says it is the vault's word alone.
async fn receipt_file(
    client: &Client,
    trusted: &Trusted,
    params: IntakeParams,
    case_id: &str,
    receipts: Vec<Receipt>,
) -> ReceiptFile {
    let witnessed = match witness_receipts(client, trusted, &receipts, RECEIPT_COSIGN_WAIT).await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("the receipt is signed by the vault alone: {e}");
            None
        }
    };
    ReceiptFile {
        case_id: case_id.to_owned(),
        origin: params.origin,
        vkey: params.vkey,
        receipts,
        witnessed,
    }
}
