//! A vault on disk: one data directory holding the sled store, the log's
//! signing key and the vault's description (origin and trust anchors).
//! Creating a vault writes the admin trust anchors as the first events.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::store::{Batch, ChunkBackend, RegistryRecord, Store, StoreError, T};
use custos_core::custody::checkpoint::{LogSigner, LogVerifier};
use custos_core::custody::{Action, EventDraft, VAULT_ACTOR, VAULT_CASE};
use custos_core::identity::{self, Card, Principal, Role};

const DESCRIPTION: &str = "vault.json";
const LOG_KEY: &str = "log.key";
const DB: &str = "db";

/// Errors opening or creating a vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The directory already holds a vault.
    #[error("{0} already holds a vault")]
    Exists(String),
    /// The directory holds no vault.
    #[error("{0} holds no vault; create one with custos init")]
    Missing(String),
    /// Bad input to init.
    #[error("{0}")]
    Invalid(String),
    /// The store failed or is damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key file problems.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The public description of a vault, kept in `vault.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Description {
    /// Log origin, also the checkpoint key name.
    pub origin: String,
    /// The admin cards given to `custos init`.
    pub anchors: Vec<Card>,
    /// The log's verifier key.
    pub vkey: String,
}

/// An open vault.
pub struct Vault {
    /// The store.
    pub store: Store,
    /// The checkpoint signer.
    pub signer: LogSigner,
    /// The description.
    pub description: Description,
    /// Data directory.
    pub dir: PathBuf,
}

impl AsRef<Vault> for Vault {
    fn as_ref(&self) -> &Vault {
        self
    }
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({})", self.description.origin)
    }
}

/// Create a vault in `dir` with the given admin trust anchors; returns the
/// log's verifier key.
pub async fn init(dir: &Path, origin: &str, admins: &[Card]) -> Result<LogVerifier, VaultError> {
    if admins.is_empty() {
        return Err(VaultError::Invalid("a vault needs at least one admin card".into()));
    }
    if dir.join(DESCRIPTION).exists() {
        return Err(VaultError::Exists(dir.display().to_string()));
    }
    custos_durable::create_private_dir(dir)?;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let signer = LogSigner::new(origin, key.clone()).map_err(|e| VaultError::Invalid(e.to_string()))?;
    let key_path = dir.join(LOG_KEY);
    if key_path.exists() {
        // A half-finished earlier init: start over cleanly.
        std::fs::remove_file(&key_path)?;
        let _ = std::fs::remove_dir_all(dir.join(DB));
    }
    write_key_file(&key_path, &key)?;

    let store = {
        let db = db_path(dir);
        tokio::task::spawn_blocking(move || Store::open(&db))
            .await
            .map_err(|e| VaultError::Io(std::io::Error::other(e.to_string())))??
    };
    let mut batch = Batch::default();
    let mut drafts = Vec::new();
    for (index, card) in admins.iter().enumerate() {
        let p = Principal {
            key_id: card.key_id(),
            name: card.name.clone(),
            role: Role::Admin,
            intake: false,
            card: card.clone(),
        };
        batch.put_json(
            T::Registry,
            p.key_id.as_str(),
            &RegistryRecord {
                principal: p.clone(),
                index: index as u64,
                contact: None,
            },
        );
        drafts.push(EventDraft {
            case: VAULT_CASE.into(),
            actor: VAULT_ACTOR.into(),
            action: Action::PrincipalAdded,
            objects: vec![],
            details: serde_json::json!({ "key_id": p.key_id, "name": p.name, "role": p.role, "intake": false, "card": card }),
            request: None,
        });
    }
    {
        let guard = store.writer().await;
        store.append(&guard, batch, drafts, &signer)?;
    }
    store.flush().await?;
    let verifier = signer.verifier();
    let description = Description {
        origin: origin.to_owned(),
        anchors: admins.to_vec(),
        vkey: verifier.vkey(),
    };
    // The description says a vault is here, so it is written last, and
    // only once every name init made is durable: a power cut before it
    // leaves a half-finished init, which the next one starts over.
    sync_names(dir)?;
    custos_durable::write_atomically(
        &dir.join(DESCRIPTION),
        &serde_json::to_vec_pretty(&description).expect("serialisable"),
    )?;
    Ok(verifier)
}

/// [`open`] from async code: opening waits for sled's lock and checks the
/// whole log, which is blocking work for a blocking thread.
pub async fn open_async(dir: &Path) -> Result<Vault, VaultError> {
    open_async_on(dir, ChunkBackend::Local).await
}

/// [`open_on`] from async code.
pub async fn open_async_on(dir: &Path, chunks: ChunkBackend) -> Result<Vault, VaultError> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || open_on(&dir, chunks))
        .await
        .map_err(|e| VaultError::Io(std::io::Error::other(e.to_string())))?
}

/// Open the vault in `dir`, refusing to serve a log that does not match its
/// own signed checkpoint, its chunks on this disk. Blocking: from async
/// code, use [`open_async`].
pub fn open(dir: &Path) -> Result<Vault, VaultError> {
    open_on(dir, ChunkBackend::Local)
}

/// [`open`], with the chunks larger than the small size in `chunks`.
pub fn open_on(dir: &Path, chunks: ChunkBackend) -> Result<Vault, VaultError> {
    let desc_path = dir.join(DESCRIPTION);
    if !desc_path.exists() {
        return Err(VaultError::Missing(dir.display().to_string()));
    }
    let description: Description = serde_json::from_slice(&std::fs::read(&desc_path)?)
        .map_err(|e| VaultError::Invalid(format!("{}: {e}", desc_path.display())))?;
    let key = read_key_file(&dir.join(LOG_KEY))?;
    let signer = LogSigner::new(&description.origin, key).map_err(|e| VaultError::Invalid(e.to_string()))?;
    if signer.verifier().vkey() != description.vkey {
        return Err(VaultError::Invalid(
            "log.key does not match the vkey in vault.json".into(),
        ));
    }
    let store = Store::open_on(&db_path(dir), chunks).map_err(|e| unwritable(dir, e))?;
    // A bucket must hold this vault's chunks and no other's before anything
    // is served or collected.
    store.claim_chunk_store(&description.vkey)?;
    store.check_log(&signer).map_err(damaged)?;
    store.build_missing_indexes().map_err(damaged)?;
    Ok(Vault {
        store,
        signer,
        description,
        dir: dir.to_owned(),
    })
}

/// sled's own checksum failures, said as what they mean for the operator.
fn damaged(e: StoreError) -> StoreError {
    if e.is_damage() {
        return StoreError::Integrity(
            "sled found damaged data in its files (a checksum failed). Do not serve or change \
             this store; keep a copy of it and restore the vault from a backup (see SECURITY.md, \
             \"If the vault will not start\")"
                .into(),
        );
    }
    e
}

/// A store that cannot be opened because its folder is read-only, said
/// plainly; anything else as [`damaged`] says it.
fn unwritable(dir: &Path, e: StoreError) -> VaultError {
    match e.io_kind() {
        Some(std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied) => {
            VaultError::Invalid(format!(
                "cannot write to the data directory {} ({e}): custos writes there on every request, so it \
             must be on a writable file system and owned by the user custos runs as",
                dir.display()
            ))
        }
        _ => VaultError::Store(damaged(e)),
    }
}

/// Make the names in a vault's data directory durable: the sled store's
/// folder, the data directory's own entries, and its name in its parent
/// (it may have been made by hand just before, never synced), unless the
/// user may not open the parent (a root-owned folder need not be
/// readable).
pub(crate) fn sync_names(dir: &Path) -> std::io::Result<()> {
    custos_durable::sync_dir(&db_path(dir))?;
    custos_durable::sync_dir(dir)?;
    match custos_durable::sync_parent(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

/// The sled store inside a vault's data directory.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB)
}

/// Write an Ed25519 seed, base64, to a file only its owner can read: by
/// way of a new file beside it, synced, renamed over `path`, and the
/// folder synced, so that a power cut leaves the whole key or none (a
/// file system may make a new name durable before the bytes behind it).
pub(crate) fn write_key_file(path: &Path, key: &SigningKey) -> Result<(), VaultError> {
    let seed = Zeroizing::new(B64.encode(key.to_bytes()));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    // What a cut-off earlier write left.
    let _ = std::fs::remove_file(&tmp);
    let mut f = identity::private_file(&tmp)?;
    std::io::Write::write_all(&mut f, seed.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    custos_durable::sync_parent(path)?;
    Ok(())
}

/// Read a key written by [`write_key_file`], refusing one others can read.
pub fn read_key_file(path: &Path) -> Result<SigningKey, VaultError> {
    let damaged = || VaultError::Invalid(format!("{} is damaged", path.display()));
    identity::check_private(path)?;
    let seed = Zeroizing::new(std::fs::read_to_string(path)?);
    let raw = Zeroizing::new(B64.decode(seed.trim()).map_err(|_| damaged())?);
    let raw: &[u8; 32] = raw.as_slice().try_into().map_err(|_| damaged())?;
    Ok(SigningKey::from_bytes(raw))
}
