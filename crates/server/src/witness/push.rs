//! The vault's side of witnessing: send each new checkpoint, with a
//! consistency proof from what each witness last cosigned, and keep the
//! cosignatures that verify. A witness that is down or refuses costs only its
//! cosignature; the vault keeps serving, and the refusal is logged for the
//! operator.

use crate::config::WitnessConfig;
use std::time::Duration;

use super::AddCheckpoint;
use crate::store::Store;
use custos_core::custody::checkpoint::split_note;
use custos_core::custody::unix_now;

/// How long one witness may take to answer before the vault gives up on it
/// for this checkpoint.
const WITNESS_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest answer read from a witness: cosignature lines are about a
/// hundred bytes each, so a witness that sends more is not one.
const MAX_WITNESS_ANSWER: usize = 16 * 1024;

/// Read an answer's body, refusing one longer than [`MAX_WITNESS_ANSWER`]
/// as it arrives, so a hostile witness cannot fill the vault's memory.
async fn read_answer(mut resp: reqwest::Response) -> Result<String, String> {
    if resp.content_length().is_some_and(|n| n > MAX_WITNESS_ANSWER as u64) {
        return Err(format!("answered with more than {MAX_WITNESS_ANSWER} bytes"));
    }
    let mut body = Vec::new();
    while let Some(piece) = resp.chunk().await.map_err(|e| format!("reading the answer: {e}"))? {
        if body.len() + piece.len() > MAX_WITNESS_ANSWER {
            return Err(format!("answered with more than {MAX_WITNESS_ANSWER} bytes"));
        }
        body.extend_from_slice(&piece);
    }
    String::from_utf8(body).map_err(|_| "answered with text that is not UTF-8".to_string())
}

/// The configured witnesses and what the vault knows of each.
#[derive(Debug, Default)]
pub struct Witnesses {
    list: Vec<WitnessConfig>,
    http: reqwest::Client,
    /// Per witness, the size it last cosigned, once known. Held for a
    /// whole round so that rounds do not interleave.
    known: tokio::sync::Mutex<Vec<Option<u64>>>,
    /// The latest checkpoint with the cosignatures gathered for it.
    latest: std::sync::Mutex<Option<String>>,
    wake: tokio::sync::Notify,
}

impl Witnesses {
    /// Witnesses to push to (none is allowed: then nothing is pushed).
    pub fn new(list: Vec<WitnessConfig>) -> Self {
        Witnesses {
            known: tokio::sync::Mutex::new(vec![None; list.len()]),
            list,
            ..Default::default()
        }
    }

    /// The configured witnesses' vkeys, for clients to require.
    pub fn vkeys(&self) -> Vec<String> {
        self.list.iter().map(|w| w.verifier.vkey()).collect()
    }

    /// Whether any witness is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Ask the background pusher to send the latest checkpoint.
    pub fn wake(&self) {
        if !self.is_empty() {
            self.wake.notify_one();
        }
    }

    /// Wait until [`Self::wake`] is called.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// `note` with every cosignature gathered for exactly its body.
    pub fn cosigned(&self, note: &str) -> String {
        let latest = self.latest.lock().expect("not poisoned");
        match latest.as_deref() {
            Some(cosigned) if same_body(cosigned, note) => cosigned.to_owned(),
            _ => note.to_owned(),
        }
    }

    /// Send `note` (durable, signed by the log) to every witness and return
    /// it with the cosignatures that verify appended.
    pub async fn cosign(&self, store: &Store, note: &str) -> String {
        self.round().await.cosign(store, note).await
    }

    /// Take the right to push. While a [`Round`] is held no other checkpoint
    /// is pushed, so a caller can append an event, then have exactly that
    /// checkpoint cosigned even if other writes land in between (a newer
    /// checkpoint pushed first would make the witnesses refuse the older).
    pub async fn round(&self) -> Round<'_> {
        Round {
            witnesses: self,
            known: self.known.lock().await,
        }
    }
    async fn push_one(
        &self,
        w: &WitnessConfig,
        store: &Store,
        note: &str,
        size: u64,
        known: &mut Option<u64>,
    ) -> Result<String, String> {
        let mut old = known.unwrap_or(0);
        // Two tries: the first may only teach us where the witness is.
        for _ in 0..2 {
            if old > size {
                return Err(format!(
                    "the witness has cosigned size {old}, beyond this log's {size}: the log was rolled back"
                ));
            }
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                store
                    .consistency_proof(old, size)
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?
            };
            let body = AddCheckpoint {
                old,
                proof,
                note: note.to_owned(),
            }
            .to_text();
            let resp = self
                .http
                .post(format!("{}/add-checkpoint", w.url))
                .body(body)
                .timeout(WITNESS_TIMEOUT)
                .send()
                .await
                .map_err(|e| format!("unreachable: {e}"))?;
            let status = resp.status();
            let is_size = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/x.tlog.size"));
            let text = read_answer(resp).await?;
            if status == reqwest::StatusCode::CONFLICT && is_size {
                old = text
                    .trim()
                    .parse()
                    .map_err(|_| "409 with a malformed size".to_string())?;
                *known = Some(old);
                continue;
            }
            if !status.is_success() {
                return Err(format!("refused with {status}: {}", text.trim()));
            }
            *known = Some(size);
            let valid: String = text
                .lines()
                .filter(|l| w.verifier.cosigned_at(&format!("{note}{l}\n"), unix_now()).is_some())
                .map(|l| format!("{l}\n"))
                .collect();
            if valid.is_empty() {
                return Err("answered without a valid cosignature".into());
            }
            return Ok(valid);
        }
        Err("the witness kept changing its size".into())
    }
}

/// The right to push checkpoints, held across one or more pushes.
pub struct Round<'a> {
    witnesses: &'a Witnesses,
    known: tokio::sync::MutexGuard<'a, Vec<Option<u64>>>,
}

impl Round<'_> {
    /// Send `note` to every witness that has not cosigned it yet and return
    /// it with all the cosignatures gathered for it.
    pub async fn cosign(&mut self, store: &Store, note: &str) -> String {
        let w = self.witnesses;
        if w.is_empty() {
            return note.to_owned();
        }
        let Some(size) = split_note(note)
            .ok()
            .and_then(|(body, _)| body.split('\n').nth(1).and_then(|s| s.parse::<u64>().ok()))
        else {
            return note.to_owned();
        };
        let already = w.cosigned(note);
        let mut out = already.clone();
        for (witness, known) in w.list.iter().zip(self.known.iter_mut()) {
            if witness.verifier.cosigned_at(&already, unix_now()).is_some() {
                continue;
            }
            match w.push_one(witness, store, note, size, known).await {
                Ok(line) => out.push_str(&line),
                Err(problem) => tracing::warn!(witness = witness.verifier.name(), %problem, "no cosignature"),
            }
        }
        *w.latest.lock().expect("not poisoned") = Some(out.clone());
        out
    }
}

fn same_body(a: &str, b: &str) -> bool {
    match (split_note(a), split_note(b)) {
        (Ok((x, _)), Ok((y, _))) => x == y,
        _ => false,
    }
}
