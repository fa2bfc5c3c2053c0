//! Witnesses: the C2SP `tlog-witness` service (`custos witness serve`) that
//! cosigns a log's checkpoints only when each is consistent with the last one
//! it cosigned, and (`push`) the vault side that sends every new checkpoint
//! to the configured witnesses and keeps their cosignatures. A witness run by
//! another organisation makes a forked or rewritten vault log detectable by
//! anyone who requires its cosignature.

pub mod push;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::vault::{read_key_file, write_key_file, VaultError};
use custos_core::custody::checkpoint::{split_note, Checkpoint, LogVerifier};
use custos_core::custody::cosignature::{WitnessSigner, WitnessVerifier};
use custos_core::custody::merkle::{self, Hash};
use custos_core::custody::tlog_proof::{parse_decimal, take_hash_lines};
use custos_core::custody::unix_now;

/// A request holds a checkpoint of a few hundred bytes and at most 63 proof
/// hashes; 16 KiB is generous and keeps hostile bodies small.
pub const MAX_ADD_CHECKPOINT_BODY: usize = 16 * 1024;

const KEY_FILE: &str = "witness.key";
const STATE_FILE: &str = "witness-state.json";

/// The latest checkpoint a witness cosigned for one log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Seen {
    /// Tree size.
    pub size: u64,
    /// Root hash, base64.
    pub root: String,
}

/// What the witness remembers, by log origin. Written to disk before any
/// cosignature is returned.
#[derive(Debug, Default, Serialize, Deserialize)]
struct WitnessState {
    logs: BTreeMap<String, Seen>,
}

/// Why a witness refused a checkpoint; each maps to the status the
/// tlog-witness spec gives it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The request body is not in the protocol's format (400).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The witness does not follow this log (404).
    #[error("unknown log origin")]
    UnknownLog,
    /// No signature from the log's key (403).
    #[error("checkpoint is not signed by the log's key")]
    NotSigned,
    /// The old size does not match what the witness last cosigned (409).
    #[error("old size does not match; the witness last cosigned size {0}")]
    WrongOldSize(u64),
    /// Same size as last cosigned, different root: a fork (409).
    #[error("same size as the last cosigned checkpoint but a different root")]
    Fork,
    /// The consistency proof does not verify (422).
    #[error("consistency proof does not verify: the log was rewritten or forked")]
    Inconsistent,
    /// The state could not be saved, so nothing was cosigned (500).
    #[error("could not save the witness state")]
    Storage,
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::UnknownLog => StatusCode::NOT_FOUND,
            Refusal::NotSigned => StatusCode::FORBIDDEN,
            Refusal::WrongOldSize(_) | Refusal::Fork => StatusCode::CONFLICT,
            Refusal::Inconsistent => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::Storage => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::WrongOldSize(size) => (
                self.status(),
                [(header::CONTENT_TYPE, "text/x.tlog.size")],
                format!("{size}\n"),
            )
                .into_response(),
            other => (
                other.status(),
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{other}\n"),
            )
                .into_response(),
        }
    }
}

/// A parsed add-checkpoint request body.
#[derive(Debug)]
pub struct AddCheckpoint {
    /// Size of the checkpoint the client believes the witness last cosigned.
    pub old: u64,
    /// Consistency proof from `old` to the new size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub note: String,
}

impl AddCheckpoint {
    /// The request body text.
    pub fn to_text(&self) -> String {
        let mut out = format!("old {}\n", self.old);
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note);
        out
    }

    /// Parse a request body.
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        let (first, rest) = text
            .split_once('\n')
            .ok_or(Refusal::Malformed("missing old size line"))?;
        let old = first
            .strip_prefix("old ")
            .and_then(parse_decimal)
            .ok_or(Refusal::Malformed("old size line"))?;
        let (proof, rest) = take_hash_lines(rest).map_err(Refusal::Malformed)?;
        Ok(AddCheckpoint {
            old,
            proof,
            note: rest.to_owned(),
        })
    }
}

/// A witness: its key, the logs it follows, and its durable state.
pub struct Witness {
    signer: WitnessSigner,
    logs: HashMap<String, LogVerifier>,
    state_path: PathBuf,
    /// Shared with the blocking write that saves it, which holds the lock
    /// until the state is durable even if the request is dropped meanwhile.
    state: std::sync::Arc<tokio::sync::Mutex<WitnessState>>,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Witness({})", self.signer.verifier().vkey())
    }
}

impl Witness {
    /// Open (or create) a witness in `dir`: its key is made on first use
    /// and kept in `witness.key` (mode 0600); its state in
    /// `witness-state.json`.
    pub fn open(dir: &Path, name: &str, logs: &[LogVerifier]) -> Result<Self, VaultError> {
        custos_durable::create_private_dir(dir)?;
        let key_path = dir.join(KEY_FILE);
        let state_path = dir.join(STATE_FILE);
        let key = if key_path.exists() {
            // A witness that forgot what it cosigned could be made to cosign
            // a rewritten history under the same key: refuse to go on.
            if !state_path.exists() {
                return Err(VaultError::Invalid(format!(
                    "{} is missing but {} exists: a witness that lost its state must start again with a new key and name",
                    state_path.display(),
                    key_path.display()
                )));
            }
            read_key_file(&key_path)?
        } else {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            let empty = serde_json::to_vec_pretty(&WitnessState::default()).expect("state serialises");
            custos_durable::write_atomically(&state_path, &empty)?;
            // Whole and durably named (write_key_file syncs the folder):
            // without it a witness would come back with a new key and an
            // empty state, one that cosigns any history.
            write_key_file(&key_path, &key)?;
            key
        };
        let signer = WitnessSigner::new(name, key).map_err(|e| VaultError::Invalid(e.to_string()))?;
        let state: WitnessState = serde_json::from_slice(&std::fs::read(&state_path)?)
            .map_err(|e| VaultError::Invalid(format!("{}: {e}", state_path.display())))?;
        Ok(Witness {
            signer,
            logs: logs.iter().map(|l| (l.name().to_owned(), l.clone())).collect(),
            state_path,
            state: std::sync::Arc::new(tokio::sync::Mutex::new(state)),
        })
    }

    /// The witness's public key.
    pub fn verifier(&self) -> WitnessVerifier {
        self.signer.verifier()
    }

    /// What the witness last cosigned for `origin`.
    pub async fn seen(&self, origin: &str) -> Option<Seen> {
        self.state.lock().await.logs.get(origin).cloned()
    }

    /// The add-checkpoint operation: check the request against the last
    /// cosigned checkpoint, persist the new one, and return the cosignature
    /// line. The check and the write happen under one lock, so two requests
    /// cannot roll the state back.
    pub async fn add_checkpoint(&self, req: &AddCheckpoint) -> Result<String, Refusal> {
        let (body, _) = split_note(&req.note).map_err(|_| Refusal::Malformed("checkpoint is not a signed note"))?;
        let origin = body.split('\n').next().unwrap_or_default();
        let log = self.logs.get(origin).ok_or(Refusal::UnknownLog)?;
        let cp: Checkpoint = log.verify(&req.note).map_err(|_| Refusal::NotSigned)?;
        if req.old > cp.size {
            return Err(Refusal::Malformed("old size is larger than the checkpoint"));
        }
        let mut state = self.state.clone().lock_owned().await;
        let seen = state.logs.get(origin).cloned();
        let seen_size = seen.as_ref().map_or(0, |s| s.size);
        if req.old != seen_size {
            return Err(Refusal::WrongOldSize(seen_size));
        }
        if let Some(seen) = &seen {
            let seen_root = B64.decode(&seen.root).map_err(|_| Refusal::Storage)?;
            if cp.size == seen.size {
                if seen_root != cp.root {
                    return Err(Refusal::Fork);
                }
            } else {
                merkle::verify_consistency(seen.size, cp.size, &req.proof, &seen_root, &cp.root)
                    .map_err(|_| Refusal::Inconsistent)?;
            }
        } else if !req.proof.is_empty() {
            return Err(Refusal::Malformed("the proof must be empty when the old size is 0"));
        }
        let mut next = WitnessState {
            logs: state.logs.clone(),
        };
        next.logs.insert(
            origin.to_owned(),
            Seen {
                size: cp.size,
                root: B64.encode(cp.root),
            },
        );
        let bytes = serde_json::to_vec_pretty(&next).expect("state serialises");
        // Durable before it is cosigned. The fsync runs on a blocking
        // thread, which owns the lock until the state is saved and set: a
        // request dropped meanwhile (its client gone) cannot let another
        // check against the old state while this write lands.
        let path = self.state_path.clone();
        tokio::task::spawn_blocking(move || {
            custos_durable::write_atomically(&path, &bytes)?;
            *state = next;
            Ok::<_, std::io::Error>(())
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
        .map_err(|e| {
            tracing::error!(error = %e, "could not save the witness state");
            Refusal::Storage
        })?;
        tracing::info!(origin, size = cp.size, "cosigned");
        // A cosignature's time is C2SP's unsigned seconds; a clock before
        // 1970 is a broken clock, and signs 0 rather than wrap.
        Ok(self.signer.cosign(body, u64::try_from(unix_now()).unwrap_or(0)))
    }
}

/// The witness's HTTP interface: `POST /add-checkpoint`.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_ADD_CHECKPOINT_BODY))
        .with_state(witness)
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: axum::body::Bytes) -> Response {
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(_) => return Refusal::Malformed("body is not UTF-8").into_response(),
    };
    let result = match AddCheckpoint::parse(text) {
        Ok(req) => w.add_checkpoint(&req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(line) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response(),
        Err(refusal) => {
            tracing::warn!(%refusal, "refused a checkpoint");
            refusal.into_response()
        }
    }
}

/// The limits a witness serves with by default: the vault's header and
/// body timer, a short grace (a cosignature takes milliseconds), and a
/// connection cap sized for the few logs one witness serves.
pub const LIMITS: crate::accept::Limits = crate::accept::Limits {
    stall: crate::config::CLIENT_TIMEOUT,
    grace: std::time::Duration::from_secs(5),
    max_connections: 64,
};

/// Serve the witness on `listener` with `limits` until `shutdown`
/// completes: the same accept loop as the vault's (header timer,
/// connection cap), and a body that must arrive whole within
/// `limits.stall`.
pub async fn serve(
    witness: Arc<Witness>,
    listener: tokio::net::TcpListener,
    limits: crate::accept::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(witness).layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.stall));
    crate::accept::serve_router(app, listener, limits, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_core::custody::checkpoint::LogSigner;
    use custos_core::custody::merkle::MemoryTree;

    fn tree(leaves: &[&[u8]]) -> MemoryTree {
        let mut t = MemoryTree::default();
        for l in leaves {
            t.push(merkle::leaf_hash(l));
        }
        t
    }

    #[tokio::test]
    async fn cosigns_only_consistent_growth_and_remembers_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogSigner::new("example.org/log", SigningKey::from_bytes(&[1; 32])).unwrap();
        let w = Witness::open(dir.path(), "witness.example/w", &[log.verifier()]).unwrap();
        let v = w.verifier();
        let t3 = tree(&[b"a", b"b", b"c"]);
        let note3 = log.sign(3, t3.root_at(3));
        let req = |old, proof, note: &str| AddCheckpoint {
            old,
            proof,
            note: note.to_owned(),
        };
        let line = w.add_checkpoint(&req(0, vec![], &note3)).await.unwrap();
        assert!(v.cosigned_at(&format!("{note3}{line}"), unix_now()).is_some());
        // Stale old size: told where the witness is.
        assert_eq!(
            w.add_checkpoint(&req(0, vec![], &note3)).await,
            Err(Refusal::WrongOldSize(3))
        );
        // A fork at the same size.
        let fork = log.sign(3, tree(&[b"a", b"b", b"X"]).root_at(3));
        assert_eq!(w.add_checkpoint(&req(3, vec![], &fork)).await, Err(Refusal::Fork));
        // Growth with a proof against a rewritten history.
        let other = tree(&[b"a", b"X", b"c", b"d", b"e"]);
        let bad_proof = merkle::consistency_proof(3, 5, &mut |l, i| other.node(l, i))
            .unwrap()
            .unwrap();
        let note5_other = log.sign(5, other.root_at(5));
        assert_eq!(
            w.add_checkpoint(&req(3, bad_proof, &note5_other)).await,
            Err(Refusal::Inconsistent)
        );
        // Honest growth.
        let t5 = tree(&[b"a", b"b", b"c", b"d", b"e"]);
        let proof = merkle::consistency_proof(3, 5, &mut |l, i| t5.node(l, i))
            .unwrap()
            .unwrap();
        let note5 = log.sign(5, t5.root_at(5));
        w.add_checkpoint(&req(3, proof, &note5)).await.unwrap();
        // Unknown logs and other keys.
        let stranger = LogSigner::new("example.org/log", SigningKey::from_bytes(&[2; 32])).unwrap();
        assert_eq!(
            w.add_checkpoint(&req(5, vec![], &stranger.sign(5, t5.root_at(5))))
                .await,
            Err(Refusal::NotSigned)
        );
        let elsewhere = LogSigner::new("other.org/log", SigningKey::from_bytes(&[1; 32])).unwrap();
        assert_eq!(
            w.add_checkpoint(&req(0, vec![], &elsewhere.sign(1, [0; 32]))).await,
            Err(Refusal::UnknownLog)
        );
        // The state survives a restart, with the same key.
        drop(w);
        let w = Witness::open(dir.path(), "witness.example/w", &[log.verifier()]).unwrap();
        assert_eq!(w.verifier(), v);
        assert_eq!(w.seen("example.org/log").await.unwrap().size, 5);
        assert_eq!(
            w.add_checkpoint(&req(3, vec![], &note3)).await,
            Err(Refusal::WrongOldSize(5))
        );
        // Losing the state while keeping the key is refused.
        drop(w);
        std::fs::remove_file(dir.path().join(STATE_FILE)).unwrap();
        let err = Witness::open(dir.path(), "witness.example/w", &[log.verifier()]).unwrap_err();
        assert!(err.to_string().contains("new key"), "{err}");
    }

    #[test]
    fn request_bodies_round_trip_and_bad_ones_are_refused() {
        let r = AddCheckpoint {
            old: 7,
            proof: vec![[1; 32], [2; 32]],
            note: "o\n1\nAA==\n\n\u{2014} o x\n".into(),
        };
        let back = AddCheckpoint::parse(&r.to_text()).unwrap();
        assert_eq!(
            (back.old, back.proof, back.note),
            (r.old, r.proof.clone(), r.note.clone())
        );
        for bad in [
            "",
            "old 01\n\nx",
            "old x\n\nx",
            "old 1\nAAAA\n\nx",
            "old 1\nnotbase64!\n\nx",
            "old 1\n",
        ] {
            assert!(AddCheckpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
