//! The custody log in the store: entries, Merkle tree nodes, per-case
//! chains, the latest checkpoint, proofs, appending under the writer lock,
//! and the checks run when a vault opens.

use super::*;

impl Store {
    // ---- custody log ----

    /// Number of entries in the log.
    pub fn log_size(&self) -> Result<u64> {
        Ok(match self.tree(T::Meta).get("size")? {
            None => 0,
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Integrity("log size record".into()))?,
            ),
        })
    }

    /// The latest signed checkpoint note.
    pub fn checkpoint(&self) -> Result<Option<String>> {
        Ok(self
            .tree(T::Meta)
            .get(CHECKPOINT_KEY)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Stored bytes of entry `index`.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(T::Log).get(index.to_be_bytes())?.map(|v| v.to_vec()))
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let v = self
            .tree(T::Nodes)
            .get(node_key(level, index))?
            .ok_or_else(|| StoreError::Integrity(format!("log tree node ({level}, {index}) is missing")))?;
        Hash::try_from(v.as_ref()).map_err(|_| StoreError::Integrity("log tree node is damaged".into()))
    }

    /// Root of the first `size` entries.
    pub fn root(&self, size: u64) -> Result<Hash> {
        merkle::root(size, &mut |l, i| self.node(l, i))
    }

    /// The log indices of a case's events (or the vault's), in chain order,
    /// up to but not including log index `size`.
    pub fn chain_indices(&self, case: &str, size: u64) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for kv in self.tree(T::Chains).scan_prefix(format!("{case}/")) {
            let (_, v) = kv?;
            let index = u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Integrity("chain index is not 8 bytes".into()))?,
            );
            if index >= size {
                break;
            }
            out.push(index);
        }
        Ok(out)
    }

    /// Inclusion proof of entry `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Result<Vec<Hash>, ProofError>> {
        merkle::inclusion_proof(index, size, &mut |l, i| self.node(l, i))
    }

    /// Consistency proof between two sizes.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Result<Vec<Hash>, ProofError>> {
        merkle::consistency_proof(size1, size2, &mut |l, i| self.node(l, i))
    }

    /// Append events (and apply `batch` with them, atomically), sign the new
    /// checkpoint, and return one receipt per event. The caller flushes
    /// before acknowledging.
    pub fn append(
        &self,
        guard: &WriterGuard<'_>,
        mut batch: Batch,
        drafts: Vec<EventDraft>,
        signer: &LogSigner,
    ) -> Result<Vec<Receipt>> {
        let start = self.log_size()?;
        let mut size = start;
        let mut new_nodes: HashMap<(u32, u64), Hash> = HashMap::new();
        let mut heads: HashMap<String, ChainHead> = HashMap::new();
        let mut events = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let head = match heads.get(&draft.case) {
                Some(h) => Some(h.clone()),
                None => self.get_json::<ChainHead>(T::Heads, &draft.case)?,
            };
            let (seq, prev) = match head {
                None => (0, None),
                Some(h) => (h.seq + 1, Some(h.hash)),
            };
            let case = draft.case.clone();
            let bytes = serde_json::to_vec(&draft.place(seq, prev, now_rfc3339())).expect("events always serialise");
            let nodes = merkle::nodes_completed_by(size, merkle::leaf_hash(&bytes), &mut |l, i| match new_nodes
                .get(&(l, i))
            {
                Some(h) => Ok(*h),
                None => self.node(l, i),
            })?;
            for (l, i, h) in nodes {
                new_nodes.insert((l, i), h);
                batch.put(T::Nodes, node_key(l, i), h);
            }
            let head = ChainHead {
                seq,
                hash: event_hash(&bytes),
            };
            batch.put_json(T::Heads, case.as_bytes(), &head);
            batch.put(T::Chains, chain_key(&case, seq), size.to_be_bytes());
            heads.insert(case, head);
            batch.put(T::Log, size.to_be_bytes(), bytes.clone());
            events.push((size, bytes));
            size += 1;
        }
        let root = merkle::root(size, &mut |l, i| match new_nodes.get(&(l, i)) {
            Some(h) => Ok(*h),
            None => self.node(l, i),
        })?;
        let note = signer.sign(size, root);
        batch.put(T::Meta, "size", size.to_be_bytes());
        batch.put(T::Meta, CHECKPOINT_KEY, note.as_bytes());
        self.apply(guard, batch)?;
        events
            .into_iter()
            .map(|(index, bytes)| {
                let proof = self
                    .inclusion_proof(index, size)?
                    .map_err(|e| StoreError::Integrity(e.to_string()))?;
                Ok(Receipt {
                    index,
                    event: B64.encode(bytes),
                    proof: proof.iter().map(|h| B64.encode(h)).collect(),
                    checkpoint: note.clone(),
                })
            })
            .collect()
    }

    /// Compare the store with the high-water mark (see [`high_water`]):
    /// holding fewer entries than the last checkpoint made durable, or other
    /// entries at that size, means sled lost acknowledged data.
    fn check_high_water(&self, signer: &LogSigner, size: u64) -> Result<()> {
        let mut mark = self.group.high_water.lock().expect("flushes do not panic");
        let Some(note) = mark.note().map(str::to_owned) else {
            // A store made before the mark existed: start it now.
            if let Some(note) = self.checkpoint()? {
                mark.record(&note)?;
            }
            return Ok(());
        };
        let durable = signer
            .verifier()
            .verify(&note)
            .map_err(|e| StoreError::Integrity(format!("the high-water checkpoint does not verify: {e}")))?;
        let lost = || {
            StoreError::Integrity(format!(
                "the store holds {size} log entries, but a checkpoint of {} entries was made durable \
                 and may have been handed out: sled's files are damaged and it dropped acknowledged \
                 data when it recovered. Do not serve or change this store; keep a copy of it and \
                 restore the vault from a backup (see SECURITY.md, \"If the vault will not start\")",
                durable.size
            ))
        };
        if size < durable.size {
            return Err(lost());
        }
        if self.root(durable.size)? != durable.root {
            return Err(StoreError::Integrity(format!(
                "the log's first {} entries no longer match the checkpoint made durable for them: \
                 the store was altered or damaged. Do not serve it; restore from a backup \
                 (see SECURITY.md, \"If the vault will not start\")",
                durable.size
            )));
        }
        Ok(())
    }

    /// Build, once, the indexes a store made before they existed lacks:
    /// the retired principals (from the log's `principal_removed` events,
    /// so building it changes nothing the log says) and each case's open
    /// uploads (from the upload records).
    pub fn build_missing_indexes(&self) -> Result<()> {
        self.index_retired_principals()?;
        const UPLOADS_DONE: &str = "case_uploads_indexed";
        if !self.tree(T::Meta).contains_key(UPLOADS_DONE)? {
            for kv in self.tree(T::Uploads).iter() {
                let (id, record) = kv?;
                let u: UploadRecord = serde_json::from_slice(&record).map_err(|e| StoreError::Decode(e.to_string()))?;
                self.tree(T::CaseUploads)
                    .insert(pair_key(&u.case_id, &String::from_utf8_lossy(&id)), &[])?;
            }
            self.tree(T::Meta).insert(UPLOADS_DONE, &[])?;
        }
        Ok(())
    }

    /// See [`Store::build_missing_indexes`].
    fn index_retired_principals(&self) -> Result<()> {
        const DONE: &str = "retired_indexed";
        if self.tree(T::Meta).contains_key(DONE)? {
            return Ok(());
        }
        let size = self.log_size()?;
        for index in self.chain_indices(custos_core::custody::VAULT_CASE, size)? {
            let bytes = self
                .entry(index)?
                .ok_or_else(|| StoreError::Integrity(format!("log entry {index} is missing")))?;
            let event: custos_core::custody::Event =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Decode(e.to_string()))?;
            if event.action == custos_core::custody::Action::PrincipalRemoved {
                if let Some(key) = event.details["key_id"].as_str() {
                    self.tree(T::Retired).insert(key, &index.to_be_bytes())?;
                }
            }
        }
        self.tree(T::Meta).insert(DONE, &[])?;
        Ok(())
    }

    /// Startup check: the stored tree must match the stored checkpoint and
    /// every entry must be present, or the server refuses to serve.
    pub fn check_log(&self, signer: &LogSigner) -> Result<()> {
        let size = self.log_size()?;
        self.check_high_water(signer, size)?;
        if size == 0 {
            return Ok(());
        }
        let note = self
            .checkpoint()?
            .ok_or_else(|| StoreError::Integrity("the log has entries but no checkpoint".into()))?;
        let cp = signer
            .verifier()
            .verify(&note)
            .map_err(|e| StoreError::Integrity(format!("stored checkpoint: {e}")))?;
        if cp.size != size || cp.root != self.root(size)? {
            return Err(StoreError::Integrity(
                "stored log tree does not match the signed checkpoint".into(),
            ));
        }
        if self.tree(T::Log).len() as u64 != size {
            return Err(StoreError::Integrity(
                "log entry count does not match the checkpoint".into(),
            ));
        }
        // Every interior node must be the hash of its children, so no proof
        // the server hands out is built on a damaged node. Whether each leaf
        // matches its entry's bytes is what auditors and receipts check, in
        // the open, rather than the server deciding it alone.
        for i in 0..size {
            let leaf = self.node(0, i)?;
            for (level, index, hash) in merkle::nodes_completed_by(i, leaf, &mut |l, j| self.node(l, j))? {
                if self.node(level, index)? != hash {
                    return Err(StoreError::Integrity(format!(
                        "log tree node ({level}, {index}) does not match its children"
                    )));
                }
            }
        }
        Ok(())
    }
}
