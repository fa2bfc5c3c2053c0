//! What the desk holds while it runs: the client and the log key it
//! verifies against, the identity once unlocked, who that identity is in
//! the vault's registry, the language, and the lawyer's inbox index.
//! Decrypted text lives here, in memory; only ciphertext is ever cached
//! on disk (in a private scratch folder removed when the desk stops).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::RwLock;

use crate::gate::{Gate, Token};
use crate::index::Inbox;
use custos_client::flows::OpenedCase;
use custos_client::Client;
use custos_core::bundle::disclosure::Language;
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::identity::{Identity, Principal};

/// The desk's state, shared by every request.
pub struct Desk {
    pub(crate) gate: Gate,
    pub(crate) client: Client,
    pub(crate) log: LogVerifier,
    pub(crate) identity_path: PathBuf,
    identity: RwLock<Option<Arc<Identity>>>,
    me: RwLock<Option<Principal>>,
    language: RwLock<Language>,
    /// The one message the next page shows (after a form's redirect).
    flash: std::sync::Mutex<Option<Flash>>,
    /// Ciphertext fetched for previews, by object id; the folder goes
    /// when the desk stops.
    pub(crate) scratch: tempfile::TempDir,
    pub(crate) inbox: Inbox,
    /// Each case as last opened (keys and labels), for its files' pages.
    pub(crate) opened: std::sync::Mutex<std::collections::HashMap<String, Arc<OpenedCase>>>,
    /// One lock per object being fetched into the scratch folder.
    fetching: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("server", &self.client.base())
            .finish_non_exhaustive()
    }
}

/// A message for the next page: what a change did, or why it failed.
#[derive(Debug, Clone)]
pub(crate) struct Flash {
    /// Whether it reports a failure.
    pub(crate) failed: bool,
    /// The text, already in the desk's language.
    pub(crate) text: String,
}

impl Desk {
    pub(crate) fn new(
        client: Client,
        log: LogVerifier,
        identity_path: PathBuf,
        addr: SocketAddr,
        files: SocketAddr,
        token: Token,
    ) -> std::io::Result<Desk> {
        // Readable by its owner only (tempfile's default follows the
        // umask): it holds ciphertext, which object ids were viewed, and an
        // auditor's unpacked bundles.
        let scratch = tempfile::Builder::new().prefix("custos-desk-").tempdir()?;
        custos_durable::create_private_dir(scratch.path())?;
        Ok(Desk {
            gate: Gate::new(addr, files, token),
            client,
            log,
            identity_path,
            identity: RwLock::new(None),
            me: RwLock::new(None),
            language: RwLock::new(Language::default()),
            flash: std::sync::Mutex::new(None),
            scratch,
            inbox: Inbox::default(),
            opened: Default::default(),
            fetching: Default::default(),
        })
    }

    /// Take the unlocked identity, and learn its role from the registry.
    pub(crate) async fn unlocked(&self, identity: Identity) {
        let identity = Arc::new(identity);
        *self.identity.write().await = Some(identity.clone());
        // The role only chooses which pages to show; every action is
        // still the vault's policy to allow, and each fact shown is
        // proven from the log.
        let me = match self.client.principals(identity.signing_key()).await {
            Ok(list) => list.into_iter().find(|p| p.key_id == identity.key_id()),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the registry");
                None
            }
        };
        *self.me.write().await = me;
    }

    /// The identity, if unlocked.
    pub(crate) async fn identity(&self) -> Option<Arc<Identity>> {
        self.identity.read().await.clone()
    }

    /// Who the identity is in the registry, if it is registered.
    pub(crate) async fn me(&self) -> Option<Principal> {
        self.me.read().await.clone()
    }

    /// The desk's language.
    pub(crate) async fn language(&self) -> Language {
        *self.language.read().await
    }

    pub(crate) async fn set_language(&self, language: Language) {
        *self.language.write().await = language;
    }

    /// The lock of fetching object `id`.
    pub(crate) fn fetching(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.fetching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// Forget a case this identity no longer holds: its files are not
    /// served from what was fetched before.
    pub(crate) fn forget(&self, case_id: &str) {
        self.opened.lock().unwrap_or_else(|e| e.into_inner()).remove(case_id);
    }

    /// Leave a message for the next page.
    pub(crate) fn flash(&self, failed: bool, text: impl Into<String>) {
        *self.flash.lock().unwrap_or_else(|e| e.into_inner()) = Some(Flash {
            failed,
            text: text.into(),
        });
    }

    /// The message left for this page, once.
    pub(crate) fn take_flash(&self) -> Option<Flash> {
        self.flash.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
