//! Reading a backup file member by member, each checked against the
//! manifest's hashes before the caller sees it.

use super::*;

/// One member of a backup, as [`read`] hands it over, already checked.
pub enum Member<'a> {
    /// The manifest, its signature checked against the log key it names
    /// (first, before any other member).
    Manifest(&'a Manifest),
    /// The vault's description.
    VaultJson(&'a [u8]),
    /// The vault's custos.toml.
    Config(&'a [u8]),
    /// The log key, encrypted with a passphrase (age, scrypt).
    LogKey(&'a [u8]),
    /// One tree's records: the callback reads them with
    /// [`TreeRecords::next_record`]; whatever it leaves is read and hashed.
    Tree(&'a str, TreeRecords<'a>),
    /// A chunk whose bytes match its hash.
    Chunk(Hash, &'a [u8]),
}

/// Where the records of a tree member come from.
type NextRecord<'a> = &'a mut dyn FnMut() -> Result<Option<(Vec<u8>, Vec<u8>)>>;

/// The records of a tree member.
pub struct TreeRecords<'a>(NextRecord<'a>);

impl TreeRecords<'_> {
    /// The next record, or `None` after the last.
    pub fn next_record(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        (self.0)()
    }
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn read_small(entry: &mut impl Read, size: u64, what: &str) -> Result<Vec<u8>> {
    read_bounded(entry, size, MAX_SMALL_MEMBER, what)
}

fn read_bounded(entry: &mut impl Read, size: u64, max: u64, what: &str) -> Result<Vec<u8>> {
    if size > max {
        return Err(damaged(format!("{what} is {size} bytes, far more than it can be")));
    }
    let mut out = Vec::with_capacity(size as usize);
    entry.read_to_end(&mut out).map_err(cut)?;
    if out.len() as u64 != size {
        return Err(damaged("the file is cut short"));
    }
    Ok(out)
}

/// Read a backup from `r`, checking every member as it comes (the manifest
/// first, each tree against its hash and record count, each chunk against
/// its name), and hand each to `visit`. Returns the manifest once the whole
/// file has been read and found complete.
pub fn read(r: impl Read, mut visit: impl FnMut(Member<'_>) -> Result<()>) -> Result<Manifest> {
    let mut archive = tar::Archive::new(r);
    let mut entries = archive.entries().map_err(cut)?;
    let mut manifest: Option<Manifest> = None;
    let mut manifest_bytes = Vec::new();
    let mut signature_seen = false;
    let mut trees_seen = BTreeSet::new();
    let (mut chunks_seen, mut vault_seen, mut config_seen, mut key_seen) = (0u64, false, false, false);
    for entry in &mut entries {
        let mut entry = entry.map_err(cut)?;
        if !matches!(entry.header().entry_type(), tar::EntryType::Regular) {
            return Err(damaged("it holds something other than plain files"));
        }
        let path = entry
            .path()
            .map_err(|_| damaged("a member's name is not text"))?
            .to_string_lossy()
            .into_owned();
        let size = entry.size();
        let Some(m) = &manifest else {
            if path != MANIFEST {
                return Err(damaged(format!(
                    "it does not start with {MANIFEST}: not a custos backup"
                )));
            }
            let bytes = read_bounded(&mut entry, size, MAX_MANIFEST, "the manifest")?;
            let parsed: Manifest = serde_json::from_slice(&bytes).map_err(|e| damaged(format!("manifest: {e}")))?;
            if parsed.format == "custos-backup-v1" {
                return Err(damaged(
                    "it was made by an older custos (custos-backup-v1), whose manifests are unsigned; \
                     restore it with that version and take a new backup",
                ));
            }
            if parsed.format != FORMAT {
                return Err(damaged(format!(
                    "its format is {:?}; this custos reads {FORMAT}",
                    parsed.format
                )));
            }
            manifest_bytes = bytes;
            manifest = Some(parsed);
            continue;
        };
        if !signature_seen {
            // The manifest is signed by the log key it names; the caller
            // then holds that key to the one it trusts (check_manifest).
            if path != MANIFEST_SIG {
                return Err(damaged(format!("{MANIFEST_SIG} does not follow the manifest")));
            }
            let signature = read_small(&mut entry, size, "the manifest's signature")?;
            let verifier = LogVerifier::parse(&m.vkey).map_err(|e| damaged(format!("vkey: {e}")))?;
            verifier
                .verify_manifest(&manifest_bytes, &String::from_utf8_lossy(&signature))
                .map_err(|_| damaged("its manifest is not signed by the log key it names"))?;
            signature_seen = true;
            visit(Member::Manifest(m))?;
            continue;
        }
        if path == VAULT_JSON && !vault_seen {
            vault_seen = true;
            visit(Member::VaultJson(&read_small(&mut entry, size, "vault.json")?))?;
        } else if path == CONFIG && m.config && !config_seen {
            config_seen = true;
            visit(Member::Config(&read_small(&mut entry, size, "custos.toml")?))?;
        } else if path == LOG_KEY && !key_seen {
            key_seen = true;
            visit(Member::LogKey(&read_small(&mut entry, size, "the log key")?))?;
        } else if let Some(name) = path.strip_prefix(TREES) {
            let listed = m
                .trees
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| damaged(format!("it holds a tree {name:?} its manifest does not list")))?;
            if !trees_seen.insert(name.to_owned()) {
                return Err(damaged(format!("tree {name} appears twice")));
            }
            if size != listed.bytes {
                return Err(damaged(format!("tree {name} is {size} bytes, not {}", listed.bytes)));
            }
            let mut body = HashingReader {
                inner: &mut entry,
                hash: Sha256::new(),
                bytes: 0,
            };
            let mut count = 0u64;
            let mut next = || {
                let record = read_record(&mut body)?;
                count += u64::from(record.is_some());
                Ok(record)
            };
            visit(Member::Tree(name, TreeRecords(&mut next)))?;
            // Whatever the visitor left is read too, so that the hash and
            // the count cover the whole file.
            while next()?.is_some() {}
            if count != listed.records {
                return Err(damaged(format!(
                    "tree {name} holds {count} records, not {}",
                    listed.records
                )));
            }
            if body.bytes != size {
                return Err(damaged("the file is cut short"));
            }
            if hex::encode(body.hash.finalize()) != listed.sha256 {
                return Err(damaged(format!("tree {name} does not match its hash in the manifest")));
            }
        } else if let Some(name) = path.strip_prefix(CHUNKS) {
            let hash: Hash = custos_core::protocol::hash_from_hex(name)
                .ok_or_else(|| damaged(format!("chunk name {name:?} is not a SHA-256")))?;
            if size > store::CHUNK_SIZE as u64 {
                return Err(damaged(format!("chunk {name} is larger than any chunk")));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes).map_err(cut)?;
            if bytes.len() as u64 != size {
                return Err(damaged("the file is cut short"));
            }
            if <[u8; 32]>::from(Sha256::digest(&bytes)) != hash {
                return Err(damaged(format!("chunk {name} does not match its hash")));
            }
            chunks_seen += 1;
            visit(Member::Chunk(hash, &bytes))?;
        } else {
            return Err(damaged(format!("unexpected member {path:?}")));
        }
    }
    let m = manifest.ok_or_else(|| damaged("it is empty"))?;
    if !vault_seen {
        return Err(damaged("vault.json is missing"));
    }
    if m.config && !config_seen {
        return Err(damaged("custos.toml is missing"));
    }
    for t in &m.trees {
        if !trees_seen.contains(&t.name) {
            return Err(damaged(format!("tree {} is missing", t.name)));
        }
    }
    if chunks_seen != m.chunk_files {
        return Err(damaged(format!(
            "it holds {chunks_seen} chunk files where its manifest lists {}",
            m.chunk_files
        )));
    }
    Ok(m)
}
