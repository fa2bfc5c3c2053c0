//! custos-desk: `custos desk`, a local app in the browser for lawyers,
//! auditors and admins. The identity is unlocked in this process; the
//! browser only draws. Every request to the vault goes through the same
//! client as the CLI (`custos-client`), so it is signed and every fact is
//! proven from the signed log; plaintext stays in this process's memory
//! unless the user saves a file.
//!
//! How a request flows: [`guard`] checks the Host header, the session
//! (its cookie and the secret first segment of every page's path, or the
//! one-time token that gives both) and, on a change, the Origin, and adds
//! the headers every answer carries (strict CSP, no caching; decrypted
//! files are served from a second loopback port, an origin of their own);
//! then the page's handler reads [`state::Desk`] (the client, the log key,
//! the unlocked identity, the language) and answers with HTML from
//! [`page`], in the words of [`strings`]. The pages of each role
//! live apart: `lawyer/` (inbox, case, files), `auditor`, `admin`; `unlock`
//! is the passphrase form. There is no script at all in the desk's pages:
//! forms and links do everything, so the CSP can forbid scripts outright.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod auditor;
mod error;
mod gate;
mod guard;
mod index;
mod lawyer;
mod page;
mod state;
mod strings;
mod unlock;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;

use custos_client::trust::TrustStore;
use custos_client::{Client, ClientError};
use custos_core::identity::Identity;

pub use self::state::Desk;

/// What `custos desk` is started with.
pub struct DeskOptions {
    /// The vault's URL.
    pub server: String,
    /// The proxy the vault is reached through (`--proxy`), if any.
    pub proxy: Option<String>,
    /// The identity file.
    pub identity_path: PathBuf,
    /// The identity, when the terminal already unlocked it; otherwise the
    /// desk's own unlock form asks for the passphrase.
    pub identity: Option<Identity>,
    /// Where to listen: a loopback address (port 0 picks one).
    pub listen: SocketAddr,
    /// Trust pins and the last checkpoint accepted from each vault.
    pub trust: TrustStore,
}

/// Why the desk did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listen address is not loopback.
    #[error("the desk listens on loopback only; {0} is not a loopback address")]
    NotLoopback(SocketAddr),
    /// The vault could not be reached or did not verify.
    #[error(transparent)]
    Vault(#[from] ClientError),
    /// The socket could not be opened.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// The scratch folder could not be made.
    #[error("cannot make the desk's scratch folder: {0}")]
    Scratch(std::io::Error),
}

/// A running desk.
pub struct Running {
    /// The first URL, one-time token included: what `desk: ` prints and
    /// the browser opens.
    pub url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL holds the token: never printed by Debug.
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Stop serving, and wait until the server has stopped.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Start the desk: check the vault (pinning it as the CLI does), bind the
/// loopback address and serve. Returns once it listens.
pub async fn start(options: DeskOptions) -> Result<Running, StartError> {
    if !options.listen.ip().is_loopback() {
        return Err(StartError::NotLoopback(options.listen));
    }
    let client = Client::through(&options.server, options.proxy.as_deref())?.with_pins(options.trust.clone());
    let (_, trusted) = custos_client::flows::trusted_vault(&client, &options.trust, &[]).await?;
    let bind = |at: SocketAddr| async move {
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .map_err(|e| StartError::Listen(at, e))?;
        let addr = listener.local_addr().map_err(|e| StartError::Listen(at, e))?;
        Ok::<_, StartError>((listener, addr))
    };
    let (listener, addr) = bind(options.listen).await?;
    // The files' own origin: the same address, a port of its own.
    let (files_listener, files_addr) = bind(SocketAddr::new(options.listen.ip(), 0)).await?;
    let token = gate::Token::new();
    let url = format!("http://{addr}/login?token={}", token.reveal());
    let desk = Arc::new(
        Desk::new(client, trusted.log, options.identity_path, addr, files_addr, token).map_err(StartError::Scratch)?,
    );
    if let Some(identity) = options.identity {
        desk.unlocked(identity).await;
        lawyer::unlocked(&desk).await;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serve = |listener: tokio::net::TcpListener, app: Guarded, mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
        let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "the desk stopped");
        }
    };
    let pages = tokio::spawn(serve(listener, router(desk.clone()), stopped.clone()));
    let files = tokio::spawn(serve(files_listener, files_router(desk), stopped));
    let task = tokio::spawn(async move {
        let _ = pages.await;
        let _ = files.await;
    });
    Ok(Running { url, addr, stop, task })
}

/// A router behind its guard. The guard wraps the whole router, not
/// each route (`Router::layer`), so that it runs before routing: it
/// takes the session's secret segment off the path the router sees.
type Guarded = axum::middleware::FromFn<GuardFn, Arc<Desk>, Router, (State<Arc<Desk>>, axum::extract::Request)>;

/// The guards' one signature.
type GuardFn = fn(State<Arc<Desk>>, axum::extract::Request, axum::middleware::Next) -> guard::Guarding;

/// The files' origin: decrypted files, read-only, nothing else.
fn files_router(desk: Arc<Desk>) -> Guarded {
    let router = Router::new()
        .route("/cases/{case}/files/{object}", get(lawyer::view_file))
        .with_state(desk.clone());
    let guard: GuardFn = |s, r, n| Box::pin(guard::preview_guard(s, r, n));
    tower_layer::Layer::layer(&axum::middleware::from_fn_with_state(desk, guard), router)
}

fn router(desk: Arc<Desk>) -> Guarded {
    let router = Router::new()
        .route("/", get(page::home))
        .route("/style.css", get(page::style))
        .route("/lang", post(page::set_language))
        .route("/unlock", get(unlock::form).post(unlock::submit))
        .merge(lawyer::routes())
        .merge(auditor::routes())
        .merge(admin::routes())
        .with_state(desk.clone());
    let guard: GuardFn = |s, r, n| Box::pin(guard::guard(s, r, n));
    tower_layer::Layer::layer(&axum::middleware::from_fn_with_state(desk, guard), router)
}
