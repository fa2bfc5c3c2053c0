//! What the client trusts about a vault: the log's verifier key and the
//! admin cards. Pinned on first use in a local file (or given with
//! `--trust`), and checked on every later use, so a host that swaps its log
//! key or slips in its own intake recipient is caught.

use custos_durable::write_atomically;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::path_lock::PathLocks;
use super::ClientError;
use custos_core::custody::checkpoint::{split_note, Checkpoint, LogVerifier};
use custos_core::custody::cosignature::WitnessVerifier;
use custos_core::custody::{Action, Event};
use custos_core::identity::{Card, Principal, Role};
use custos_core::wire::{IntakeParams, PrincipalBody};

/// What is pinned for one vault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pin {
    /// Log origin.
    pub origin: String,
    /// Log verifier key.
    pub vkey: String,
    /// Trusted admin cards.
    pub admins: Vec<Card>,
    /// Witnesses (vkeys) the vault named, kept once named: its receipts
    /// are held to them (a host that stops naming a witness, to hide a
    /// fork from it, is still held to it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<String>,
}

/// Trust settings of this client.
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: PathBuf,
}

impl TrustStore {
    /// The store in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        TrustStore { dir }
    }

    /// The default location: `$CUSTOS_CONFIG_DIR`, else
    /// `$XDG_CONFIG_HOME/custos`, else `~/.config/custos`.
    pub fn default_location() -> Self {
        let dir = std::env::var_os("CUSTOS_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CONFIG_HOME").map(|d| PathBuf::from(d).join("custos")))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/custos")))
            .unwrap_or_else(|| PathBuf::from(".custos"));
        Self::new(dir)
    }

    /// The folder this client keeps its settings in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file `server`'s pin is kept in.
    pub fn pin_path(&self, server: &str) -> PathBuf {
        let h = hex::encode(&Sha256::digest(server.as_bytes())[..8]);
        self.dir.join("pins").join(format!("{h}.json"))
    }

    /// The pin for `server`, if any.
    pub fn pin(&self, server: &str) -> Result<Option<Pin>, ClientError> {
        let path = self.pin_path(server);
        if !path.exists() {
            return Ok(None);
        }
        let pin = serde_json::from_slice(&std::fs::read(&path)?)
            .map_err(|e| ClientError::Trust(format!("{} is damaged: {e}", path.display())))?;
        Ok(Some(pin))
    }

    fn save(&self, server: &str, pin: &Pin) -> Result<(), ClientError> {
        let path = self.pin_path(server);
        std::fs::create_dir_all(path.parent().expect("pin path has a parent"))?;
        write_atomically(&path, &serde_json::to_vec_pretty(pin).expect("serialisable"))?;
        Ok(())
    }

    /// Check the vault's parameters against the pin (pinning them on first
    /// use) and return what to trust. `explicit` admin cards, when given,
    /// replace the pinned ones.
    pub fn check(&self, server: &str, params: &IntakeParams, explicit: &[Card]) -> Result<Trusted, ClientError> {
        let pin = match self.pin(server)? {
            Some(pin) => {
                if pin.vkey != params.vkey {
                    return Err(ClientError::Trust(format!(
                        "the vault's log key changed (pinned {}, now {}); refusing to continue. If this is a new \
                         vault at the same address (a new demo vault, say) or its operator confirms a new key, \
                         remove {} and {}",
                        pin.vkey,
                        params.vkey,
                        self.pin_path(server).display(),
                        self.checkpoint_path(server).display()
                    )));
                }
                pin
            }
            None => {
                let pin = Pin {
                    origin: params.origin.clone(),
                    vkey: params.vkey.clone(),
                    admins: if explicit.is_empty() {
                        params.anchors.clone()
                    } else {
                        explicit.to_vec()
                    },
                    witnesses: params.witnesses.clone(),
                };
                self.save(server, &pin)?;
                // The CLI tells the person in plain words; see cli::run.
                tracing::debug!(vkey = %pin.vkey, "first contact with this vault: pinned its log key and admin cards");
                pin
            }
        };
        let mut pin = pin;
        let named: Vec<String> = params
            .witnesses
            .iter()
            .filter(|w| !pin.witnesses.contains(w))
            .cloned()
            .collect();
        if !named.is_empty() {
            pin.witnesses.extend(named);
            self.save(server, &pin)?;
        }
        let witnesses = pin
            .witnesses
            .iter()
            .map(|w| WitnessVerifier::parse(w).map_err(|e| ClientError::Trust(format!("a witness's key: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let admins = if explicit.is_empty() {
            pin.admins
        } else {
            explicit.to_vec()
        };
        let log = LogVerifier::parse(&pin.vkey).map_err(|e| ClientError::Trust(e.to_string()))?;
        if log.name() != params.origin {
            return Err(ClientError::Trust(
                "the vault's origin does not match its log key".into(),
            ));
        }
        Ok(Trusted { log, admins, witnesses })
    }
}

/// One lock per pinned-checkpoint file in this process. Advancing the pin
/// reads it, may wait for a consistency proof, and writes it: two proofs
/// doing that at once (the desk proves 8 cases at a time) would lower the
/// pin, or take the other's newer pin for a rollback. A tokio mutex, as it
/// is held across the proof's request.
static CHECKPOINT_LOCKS: PathLocks<tokio::sync::Mutex<()>> = PathLocks::new();

/// The size of the checkpoint pinned for a vault when a request to it went
/// out ([`TrustStore::pinned_when_asked`]). The answer's checkpoint may be
/// older than the pin by the time it is checked, when another request's
/// answer moved the pin on meanwhile; it may never be older than this,
/// which the vault had already shown this client before it was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedWhenAsked(u64);

impl TrustStore {
    fn checkpoint_path(&self, server: &str) -> PathBuf {
        let h = hex::encode(&Sha256::digest(server.as_bytes())[..8]);
        self.dir.join("checkpoints").join(format!("{h}.txt"))
    }

    /// The checkpoint note pinned for `server`, if any, read off the async
    /// threads.
    async fn pinned_note(&self, server: &str) -> Result<Option<String>, ClientError> {
        let path = self.checkpoint_path(server);
        tokio::task::spawn_blocking(move || match std::fs::read_to_string(&path) {
            Ok(note) => Ok(Some(note)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        })
        .await
        .map_err(|e| ClientError::Trust(format!("reading the pinned checkpoint failed: {e}")))?
    }

    fn damaged(&self, server: &str, e: impl std::fmt::Display) -> ClientError {
        ClientError::Trust(format!("{} is damaged: {e}", self.checkpoint_path(server).display()))
    }

    /// What the pin for `server` is now: taken before a request whose
    /// answer's checkpoint goes to [`TrustStore::advance_checkpoint`]. The
    /// note's signature is checked there, under the lock; here only its
    /// size is read.
    pub async fn pinned_when_asked(&self, server: &str) -> Result<PinnedWhenAsked, ClientError> {
        let Some(note) = self.pinned_note(server).await? else {
            return Ok(PinnedWhenAsked(0));
        };
        let (body, _) = split_note(&note).map_err(|e| self.damaged(server, e))?;
        let pinned = Checkpoint::parse_body(body).map_err(|e| self.damaged(server, e))?;
        Ok(PinnedWhenAsked(pinned.size))
    }

    /// Accept `note` (already verified as `checkpoint`) from the vault at
    /// the client's server only if it is consistent with the last
    /// checkpoint this client accepted from it (an RFC 9162 proof the vault
    /// must give), and remember it when it is newer: a vault that rolls its
    /// log back, or shows this client a fork, is refused.
    ///
    /// `asked` is what the pin was when the request that brought `note`
    /// went out. An answer older than the pin is then one that another
    /// request's newer answer overtook: it is accepted if the pin extends
    /// it, and the pin stays the newer. One older than `asked` is a
    /// rollback. Advances of one pin are taken one at a time in this
    /// process, and the pin never goes down.
    pub async fn advance_checkpoint(
        &self,
        client: &super::Client,
        log: &LogVerifier,
        note: &str,
        checkpoint: &Checkpoint,
        asked: PinnedWhenAsked,
    ) -> Result<(), ClientError> {
        let server = client.base();
        let lock = CHECKPOINT_LOCKS.of(&self.checkpoint_path(server));
        let _advancing = lock.lock().await;
        let Some(pinned_note) = self.pinned_note(server).await? else {
            return self.pin_checkpoint(server, note).await;
        };
        let pin = log.verify(&pinned_note).map_err(|e| self.damaged(server, e))?;
        match checkpoint.size.cmp(&pin.size) {
            Ordering::Equal if checkpoint.root == pin.root => Ok(()),
            Ordering::Equal => Err(not_the_history_shown_before(format!(
                "the log of {} entries has another root",
                pin.size
            ))),
            Ordering::Greater => {
                prove_prefix(client, &pin, checkpoint).await?;
                self.pin_checkpoint(server, note).await
            }
            Ordering::Less if checkpoint.size < asked.0 => Err(not_the_history_shown_before(format!(
                "the log shrank from {} entries, seen before, to {}",
                asked.0, checkpoint.size
            ))),
            Ordering::Less => prove_prefix(client, checkpoint, &pin).await,
        }
    }

    /// Keep `note` as the checkpoint pinned for `server`, off the async
    /// threads (an fsync).
    async fn pin_checkpoint(&self, server: &str, note: &str) -> Result<(), ClientError> {
        let (path, note) = (self.checkpoint_path(server), note.to_owned());
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(path.parent().expect("has a parent"))?;
            write_atomically(&path, note.as_bytes())
        })
        .await
        .map_err(|e| ClientError::Trust(format!("writing the pinned checkpoint failed: {e}")))??;
        Ok(())
    }
}

/// A checkpoint this client may not accept, and why.
fn not_the_history_shown_before(what: String) -> ClientError {
    ClientError::Verify(format!(
        "{what}; the vault is not showing you the history it showed before"
    ))
}

/// Have the vault prove (RFC 9162) that `older` is a prefix of `newer`,
/// and check the proof. The empty log is a prefix of every log. A proof
/// that does not hold is a verification failure; one that could not be
/// fetched is the exchange's error, as for any request.
async fn prove_prefix(client: &super::Client, older: &Checkpoint, newer: &Checkpoint) -> Result<(), ClientError> {
    if older.size == 0 {
        return Ok(());
    }
    let proof = client.consistency(older.size, newer.size).await?;
    let proof = custos_core::audit::decode_hashes(&proof.proof)
        .ok_or_else(|| ClientError::Verify("a consistency proof is malformed".into()))?;
    custos_core::custody::merkle::verify_consistency(older.size, newer.size, &proof, &older.root, &newer.root).map_err(
        |e| {
            not_the_history_shown_before(format!(
                "the log of {} entries is not a prefix of the one of {}: {e}",
                older.size, newer.size
            ))
        },
    )
}

/// What the client trusts for one vault.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// The log key.
    pub log: LogVerifier,
    /// Admin cards.
    pub admins: Vec<Card>,
    /// Witnesses whose cosignatures the vault's receipts must come to carry.
    pub witnesses: Vec<WitnessVerifier>,
}

impl Trusted {
    /// Check every intake principal's registration: it must be a
    /// `principal_added` event signed by a trusted admin, naming this exact
    /// card as an intake lawyer. Returns the principals to wrap cases to.
    pub fn verify_intake(&self, params: &IntakeParams) -> Result<Vec<Principal>, ClientError> {
        let trust = |what: String| ClientError::Trust(what);
        let checkpoint = self
            .log
            .verify(&params.checkpoint)
            .map_err(|e| trust(format!("the intake parameters' checkpoint: {e}")))?;
        let included = |index: u64, event: &str, proof: &[String]| -> Result<Event, ClientError> {
            let bytes = custos_core::audit::included(index, event, proof, &checkpoint)
                .map_err(|e| trust(format!("event {index} is not in the signed log: {e}")))?;
            serde_json::from_slice(&bytes).map_err(|_| trust(format!("event {index} is malformed")))
        };
        // The intake lawyers the log says there are, at its last registry
        // change: the list must be exactly those, so a host cannot list a
        // lawyer it removed (or never made intake) without its log saying so.
        let registry = params
            .registry
            .as_ref()
            .ok_or_else(|| trust("the vault shows no registry change in its log".into()))?;
        let change = included(registry.index, &registry.event, &registry.proof)?;
        if change.case != custos_core::custody::VAULT_CASE
            || !matches!(change.action, Action::PrincipalAdded | Action::PrincipalRemoved)
        {
            return Err(trust("the vault's last registry change is not one".into()));
        }
        let committed: std::collections::BTreeSet<custos_core::identity::KeyId> = change
            .details
            .get("registry_intake")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .ok_or_else(|| trust("the vault's log does not say who its intake lawyers are".into()))?;
        let listed: std::collections::BTreeSet<custos_core::identity::KeyId> =
            params.intake.iter().map(|ip| ip.principal.key_id.clone()).collect();
        if listed != committed {
            let extra: Vec<String> = listed.difference(&committed).map(|k| k.to_string()).collect();
            let missing: Vec<String> = committed.difference(&listed).map(|k| k.to_string()).collect();
            return Err(trust(format!(
                "the vault lists other intake lawyers than its log names (listed but not in the log: {}; in the log but not listed: {}); refusing to send",
                if extra.is_empty() { "none".into() } else { extra.join(", ") },
                if missing.is_empty() { "none".into() } else { missing.join(", ") },
            )));
        }
        let mut out = Vec::new();
        for ip in &params.intake {
            let fail = |why: &str| {
                ClientError::Trust(format!(
                    "intake principal {} ({}): {why}",
                    ip.principal.key_id, ip.principal.name
                ))
            };
            let event = included(ip.index, &ip.event, &ip.proof).map_err(|e| fail(&e.to_string()))?;
            if event.action != Action::PrincipalAdded {
                return Err(fail("registration event is not principal_added"));
            }
            let admin = self
                .admins
                .iter()
                .find(|a| a.key_id().as_str() == event.actor)
                .ok_or_else(|| fail("not registered by a trusted admin"))?;
            let req = event
                .request
                .as_ref()
                .ok_or_else(|| fail("registration is not signed"))?;
            req.verify(&admin.verifying_key)
                .map_err(|_| fail("admin signature does not verify"))?;
            let body: PrincipalBody = req
                .body_bytes()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| fail("registration body is missing"))?;
            if body.card != ip.principal.card
                || body.role != Role::Lawyer
                || !body.intake
                || ip.principal.card.key_id() != ip.principal.key_id
            {
                return Err(fail("the signed registration names a different card or role"));
            }
            out.push(ip.principal.clone());
        }
        if out.is_empty() {
            return Err(ClientError::Trust(
                "the vault has no intake principal; nobody could read a submission".into(),
            ));
        }
        Ok(out)
    }
}
