//! A TCP proxy for tests: it counts what passes each way, notes every
//! `Upload-Offset` it carries, and can cut every connection at a chosen
//! point, as a network going away in the middle of an upload.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A proxy in front of the server that counts what the client sends,
/// records the `Upload-Offset` of every request, and once the count passes
/// `cut_at` drops every open connection and refuses new ones for a while
/// (`u64::MAX`: never).
pub struct CutProxy {
    /// The address the browser is pointed at.
    pub url: String,
    state: Arc<ProxyState>,
}

struct ProxyState {
    upstream: Mutex<String>,
    cut_at: u64,
    /// The same, counting what the server sends back (a download).
    cut_answers_at: u64,
    sent: AtomicU64,
    received: AtomicU64,
    cut: AtomicBool,
    refuse_until: Mutex<Option<Instant>>,
    generation: tokio::sync::watch::Sender<u64>,
    /// (offset, sent after the cut?) of every request that carried one.
    offsets: Mutex<Vec<(u64, bool)>>,
    /// The address each connection came from.
    peers: Mutex<Vec<std::net::IpAddr>>,
}

/// How long the proxy refuses connections after the cut.
const OUTAGE: Duration = Duration::from_secs(2);

impl CutProxy {
    /// Proxy to `upstream` (host:port), cutting after `cut_at` bytes.
    pub async fn start(upstream: &str, cut_at: u64) -> Self {
        let proxy = Self::ahead(cut_at).await;
        proxy.forward_to(upstream);
        proxy
    }

    /// A proxy whose address is known before the server it forwards to
    /// ([`CutProxy::forward_to`]): the vault must be told the address its
    /// clients sign for (`public_url`) when it starts.
    pub async fn ahead(cut_at: u64) -> Self {
        Self::ahead_cutting(cut_at, u64::MAX).await
    }

    /// [`CutProxy::ahead`], cutting also once the server has sent back
    /// `cut_answers_at` bytes (in a download, say); one cut in all.
    pub async fn ahead_cutting(cut_at: u64, cut_answers_at: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(ProxyState {
            upstream: Mutex::new(String::new()),
            cut_at,
            cut_answers_at,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            cut: AtomicBool::new(false),
            refuse_until: Mutex::new(None),
            generation: tokio::sync::watch::channel(0).0,
            offsets: Mutex::new(Vec::new()),
            peers: Mutex::new(Vec::new()),
        });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((conn, peer)) = listener.accept().await {
                s.peers.lock().unwrap().push(peer.ip());
                let refused = s.refuse_until.lock().unwrap().is_some_and(|t| Instant::now() < t);
                if refused {
                    drop(conn);
                    continue;
                }
                tokio::spawn(relay(s.clone(), conn));
            }
        });
        CutProxy { url, state }
    }

    /// Forward from now on to `upstream` (host:port).
    pub fn forward_to(&self, upstream: &str) {
        *self.state.upstream.lock().unwrap() = upstream.to_owned();
    }

    /// Bytes the browser sent through the proxy.
    pub fn sent(&self) -> u64 {
        self.state.sent.load(Ordering::SeqCst)
    }

    /// Bytes the server sent back through the proxy.
    pub fn received(&self) -> u64 {
        self.state.received.load(Ordering::SeqCst)
    }

    /// Whether the cut has happened.
    pub fn was_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// The address each connection came from, refused ones too.
    pub fn peers(&self) -> Vec<std::net::IpAddr> {
        self.state.peers.lock().unwrap().clone()
    }

    /// `Upload-Offset` values the browser sent, with whether each came after
    /// the cut.
    pub fn offsets(&self) -> Vec<(u64, bool)> {
        self.state.offsets.lock().unwrap().clone()
    }
}

async fn relay(s: Arc<ProxyState>, mut client: TcpStream) {
    let upstream = s.upstream.lock().unwrap().clone();
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let mut gen = s.generation.subscribe();
    let born = *gen.borrow();
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let n = cr.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            let mut window = std::mem::take(&mut carry);
            let old = window.len();
            window.extend_from_slice(&buf[..n]);
            record_offsets(&s, &window, old);
            carry = window[window.len().saturating_sub(64)..].to_vec();
            let total = s.sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= s.cut_at && cut_all(&s) {
                return;
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = sr.read(&mut buf).await.unwrap_or(0);
            if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
            let total = s.received.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= s.cut_answers_at && cut_all(&s) {
                return;
            }
        }
    };
    let killed = async {
        while *gen.borrow() == born {
            if gen.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = killed => {}
    }
}

/// Make the one cut, if it has not been made: drop every open connection
/// and refuse new ones for [`OUTAGE`]. Whether this call made it.
fn cut_all(s: &ProxyState) -> bool {
    if s.cut.swap(true, Ordering::SeqCst) {
        return false;
    }
    *s.refuse_until.lock().unwrap() = Some(Instant::now() + OUTAGE);
    s.generation.send_modify(|g| *g += 1);
    true
}

/// Note every `Upload-Offset:` header that ends after byte `old` of
/// `window` (earlier ones were seen with the previous read).
fn record_offsets(s: &ProxyState, window: &[u8], old: usize) {
    const NAME: &[u8] = b"\r\nupload-offset:";
    let lower = window.to_ascii_lowercase();
    let mut i = 0;
    while let Some(pos) = lower[i..].windows(NAME.len()).position(|w| w == NAME) {
        let start = i + pos + NAME.len();
        let rest = &window[start..];
        let Some(end) = rest.iter().position(|&b| b == b'\r') else {
            break;
        };
        if start + end > old {
            if let Ok(v) = std::str::from_utf8(&rest[..end]).unwrap_or("").trim().parse::<u64>() {
                let after = s.cut.load(Ordering::SeqCst);
                s.offsets.lock().unwrap().push((v, after));
            }
        }
        i = start;
    }
}
