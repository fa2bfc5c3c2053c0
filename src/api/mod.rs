//! The HTTP API: the axum router, request authentication, the handlers and
//! the one error mapping. Handlers authenticate, ask `policy`, then write
//! through `store`; they never see plaintext and log nothing about who sent
//! a request.

pub mod auth;
mod backup;
pub mod error;
mod handlers;
mod health;
mod uploads;

pub use health::serve_metrics;
pub use uploads::expire_uploads;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::vault::Vault;

/// Largest JSON request body: case creation with a few dozen envelopes and a
/// note fits in a few KiB; 256 KiB leaves room without inviting abuse.
pub const MAX_JSON_BODY: usize = 256 * 1024;

/// Largest tus PATCH body. Clients send 4 MiB (one chunk); the server buffers
/// one PATCH to check its digest before storing it, so this bounds memory
/// per upload request.
pub const MAX_PATCH_BODY: usize = 8 * 1024 * 1024;

/// Largest object. Set high: evidence can be hours of video.
pub const MAX_UPLOAD_LENGTH: u64 = 64 * 1024 * 1024 * 1024;

/// Longest a client may send nothing: before its request's headers are
/// complete (hyper then closes the connection), or between two pieces of
/// a body (`408 body_timeout`). A client that trickles or stalls would
/// otherwise hold a connection, and a buffer, for ever (slowloris). 30 s of
/// silence is far beyond a slow Tor circuit's pauses, and the clients
/// resume a cut upload from the vault's offset.
pub const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a stopping server lets requests in flight finish.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Most log entries returned by one `entries` request.
pub const MAX_ENTRIES_PER_PAGE: u64 = 1000;

/// A request body, with axum's rejections (too large, cut off) mapped to
/// the API's own error codes.
pub(crate) struct Body(pub axum::body::Bytes);

impl axum::extract::FromRequest<Arc<AppState>> for Body {
    type Rejection = error::ApiError;
    /// Collected into one buffer sized from `Content-Length` (within the
    /// route's limit), so a PATCH costs its own size in memory once, not
    /// twice as when the pieces are gathered and then copied together.
    /// A body that stalls longer than the vault's body timeout is refused.
    async fn from_request(req: axum::extract::Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        use axum::RequestExt;
        use futures_util::StreamExt;
        let hint = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        // Never reserve more than the route could accept, whatever the
        // header claims: only tus PATCHes take more than a JSON body.
        let is_patch = req.method() == axum::http::Method::PATCH;
        let cap = if is_patch { MAX_PATCH_BODY } else { MAX_JSON_BODY };
        // Every body but a tus PATCH's is JSON, and must say so: a form or
        // text post from another site's page is refused, before it is read
        // when its length is declared.
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        let not_json =
            || error::ApiError::UnsupportedMedia("request bodies must be JSON, sent as Content-Type: application/json");
        if !is_patch && !json && hint > 0 {
            return Err(not_json());
        }
        let mut stream = req.into_limited_body().into_data_stream();
        let mut buf = Vec::with_capacity(hint.min(cap));
        loop {
            let Ok(next) = tokio::time::timeout(state.client_timeout, stream.next()).await else {
                return Err(error::ApiError::BodyTimeout(state.client_timeout.as_secs()));
            };
            let Some(piece) = next else { break };
            let piece = piece.map_err(|e| {
                if e.into_inner().is::<http_body_util::LengthLimitError>() {
                    error::ApiError::TooLarge("the request body is larger than this endpoint accepts".into())
                } else {
                    error::ApiError::BadRequest("the request body could not be read completely".into())
                }
            })?;
            buf.extend_from_slice(&piece);
        }
        if !is_patch && !buf.is_empty() && !json {
            return Err(not_json());
        }
        Ok(Body(buf.into()))
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
    /// Longest a client may stall ([`CLIENT_TIMEOUT`] by default).
    pub client_timeout: std::time::Duration,
    /// Largest object accepted ([`MAX_UPLOAD_LENGTH`] by default).
    pub max_upload_bytes: u64,
    /// How long a stopping server lets requests in flight finish.
    pub shutdown_grace: std::time::Duration,
    /// Counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Set once the server has been told to stop: new requests are refused
    /// while those in flight finish.
    pub draining: std::sync::atomic::AtomicBool,
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
            "/v1/cases/{case}/uploads/{upload}",
            axum::routing::patch(uploads::patch)
                .head(uploads::head)
                .delete(uploads::terminate),
        )
        .layer(DefaultBodyLimit::max(MAX_PATCH_BODY));
    let json = Router::new()
        .route("/v1/intake", get(handlers::intake))
        .route("/v1/cases", post(handlers::create_case).get(handlers::list_cases))
        .route("/v1/cases/{case}", get(handlers::case_detail))
        .route(
            "/v1/cases/{case}/uploads",
            post(uploads::create).options(uploads::options),
        )
        .route("/v1/cases/{case}/uploads/{upload}/commit", post(uploads::commit))
        .route("/v1/cases/{case}/objects/{object}", get(handlers::download))
        .route("/v1/cases/{case}/export", post(handlers::export))
        .route("/v1/cases/{case}/withdraw", post(handlers::withdraw))
        .route("/v1/cases/{case}/export/objects/{object}", get(handlers::export_object))
        .route("/v1/cases/{case}/grants", post(handlers::grant))
        .route("/v1/cases/{case}/grants/{key}", axum::routing::delete(handlers::revoke))
        .route(
            "/v1/principals",
            get(handlers::list_principals).post(handlers::add_principal),
        )
        .route(
            "/v1/principals/{key}",
            axum::routing::delete(handlers::remove_principal),
        )
        .route("/v1/vault/backup", get(backup::backup))
        .route("/v1/log/checkpoint", get(handlers::checkpoint))
        .route("/v1/log/entries", get(handlers::entries))
        .route("/v1/log/inclusion", get(handlers::inclusion))
        .route("/v1/log/consistency", get(handlers::consistency))
        .route("/v1/openapi.json", get(handlers::openapi))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY));
    patch
        .merge(json)
        .merge(crate::web::routes())
        .merge(health::routes())
        .fallback(handlers::not_found)
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
                if let Err(e) = state.vault.store.prune_nonces(auth::unix_now()) {
                    tracing::warn!(error = %e, "could not prune expired nonces");
                }
                match expire_uploads(&state.vault.store, auth::unix_now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(uploads = n, "dropped uploads that expired"),
                    Err(e) => tracing::warn!(error = %e, "could not drop expired uploads"),
                }
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
                match store.flush().await.and_then(|()| store.checkpoint()) {
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
    let draining = {
        let state = state.clone();
        async move {
            shutdown.await;
            state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::info!("stopping: refusing new requests, finishing those in flight");
        }
    };
    let result = accept_loop(
        router(state.clone()),
        listener,
        state.client_timeout,
        state.shutdown_grace,
        draining,
    )
    .await;
    pruner.abort();
    pusher.abort();
    let _ = pruner.await;
    let _ = pusher.await;
    state.vault.store.flush().await.map_err(std::io::Error::other)?;
    result
}

/// Serve connections until `shutdown`, then let those in flight finish
/// (for at most `grace`, [`SHUTDOWN_GRACE`] by default). axum's own `serve` sets no timer, so
/// a client could hold a connection for ever by sending its headers one
/// byte at a time; here hyper closes a connection whose request headers
/// take longer than `stall` ([`CLIENT_TIMEOUT`]). The peer's address is dropped
/// the moment the connection is accepted: nothing downstream can log it.
async fn accept_loop(
    app: Router,
    listener: tokio::net::TcpListener,
    stall: std::time::Duration,
    grace: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(stall);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            // hyper's header timer starts with a request's first byte; a
            // connection that sends nothing at all is closed after as long.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(stall, stream.peek(&mut first)).await, Ok(Ok(1))) {
                return;
            }
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            // A client that goes away mid-request is not the vault's error.
            let _ = watcher.watch(conn).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("stopped with requests still in flight after the grace period");
    }
    Ok(())
}

/// Bind `addr` and report the bound address (for port 0).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
