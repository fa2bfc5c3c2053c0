//! Restoring a backup into a new data directory, and the audit that ends
//! every restore (and `custos backup --data`): log, chains, signatures,
//! the derived trees and every object, checked against what the log says.

use super::*;

/// What a restore rebuilt and checked.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The restored data directory.
    pub data: PathBuf,
    /// Entries in the restored log.
    pub log_size: u64,
    /// Its signed checkpoint, as in the backup.
    pub checkpoint: String,
    /// When the snapshot was cut.
    pub snapshot_created: String,
    /// What the full audit checked.
    pub audit: LocalAudit,
    /// Whether the log key came out of the backup (else from a file).
    pub log_key_from_backup: bool,
}

/// What [`audit_vault`] checked.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LocalAudit {
    /// Entries replayed.
    pub entries: u64,
    /// Chains (cases and the vault's own).
    pub chains: usize,
    /// Actor signatures verified.
    pub signatures: u64,
    /// Objects re-hashed against their ids.
    pub objects: u64,
    /// Their ciphertext bytes.
    pub object_bytes: u64,
    /// Registered principals.
    pub principals: usize,
}

impl From<&AuditSummary> for LocalAudit {
    fn from(s: &AuditSummary) -> Self {
        LocalAudit {
            entries: s.entries,
            chains: s.chains,
            signatures: s.signatures,
            ..Default::default()
        }
    }
}

fn audit_failed(message: impl Into<String>) -> BackupError {
    BackupError::Audit(message.into())
}

/// The full audit of a vault's own store, as an auditor would make it and
/// more: every entry replayed (chains, actors' signatures, registry), the
/// root against the signed checkpoint, the derived trees (registry,
/// submitter keys, chain heads and indices) against what the log says, every
/// stored object re-hashed against its id, and every object the log says
/// was stored present.
pub fn audit_vault(vault: &Vault) -> Result<LocalAudit> {
    let store = &vault.store;
    let size = store.log_size()?;
    let note = store
        .checkpoint()?
        .ok_or_else(|| audit_failed("the log has no checkpoint"))?;
    let cp = vault
        .signer
        .verifier()
        .verify(&note)
        .map_err(|e| audit_failed(format!("the checkpoint does not verify: {e}")))?;
    let mut auditor = LogAuditor::new();
    let mut derived = derived::Derived::default();
    let mut stored_objects = BTreeSet::new();
    for i in 0..size {
        let bytes = store
            .entry(i)?
            .ok_or_else(|| audit_failed(format!("log entry {i} is missing")))?;
        auditor.push(&bytes).map_err(|e| audit_failed(e.to_string()))?;
        let event: custos_core::custody::Event = serde_json::from_slice(&bytes).expect("the auditor parsed it");
        derived
            .apply(i, &event)
            .map_err(|e| audit_failed(format!("entry {i}: {e}")))?;
        let chained = store.record(
            T::Chains,
            store::indexed_key(format!("{}/", event.case).as_bytes(), event.seq),
        )?;
        if chained.as_deref() != Some(&i.to_be_bytes()[..]) {
            return Err(audit_failed(format!("the chain index of entry {i} is wrong")));
        }
        if event.action == custos_core::custody::Action::ObjectStored {
            stored_objects.extend(event.objects);
        }
    }
    auditor
        .check_checkpoint(&cp)
        .map_err(|e| audit_failed(format!("the log does not match its checkpoint: {e}")))?;
    if store.record_count(T::Chains) as u64 != size {
        return Err(audit_failed("the chain index holds entries the log does not"));
    }
    // Derived state must be what the log says, or a doctored backup could
    // slip in an admin, a submitter key, an envelope or a case's note that
    // no signed event made.
    derived.check(store, size).map_err(audit_failed)?;
    let registry = store.record_count(T::Registry);
    let mut submitters = BTreeMap::new();
    for kv in store.records(T::Submitters) {
        let (k, v) = kv?;
        let key: custos_core::identity::KeyId = String::from_utf8_lossy(&k)
            .parse()
            .map_err(|_| audit_failed("a submitter key id is malformed"))?;
        submitters.insert(key, String::from_utf8_lossy(&v).into_owned());
    }
    if submitters != auditor.submitters() {
        return Err(audit_failed("the submitter keys differ from those the log registered"));
    }
    let mut retired = BTreeSet::new();
    for key in store.keys(T::Retired) {
        let key = key?;
        retired.insert(
            String::from_utf8_lossy(&key)
                .parse::<custos_core::identity::KeyId>()
                .map_err(|_| audit_failed("a retired key id is malformed"))?,
        );
    }
    if retired != auditor.retired() {
        return Err(audit_failed("the retired keys differ from those the log removed"));
    }
    let mut heads = BTreeMap::new();
    for kv in store.records(T::Heads) {
        let (k, v) = kv?;
        let head: store::ChainHead =
            serde_json::from_slice(&v).map_err(|_| audit_failed("a chain head is unreadable"))?;
        heads.insert(String::from_utf8_lossy(&k).into_owned(), (head.seq, head.hash));
    }
    if heads != auditor.heads() {
        return Err(audit_failed("the chain heads differ from the log's"));
    }
    let mut audit = LocalAudit::from(&auditor.summary());
    audit.principals = registry;
    for kv in store.records(T::Objects) {
        let (k, v) = kv?;
        let m: ObjectManifest =
            serde_json::from_slice(&v).map_err(|_| audit_failed("an object record is unreadable"))?;
        let id = hex::encode(&k);
        let (hash, len) = store.hash_sequence(T::ObjectChunks, &k, m.chunks)?;
        if hash != id || len != m.size {
            return Err(audit_failed(format!("object {id} does not match its id")));
        }
        // Downloads rely on what the record says of the chunks (where each
        // starts, the hash of their list); records from older versions
        // say nothing of them.
        let found = store.manifest_of(T::ObjectChunks, &k, m.size, m.chunks)?;
        let agrees = m.chunk_size.is_none_or(|c| found.chunk_size == Some(c))
            && m.chunks_sha256.is_none_or(|l| found.chunks_sha256 == Some(l));
        if !agrees {
            return Err(audit_failed(format!("object {id} does not match its record")));
        }
        stored_objects.remove(&id);
        audit.objects += 1;
        audit.object_bytes += len;
    }
    if let Some(missing) = stored_objects.first() {
        return Err(audit_failed(format!(
            "object {missing} was acknowledged in the log but is not in the store"
        )));
    }
    Ok(audit)
}

/// Most missing chunks a refusal names; the count says how many more.
const MISSING_NAMED: usize = 5;

/// A backup of chunk hashes only restores only on a store whose bucket
/// holds every chunk it lists, each of its length: said before anything
/// else is restored, naming the chunks that are not there. Their bytes are
/// re-hashed by the audit that ends the restore.
fn check_bucket_holds(store: &Store, listed: &BucketChunks) -> Result<()> {
    let Some(bucket) = store.chunk_bucket() else {
        return Err(BackupError::Invalid(format!(
            "this backup holds its large chunks' hashes only; the chunks are in the S3 bucket {:?}. \
             Restore it with the settings of that bucket: --storage s3 --s3-endpoint URL --s3-bucket {} \
             --s3-region REGION --s3-credentials-file FILE (or CUSTOS_STORAGE=s3 and the CUSTOS_S3_* \
             variables)",
            listed.bucket, listed.bucket
        )));
    };
    let held: std::collections::HashMap<String, u64> = store
        .large_chunks()?
        .into_iter()
        .map(|(name, len)| (name.rsplit('/').next().unwrap_or_default().to_owned(), len))
        .collect();
    let missing: Vec<String> = listed
        .chunks
        .iter()
        .filter_map(|c| match held.get(&c.sha256) {
            Some(len) if *len == c.bytes => None,
            Some(len) => Some(format!("{} ({len} bytes, not {})", c.sha256, c.bytes)),
            None => Some(c.sha256.clone()),
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let more = missing.len().saturating_sub(MISSING_NAMED);
    Err(audit_failed(format!(
        "the bucket {bucket:?} does not hold {} of the {} chunks this backup lists{}: {}{}",
        missing.len(),
        listed.chunks.len(),
        if bucket == listed.bucket {
            String::new()
        } else {
            format!(" (they were in {:?})", listed.bucket)
        },
        missing[..missing.len() - more].join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )))
}

/// Decrypt a log key that [`encrypt_log_key`] wrapped.
fn decrypt_log_key(
    bytes: &[u8],
    passphrase: impl FnOnce() -> Result<age::secrecy::SecretString, custos_core::identity::IdentityError>,
) -> Result<ed25519_dalek::SigningKey> {
    let wrong = || BackupError::Invalid("cannot decrypt the backup's log key (wrong passphrase?)".into());
    let pass =
        passphrase().map_err(|e| BackupError::Invalid(format!("the backup's log key needs its passphrase: {e}")))?;
    let dec = age::Decryptor::new(bytes).map_err(|_| wrong())?;
    if !dec.is_scrypt() {
        return Err(damaged("the log key is not passphrase-encrypted"));
    }
    let id = age::scrypt::Identity::new(pass);
    let mut r = dec
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .map_err(|_| wrong())?;
    let mut seed = zeroize::Zeroizing::new(Vec::new());
    r.read_to_end(&mut seed).map_err(|_| wrong())?;
    let seed: &[u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| damaged("the log key is not 32 bytes"))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(seed))
}

/// The log key's seed encrypted with a passphrase (age, scrypt).
pub fn encrypt_log_key(key: &ed25519_dalek::SigningKey, passphrase: age::secrecy::SecretString) -> Result<Vec<u8>> {
    let seed = zeroize::Zeroizing::new(key.to_bytes());
    let mut out = Vec::new();
    let mut w = age::Encryptor::with_user_passphrase(passphrase)
        .wrap_output(&mut out)
        .map_err(std::io::Error::other)?;
    w.write_all(seed.as_slice())?;
    w.finish()?;
    Ok(out)
}

/// Add the encrypted log key to the end of a backup file written by
/// [`Snapshot::write`] (before its closing blocks).
pub fn append_log_key(file: &Path, encrypted: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(file)?;
    let len = f.metadata()?.len();
    if len < 1024 {
        return Err(damaged("the file is too short to be a backup"));
    }
    f.seek(std::io::SeekFrom::Start(len - 1024))?;
    let mut tail = [0u8; 1024];
    f.read_exact(&mut tail)?;
    if tail.iter().any(|b| *b != 0) {
        return Err(damaged("the file does not end as a tar file"));
    }
    f.seek(std::io::SeekFrom::Start(len - 1024))?;
    let mut b = tar::Builder::new(&mut f);
    b.append_data(&mut header(encrypted.len() as u64), LOG_KEY, encrypted)?;
    b.finish()?;
    drop(b);
    f.sync_all()?;
    Ok(())
}

/// Check a backup file from end to end without restoring it: its members
/// against the manifest, and the manifest's checkpoint against its vkey
/// (and against `expected_vkey`, when the caller knows which vault it
/// should be). Returns the manifest and whether it holds a log key.
pub fn verify_file(file: &Path, expected_vkey: Option<&str>) -> Result<(Manifest, bool)> {
    let mut key = false;
    let mut description = None;
    let m = read(std::io::BufReader::new(std::fs::File::open(file)?), |member| {
        match member {
            Member::LogKey(_) => key = true,
            Member::VaultJson(bytes) => {
                description = Some(
                    serde_json::from_slice::<Description>(bytes).map_err(|e| damaged(format!("vault.json: {e}")))?,
                )
            }
            _ => {}
        }
        Ok(())
    })?;
    check_manifest(&m, description.as_ref())?;
    if let Some(v) = expected_vkey {
        if v != m.vkey {
            return Err(BackupError::Invalid(format!(
                "the backup is of the log {}, not of {v}",
                m.vkey
            )));
        }
    }
    Ok((m, key))
}

/// The manifest must describe the vault in vault.json, and its checkpoint
/// must be signed by that vault's log key, for the size it claims.
fn check_manifest(m: &Manifest, description: Option<&Description>) -> Result<()> {
    let d = description.ok_or_else(|| damaged("vault.json is missing"))?;
    if d.vkey != m.vkey || d.origin != m.origin {
        return Err(damaged("the manifest and vault.json name different logs"));
    }
    let verifier = LogVerifier::parse(&m.vkey).map_err(|e| damaged(format!("vkey: {e}")))?;
    let cp = verifier
        .verify(&m.checkpoint)
        .map_err(|e| damaged(format!("the checkpoint does not verify: {e}")))?;
    if cp.size != m.log_size {
        return Err(damaged("the checkpoint's size differs from the manifest's"));
    }
    Ok(())
}

/// Where a restored vault's log key comes from.
pub enum LogKeySource<'a> {
    /// A key file kept apart (a copy of the vault's `log.key`).
    File(&'a Path),
    /// The backup's own encrypted copy, opened with this passphrase.
    Backup(Box<dyn FnOnce() -> Result<age::secrecy::SecretString, custos_core::identity::IdentityError> + 'a>),
}

/// Rebuild a vault in `dir` (new or empty) from the backup `file`, then
/// run the full audit on it. On any failure nothing is left in `dir`.
/// Blocking throughout (it writes and fsyncs the whole vault): async
/// callers run it on a blocking thread.
pub fn restore(file: &Path, dir: &Path, key: LogKeySource<'_>) -> Result<Restored> {
    restore_on(file, dir, key, store::ChunkBackend::Local)
}

/// [`restore`], the restored vault's large chunks kept in `chunks`: with
/// an S3 bucket, a full backup's chunks are written to it, and a backup
/// of chunk hashes only is restored only if the bucket holds every chunk
/// it lists, each of its length (and the audit then re-hashes them all).
/// A failed restore leaves nothing in `dir`; chunks it wrote to a bucket
/// stay there, for the bucket may be another vault's too (chunks are
/// content-addressed).
pub fn restore_on(file: &Path, dir: &Path, key: LogKeySource<'_>, chunks: store::ChunkBackend) -> Result<Restored> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(BackupError::Invalid(format!(
            "{} is not empty: a backup is restored only into a new or empty folder, never over a vault",
            dir.display()
        )));
    }
    custos_durable::create_private_dir(dir)?;
    let result = restore_into(file, dir, key, chunks);
    if result.is_err() {
        // Leave nothing half-restored behind that could be served.
        for entry in std::fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
    result
}

fn restore_into(file: &Path, dir: &Path, key: LogKeySource<'_>, chunks: store::ChunkBackend) -> Result<Restored> {
    let store = Store::open_on(&crate::vault::db_path(dir), chunks.clone())?;
    let mut description_bytes = None;
    let mut config = None;
    let mut encrypted_key = None;
    let manifest = read(std::io::BufReader::new(std::fs::File::open(file)?), |member| {
        match member {
            Member::Manifest(m) => {
                // A bucket is this vault's, or no vault's yet, before a
                // chunk is written to it or checked in it.
                store.claim_chunk_store(&m.vkey)?;
                if let Some(listed) = &m.bucket {
                    check_bucket_holds(&store, listed)?;
                }
            }
            Member::VaultJson(b) => description_bytes = Some(b.to_vec()),
            Member::Config(b) => config = Some(b.to_vec()),
            Member::LogKey(b) => encrypted_key = Some(b.to_vec()),
            Member::Chunk(hash, bytes) => {
                store.put_chunk_prehashed(hash, bytes)?;
            }
            Member::Tree(name, mut records) => {
                let t = store::TREES
                    .iter()
                    .find(|(t, n)| *n == name && !LEFT_OUT.contains(t))
                    .map(|(t, _)| *t)
                    .ok_or_else(|| damaged(format!("it holds an unknown tree {name:?}")))?;
                store.import(t, || records.next_record())?;
            }
        }
        Ok(())
    })?;
    let description: Description = serde_json::from_slice(
        description_bytes
            .as_deref()
            .ok_or_else(|| damaged("vault.json is missing"))?,
    )
    .map_err(|e| damaged(format!("vault.json: {e}")))?;
    check_manifest(&manifest, Some(&description))?;
    if store.checkpoint()?.as_deref() != Some(manifest.checkpoint.as_str()) || store.log_size()? != manifest.log_size {
        return Err(audit_failed("the log's stored checkpoint differs from the manifest's"));
    }
    let from_backup = matches!(key, LogKeySource::Backup(_));
    let signing = match key {
        LogKeySource::File(path) => crate::vault::read_key_file(path)?,
        LogKeySource::Backup(passphrase) => {
            let bytes = encrypted_key.ok_or_else(|| {
                BackupError::Invalid(
                    "this backup holds no log key: give the vault's log.key, kept apart, with \
                     --log-key FILE (or restore a backup made with --with-log-key)"
                        .into(),
                )
            })?;
            decrypt_log_key(&bytes, passphrase)?
        }
    };
    let signer = custos_core::custody::checkpoint::LogSigner::new(&description.origin, signing.clone())
        .map_err(|e| BackupError::Invalid(e.to_string()))?;
    if signer.verifier().vkey() != description.vkey {
        return Err(BackupError::Invalid(
            "that log key does not belong to this vault: its vkey differs from the backup's".into(),
        ));
    }
    store.flush_blocking()?;
    drop(store);
    crate::vault::write_key_file(&dir.join("log.key"), &signing)?;
    if let Some(c) = config {
        custos_durable::write_atomically(&dir.join(crate::config::CONFIG_FILE), &c)?;
    }
    // As at init: `vault.json` says a vault is here, so it comes last,
    // once every other name is durable.
    crate::vault::sync_names(dir)?;
    custos_durable::write_atomically(&dir.join("vault.json"), &description_bytes.expect("checked above"))?;
    // Opening checks the tree against the checkpoint and starts the
    // high-water mark at the backup's checkpoint; then the full audit.
    let vault = crate::vault::open_on(dir, chunks).map_err(|e| audit_failed(e.to_string()))?;
    let audit = audit_vault(&vault)?;
    vault.store.flush_blocking()?;
    Ok(Restored {
        data: dir.to_owned(),
        log_size: manifest.log_size,
        checkpoint: manifest.checkpoint,
        snapshot_created: manifest.created,
        audit,
        log_key_from_backup: from_backup,
    })
}
