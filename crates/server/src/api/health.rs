//! Liveness, readiness and metrics: `/healthz` and `/readyz` on the API,
//! and `/metrics` on a listener of its own. Request counts over time show
//! when people submit, so the metrics stay off the public address (an
//! onion service's visitors could otherwise watch the vault's activity)
//! and are served only where the operator asks, normally loopback.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::error::ApiError;
use super::AppState;

/// `/healthz` and `/readyz`.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up and answering.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The vault takes requests: it is not stopping and its log reads. A proxy
/// or orchestrator stops sending traffic when this fails.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "stopping" })),
        )
            .into_response();
    }
    let size = match state.vault.store.log_size() {
        Ok(size) => size,
        Err(e) => return ApiError::Store(e).into_response(),
    };
    // The chunk store is asked each time (one small request): a bucket
    // that cannot be reached means no upload or download would succeed.
    let probing = state.clone();
    let probed = tokio::task::spawn_blocking(move || probing.vault.store.probe_chunk_storage()).await;
    match probed {
        Ok(Ok(())) => Json(serde_json::json!({ "status": "ready", "log_size": size })).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the chunk store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "storage_unavailable", "log_size": size })),
            )
                .into_response()
        }
        Err(e) => ApiError::Store(crate::store::StoreError::Unavailable(e.to_string())).into_response(),
    }
}

/// Count every answered request by route template, and refuse new requests
/// once the server is stopping (health checks still answer, so that the
/// proxy sees the vault go).
pub(super) async fn count_and_drain(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(crate::metrics::Route::unmatched, crate::metrics::Route::matched);
    let method = req.method().clone();
    let health = route.as_str() == "/healthz" || route.as_str() == "/readyz";
    let resp = if state.is_draining() && !health {
        ApiError::ShuttingDown.into_response()
    } else {
        next.run(req).await
    };
    state.metrics.request(route, &method, resp.status().as_u16());
    resp
}

/// The metrics router: `/metrics`, plus the health checks.
fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .merge(routes())
        .with_state(state)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let store = &state.vault.store;
    let text = state.metrics.render(
        store.log_size()?,
        store.flush_count(),
        store.flush_latency(),
        store.chunk_storage_up(),
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Serve `/metrics` (and the health checks) on `listener` until `shutdown`.
pub async fn serve_metrics(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = crate::accept::Limits {
        stall: state.client_timeout,
        grace: std::time::Duration::from_secs(1),
        max_connections: state.max_connections,
    };
    crate::accept::serve_router(metrics_router(state), listener, limits, shutdown).await
}
