//! Serving a router on a TCP listener with the limits every custos server
//! keeps (the vault's API, its metrics, the witness): HTTP/1.1, a timer on
//! request headers and idle connections, a cap on connections, and a
//! graceful stop. It owns the accept
//! loop and nothing about what is served. axum's own `serve` sets no timer,
//! so a client could hold a connection for ever by sending its headers one
//! byte at a time, and opens every connection it is offered.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

/// The limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest a client may take to send a request's headers, and longest
    /// a new connection may stay silent, before it is closed.
    pub stall: Duration,
    /// How long a stopping server lets requests in flight finish.
    pub grace: Duration,
    /// Most connections served at once. One more is told
    /// `503 too_many_connections` and closed at once, before anything of
    /// its request is read.
    pub max_connections: usize,
}

/// The answer to a connection over [`Limits::max_connections`]: written
/// as is, without reading the request, since serving HTTP on it would take
/// the very resources the cap protects. Clients read an early answer.
const TOO_MANY: &str = concat!(
    "HTTP/1.1 503 Service Unavailable\r\n",
    "content-type: application/json\r\n",
    "custos-error: too_many_connections\r\n",
    "retry-after: 5\r\n",
    "connection: close\r\n",
    "content-length: 103\r\n",
    "\r\n",
    r#"{"error":"too_many_connections","message":"the vault is serving all the connections it can; try again"}"#,
);

/// How long the refusal of a connection over the cap may take.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// Serve `app` on `listener` until `shutdown` completes, then let the
/// requests in flight finish for at most `limits.grace`. The peer's address
/// is dropped the moment the connection is accepted: nothing downstream
/// can log it.
pub async fn serve_router(
    app: Router,
    listener: tokio::net::TcpListener,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    // HTTP/1.1 only. hyper's header timer also closes an idle keep-alive
    // connection, but an HTTP/2 connection that has sent its preface may
    // idle for ever and hold its slot; clients that want HTTP/2 get it
    // from the TLS proxy in front, which speaks HTTP/1.1 to custos.
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.stall);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let stall = limits.stall;
        tokio::spawn(async move {
            let _slot = slot;
            // hyper's header timer starts with a request's first byte; a
            // connection that sends nothing at all is closed after as long.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(stall, stream.peek(&mut first)).await, Ok(Ok(1))) {
                return;
            }
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            // A client that goes away mid-request is not the server's error.
            let _ = watcher.watch(conn).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("stopped with requests still in flight after the grace period");
    }
    Ok(())
}

/// Answer a connection over the cap and close it. What the client sent
/// meanwhile is read and dropped for a moment before the socket closes: a
/// socket closed with unread data resets the connection, and the client
/// could lose the answer.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(REFUSAL_WRITE, async {
        stream.write_all(TOO_MANY.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_declares_its_own_length() {
        let (head, body) = TOO_MANY.split_once("\r\n\r\n").unwrap();
        let declared: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(declared, body.len());
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "too_many_connections");
    }
}
