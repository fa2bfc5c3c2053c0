//! What the client trusts about a vault: the log's verifier key and the
//! admin cards. Pinned on first use in a local file (or given with
//! `--trust`), and checked on every later use, so a host that swaps its log
//! key or slips in its own intake recipient is caught.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ClientError;
use crate::api::wire::{IntakeParams, PrincipalBody};
use crate::custody::checkpoint::LogVerifier;
use crate::custody::{Action, Event};
use crate::identity::{Card, Principal, Role};

/// What is pinned for one vault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pin {
    /// Log origin.
    pub origin: String,
    /// Log verifier key.
    pub vkey: String,
    /// Trusted admin cards.
    pub admins: Vec<Card>,
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

    fn pin_path(&self, server: &str) -> PathBuf {
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
                        "the vault's log key changed (pinned {}, now {}); refusing to continue. If the operator confirms a new key, remove {}",
                        pin.vkey,
                        params.vkey,
                        self.pin_path(server).display()
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
                };
                self.save(server, &pin)?;
                tracing::warn!(vkey = %pin.vkey, "first contact with this vault: pinned its log key and admin cards");
                pin
            }
        };
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
        Ok(Trusted { log, admins })
    }
}

/// Write a file by way of a temporary file and a rename, so a crash never
/// leaves half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What the client trusts for one vault.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// The log key.
    pub log: LogVerifier,
    /// Admin cards.
    pub admins: Vec<Card>,
}

impl Trusted {
    /// Check every intake principal's registration: it must be a
    /// `principal_added` event signed by a trusted admin, naming this exact
    /// card as an intake lawyer. Returns the principals to wrap cases to.
    pub fn verify_intake(&self, params: &IntakeParams) -> Result<Vec<Principal>, ClientError> {
        let mut out = Vec::new();
        for ip in &params.intake {
            let fail = |why: &str| {
                ClientError::Trust(format!(
                    "intake principal {} ({}): {why}",
                    ip.principal.key_id, ip.principal.name
                ))
            };
            let bytes = B64
                .decode(&ip.event)
                .map_err(|_| fail("registration event is not base64"))?;
            let event: Event = serde_json::from_slice(&bytes).map_err(|_| fail("registration event is malformed"))?;
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
