//! The HTTP API: the axum router, request authentication, the handlers and
//! the one error mapping. Handlers authenticate, ask `policy`, then write
//! through `store`; they never see plaintext and log nothing about who sent
//! a request.
//!
//! One file per resource: `cases`, `objects`, `grants`, `principals` (and
//! the intake parameters), `contacts` (lawyers' digest addresses),
//! `uploads` (tus, with `upload_writes`: the PATCHes being written), `log` and `case_log`, `backup`, `health`, `workflow`,
//! `disclosures`. What every write shares (canonical bodies, drafting events,
//! the recheck under the writer lock, append and flush) is `logged`;
//! `auth` and `body` come before any of them, `error` after.

pub mod auth;
mod backup;
mod body;
mod case_log;
mod cases;
mod contacts;
mod disclosures;
pub mod error;
mod grants;
mod health;
mod log;
mod logged;
mod objects;
mod principals;
mod upload_commit;
mod upload_writes;
mod uploads;
mod workflow;

pub use body::MIN_BODY_RATE;
pub(crate) use body::{read_body, BodyBudget};
/// The API's bodies live in the core crate: the auditor reads them too.
pub use custos_core::wire;
pub use health::serve_metrics;
pub use upload_writes::UploadWrites;
pub use uploads::expire_uploads;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::vault::Vault;
use custos_core::protocol::{MAX_JSON_BODY, MAX_PATCH_BODY};

impl AsRef<Vault> for AppState {
    fn as_ref(&self) -> &Vault {
        &self.vault
    }
}

/// Query parameters, with malformed ones mapped to `bad_request`.
pub(crate) struct Q<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Q<T> {
    type Rejection = error::ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Q(q.0))
            .map_err(|e| error::ApiError::BadRequest(e.body_text()))
    }
}

/// Shared state of the running server.
pub struct AppState {
    /// The vault.
    pub vault: Vault,
    /// Public base URLs (scheme and authority) clients sign against, when
    /// the server runs behind a proxy, an onion service or both; a request
    /// must be signed for one of them. Empty: the request's Host is used.
    pub public_urls: Vec<String>,
    /// Proof-of-work difficulty for opening a case (leading zero bits).
    pub stamp_bits: u8,
    /// Witnesses each new checkpoint is sent to.
    pub witnesses: crate::witness::push::Witnesses,
    /// Longest a client may stall ([`crate::config::CLIENT_TIMEOUT`] by default).
    pub client_timeout: std::time::Duration,
    /// Largest object accepted ([`custos_core::protocol::MAX_UPLOAD_LENGTH`] by default).
    pub max_upload_bytes: u64,
    /// How long a stopping server lets requests in flight finish.
    pub shutdown_grace: std::time::Duration,
    /// Counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Set once the server has been told to stop: new requests are refused
    /// while those in flight finish.
    pub draining: std::sync::atomic::AtomicBool,
    /// The base URLs of the addresses the server listens on, set by
    /// [`serve`]: what requests are signed for when no public URL is set.
    pub listen_urls: std::sync::OnceLock<Vec<String>>,
    /// Most connections served at once.
    pub max_connections: usize,
    /// The bytes of request bodies held at once, as they arrive.
    pub body_budget: Arc<body::Budget>,
    /// Most ciphertext one case may hold, stored and being uploaded.
    pub max_case_bytes: u64,
    /// Most uploads open at once on one case.
    pub max_case_open_uploads: usize,
    /// The lawyers' digests, when the operator set a schedule (see
    /// [`crate::digest::Digests::from_settings`], which reads the relay's
    /// credentials); `None`: none are sent.
    pub digests: Option<Arc<crate::digest::Digests>>,
    /// tus PATCHes received whose writes are under way.
    pub upload_writes: Arc<UploadWrites>,
}

impl AppState {
    /// The state of a server for `vault` run with `settings`.
    pub fn new(vault: Vault, settings: &crate::config::Settings) -> AppState {
        AppState {
            vault,
            public_urls: settings.public_urls.clone(),
            stamp_bits: settings.stamp_bits,
            witnesses: crate::witness::push::Witnesses::new(settings.witnesses.clone()),
            client_timeout: settings.client_timeout,
            max_upload_bytes: settings.max_upload_bytes,
            shutdown_grace: settings.shutdown_grace,
            metrics: Default::default(),
            draining: Default::default(),
            listen_urls: Default::default(),
            max_connections: settings.max_connections,
            body_budget: Arc::new(body::Budget::new(settings.max_body_bytes_in_flight)),
            max_case_bytes: settings.max_case_bytes,
            max_case_open_uploads: settings.max_case_open_uploads,
            digests: None,
            upload_writes: Default::default(),
        }
    }

    /// Whether the server is stopping.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The complete router.
pub fn router(state: Arc<AppState>) -> Router {
    let patch = Router::new()
        .route(
            auth::TUS_UPLOAD_ROUTE,
            axum::routing::patch(uploads::patch)
                .head(uploads::head)
                .delete(uploads::terminate),
        )
        .layer(DefaultBodyLimit::max(MAX_PATCH_BODY));
    let json = Router::new()
        .route("/v1/intake", get(principals::intake))
        .route("/v1/cases", post(cases::create_case).get(cases::list_cases))
        .route("/v1/cases/{case}", get(cases::case_detail))
        .route(
            "/v1/cases/{case}/uploads",
            post(uploads::create).options(uploads::options),
        )
        .route("/v1/cases/{case}/uploads/{upload}/commit", post(upload_commit::commit))
        .route("/v1/cases/{case}/objects/{object}", get(objects::download))
        .route("/v1/cases/{case}/export", post(objects::export))
        .route("/v1/cases/{case}/log", get(case_log::case_log))
        .route("/v1/cases/{case}/withdraw", post(cases::withdraw))
        .route("/v1/cases/{case}/workflow", post(workflow::change))
        .route("/v1/cases/{case}/disclosures", post(disclosures::disclose))
        .route("/v1/cases/{case}/export/objects/{object}", get(objects::export_object))
        .route("/v1/cases/{case}/grants", post(grants::grant))
        .route("/v1/cases/{case}/grants/{key}", axum::routing::delete(grants::revoke))
        .route(
            "/v1/principals",
            get(principals::list_principals).post(principals::add_principal),
        )
        .route(
            "/v1/principals/{key}",
            axum::routing::delete(principals::remove_principal),
        )
        .route(
            "/v1/principals/{key}/contact",
            axum::routing::put(contacts::set_contact),
        )
        .route("/v1/vault/backup", get(backup::backup))
        .route("/v1/log/checkpoint", get(log::checkpoint))
        .route("/v1/log/entries", get(log::entries))
        .route("/v1/log/inclusion", get(log::inclusion))
        .route("/v1/log/consistency", get(log::consistency))
        .route("/v1/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY));
    patch
        .merge(json)
        .merge(crate::web::routes())
        .merge(health::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            health::count_and_drain,
        ))
        .with_state(state)
}

/// Serve on `listener` until `shutdown` completes.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let pruner = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = state.vault.store.prune_nonces(custos_core::custody::unix_now()) {
                    tracing::warn!(error = %e, "could not prune expired nonces");
                }
                match expire_uploads(&state.vault.store, custos_core::custody::unix_now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(uploads = n, "dropped uploads that expired"),
                    Err(e) => tracing::warn!(error = %e, "could not drop expired uploads"),
                }
                let store = &state.vault.store;
                state
                    .upload_writes
                    .forget_gone(|upload| store.has_upload(upload).unwrap_or(true));
                if state.vault.store.has_garbage() {
                    match state.vault.store.collect_chunks().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(chunks = n, "removed chunks nothing refers to"),
                        Err(e) => tracing::warn!(error = %e, "could not collect unreferenced chunks"),
                    }
                }
            }
        })
    };
    let pusher = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                state.witnesses.woken().await;
                let store = &state.vault.store;
                // Only a checkpoint made durable goes to the witnesses.
                match store.flush().await.map(|()| store.durable_checkpoint()) {
                    Ok(Some(note)) => {
                        state.witnesses.cosign(store, &note).await;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "could not read the checkpoint to send to witnesses"),
                }
            }
        })
    };
    state.witnesses.wake();
    let digests = state
        .digests
        .clone()
        .map(|d| tokio::spawn(crate::digest::run(state.clone(), d)));
    let draining = {
        let state = state.clone();
        async move {
            shutdown.await;
            state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::info!("stopping: refusing new requests, finishing those in flight");
        }
    };
    if let Ok(addr) = listener.local_addr() {
        let _ = state.listen_urls.set(listen_urls(addr));
    }
    let limits = crate::accept::Limits {
        stall: state.client_timeout,
        grace: state.shutdown_grace,
        max_connections: state.max_connections,
    };
    let result = crate::accept::serve_router(router(state.clone()), listener, limits, draining).await;
    // PATCHes answered whose writes are still under way finish, within
    // one more grace of the same length.
    let _ = tokio::time::timeout(state.shutdown_grace, state.upload_writes.settle_all()).await;
    pruner.abort();
    pusher.abort();
    let _ = pruner.await;
    let _ = pusher.await;
    if let Some(d) = digests {
        d.abort();
        let _ = d.await;
    }
    state.vault.store.flush().await.map_err(std::io::Error::other)?;
    result
}

/// The base URLs requests to a server listening on `addr` are signed for,
/// when no public URL is set: the address itself, and `localhost` for a
/// loopback one. A server on every address (`0.0.0.0`, in a container, say)
/// is reached through the host's loopback; behind anything else it needs
/// `public_url`.
pub fn listen_urls(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    if addr.ip().is_unspecified() {
        vec![
            format!("http://127.0.0.1:{port}"),
            format!("http://[::1]:{port}"),
            format!("http://localhost:{port}"),
        ]
    } else if addr.ip().is_loopback() {
        vec![format!("http://{addr}"), format!("http://localhost:{port}")]
    } else {
        vec![format!("http://{addr}")]
    }
}

/// Bind `addr` and report the bound address (for port 0).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// No route: a signed request whose target is not canonical is told so
/// (as on any route), so that a client learns why its signed request
/// went nowhere; anything else is "not found".
async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> error::ApiError {
    let signed = headers.contains_key("signature") || headers.contains_key("signature-input");
    if signed && auth::check_target(&uri, None).is_err() {
        return error::ApiError::TargetNotCanonical;
    }
    error::ApiError::NotFound("route")
}

/// The OpenAPI description of this API.
async fn openapi() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}
