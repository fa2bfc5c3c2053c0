//! Reading a request's body, once its head is authenticated: within the
//! route's size limit, within the vault's budget of body bytes held at once,
//! and at a pace that keeps it moving. The body is buffered whole, because
//! a PATCH is checked against its signed digest before any of it counts,
//! in pieces of one store chunk (see [`ReadBody`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use tokio::time::Instant;

use super::error::ApiError;
use super::AppState;
use custos_core::protocol::{CHUNK_SIZE, MAX_JSON_BODY, MAX_PATCH_BODY};
use sha2::{Digest, Sha256};

/// Slowest pace a body may keep: in every stretch of the client timeout at
/// least this many bytes a second must arrive (or the rest of the body, if
/// less). 8 KiB/s carries a 4 MiB PATCH in under nine minutes over the
/// worst link a submitter is likely to have (a slow Tor circuit, EDGE); a
/// sender that trickles to hold its share of memory is cut off after one
/// stretch.
pub const MIN_BODY_RATE: u64 = 8 * 1024;

/// How many chunk-sized body buffers are kept for the next bodies once
/// their bytes are written (32 MiB: two PATCHes to a bucket, the one
/// being written and the next).
const BUFFERS_KEPT: usize = 8;

/// The vault's budget of request body bytes held at once, across all
/// requests, counted as the bytes arrive, so that a sender holds only what
/// it has really sent; and the chunk-sized buffers bodies are read into,
/// used again.
///
/// Why buffers are kept: once glibc frees a 4 MiB block it raises its mmap
/// threshold and serves the next ones from per-thread arenas, which keep
/// freed space in pieces. With PATCHes to a bucket written while the next
/// one arrives, bodies are freed on other threads than they were filled
/// on, and the vault's peak grew with the length of an upload (80 MiB for
/// 256 MiB, 94 MiB for 4 GiB, bench/README.md). Buffers that come back
/// here are never freed, so the peak is what is in flight, whatever the
/// upload's length.
pub struct Budget {
    limit: u64,
    used: AtomicU64,
    buffers: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Budget {
            limit,
            used: AtomicU64::new(0),
            buffers: Default::default(),
        }
    }

    /// An empty buffer with room for `room` bytes: a kept one when it is
    /// chunk-sized.
    fn buffer(&self, room: usize) -> Vec<u8> {
        if room == CHUNK_SIZE {
            let kept = self.buffers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            if let Some(mut buffer) = kept {
                buffer.clear();
                return buffer;
            }
        }
        Vec::with_capacity(room)
    }

    /// `filled` as a piece of a body; a chunk-sized buffer comes back here
    /// when the last copy of the piece is dropped.
    fn piece(self: &Arc<Self>, filled: Vec<u8>) -> Bytes {
        if filled.capacity() != CHUNK_SIZE {
            return filled.into();
        }
        Bytes::from_owner(Kept {
            buffer: filled,
            home: self.clone(),
        })
    }
}

/// A body's chunk-sized buffer on its way back to [`Budget`].
struct Kept {
    buffer: Vec<u8>,
    home: Arc<Budget>,
}

impl AsRef<[u8]> for Kept {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let mut kept = self.home.buffers.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < BUFFERS_KEPT {
            kept.push(std::mem::take(&mut self.buffer));
        }
    }
}

impl Budget {
    /// Whether `n` more bytes would fit now.
    fn has_room(&self, n: u64) -> bool {
        self.used.load(Ordering::SeqCst).saturating_add(n) <= self.limit
    }

    /// Take `n` bytes for `held`, if they fit.
    fn take(self: &Arc<Self>, held: &mut BodyBudget, n: u64) -> Result<(), ApiError> {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(n).filter(|total| *total <= self.limit)
            })
            .map_err(|_| ApiError::Busy)?;
        held.bytes += n;
        Ok(())
    }
}

/// One body's share of the [`Budget`], given back when it is dropped (with
/// the handler's arguments, once the request is answered).
pub struct BodyBudget {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Drop for BodyBudget {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// A body as read: pieces of [`CHUNK_SIZE`] bytes (the last one shorter),
/// cut at the same places as the chunks a PATCH's bytes are stored in.
///
/// Why not one buffer: a 16 MiB PATCH (four chunks, to a vault on a
/// bucket) in one allocation made the vault's memory grow with the length
/// of an upload. Once glibc frees a block that large it raises its mmap
/// threshold and serves the next ones from per-thread arenas, which keep
/// what is freed; the peak then grew with how many threads had held a
/// body. Chunk-sized pieces are the size that stayed flat when a PATCH
/// was one chunk (bench/README.md, "Chunks on Garage"), and they are what
/// the store hashes and writes anyway.
#[derive(Debug, Default)]
pub(crate) struct ReadBody {
    pieces: Vec<Bytes>,
}

impl ReadBody {
    /// The pieces, each [`CHUNK_SIZE`] long but the last.
    pub(crate) fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// How many bytes the body has.
    pub(crate) fn len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// Whether the body is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body's SHA-256, over its pieces in order.
    pub(crate) fn sha256(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for piece in &self.pieces {
            hash.update(piece);
        }
        hash.finalize().into()
    }

    /// The body as one buffer: without a copy when it is one piece, as a
    /// JSON body (at most [`MAX_JSON_BODY`]) always is.
    pub(crate) fn into_bytes(mut self) -> Bytes {
        match self.pieces.len() {
            0 => Bytes::new(),
            1 => self.pieces.pop().expect("one piece"),
            _ => self.pieces.concat().into(),
        }
    }
}

/// Cuts a body into [`ReadBody`]'s pieces as its frames arrive.
struct Cutter {
    /// Where its buffers come from and go back to.
    home: Arc<Budget>,
    body: ReadBody,
    /// The piece being filled.
    piece: Vec<u8>,
    /// Bytes the body may still bring (what it declared, or the route's
    /// limit, which the budget had room for when the body began): no
    /// piece is given room for more, and room is made one chunk at a
    /// time, so what is allocated runs at most one chunk ahead of what the
    /// budget has been charged (a whole PATCH ahead before pieces).
    left: u64,
}

impl Cutter {
    /// A body of at most `expected` bytes.
    fn new(expected: u64, home: Arc<Budget>) -> Self {
        let mut cutter = Cutter {
            home,
            body: ReadBody::default(),
            piece: Vec::new(),
            left: expected,
        };
        cutter.piece = cutter.next_piece();
        cutter
    }

    /// An empty piece with room for one chunk, or for what is left.
    fn next_piece(&self) -> Vec<u8> {
        self.home.buffer(self.left.min(CHUNK_SIZE as u64) as usize)
    }

    /// Add a frame's bytes.
    fn push(&mut self, mut frame: &[u8]) {
        while !frame.is_empty() {
            let take = frame.len().min(CHUNK_SIZE - self.piece.len());
            self.piece.extend_from_slice(&frame[..take]);
            frame = &frame[take..];
            self.left = self.left.saturating_sub(take as u64);
            if self.piece.len() == CHUNK_SIZE {
                let next = self.next_piece();
                let full = std::mem::replace(&mut self.piece, next);
                self.body.pieces.push(self.home.piece(full));
            }
        }
    }

    /// The body, once its last frame is in.
    fn finish(mut self) -> ReadBody {
        if !self.piece.is_empty() {
            let last = std::mem::take(&mut self.piece);
            self.body.pieces.push(self.home.piece(last));
        }
        self.body
    }
}

/// Read a request's body once it is authenticated. Refused: a body larger
/// than the route takes (`413`); one that would not fit the vault's budget
/// of bodies in flight, before any of it is read when its length is
/// declared (`503 server_busy`); one that sends nothing for the client
/// timeout, or brings less than [`MIN_BODY_RATE`] in any stretch of it
/// (`408 body_timeout`). Every body but a tus PATCH's must be JSON.
pub(crate) async fn read_body(
    state: &AppState,
    req: axum::extract::Request,
) -> Result<(ReadBody, BodyBudget), ApiError> {
    use axum::RequestExt;
    use futures_util::StreamExt;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // Only tus PATCHes take more than a JSON body.
    let is_patch = req.method() == axum::http::Method::PATCH;
    let cap = if is_patch { MAX_PATCH_BODY } else { MAX_JSON_BODY } as u64;
    if declared.is_some_and(|n| n > cap) {
        return Err(ApiError::TooLarge(
            "the request body is larger than this endpoint accepts".into(),
        ));
    }
    // Every body but a tus PATCH's is JSON, and must say so: a form or
    // text post from another site's page is refused before it is read.
    let json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let not_json = || ApiError::UnsupportedMedia("request bodies must be JSON, sent as Content-Type: application/json");
    if !is_patch && !json && declared.is_some_and(|n| n > 0) {
        return Err(not_json());
    }
    // A body of unknown length may grow to the route's limit.
    let expected = declared.unwrap_or(cap);
    if !state.body_budget.has_room(expected) {
        return Err(ApiError::Busy);
    }
    let mut held = BodyBudget {
        budget: state.body_budget.clone(),
        bytes: 0,
    };
    let stretch = state.client_timeout;
    let per_stretch = MIN_BODY_RATE.saturating_mul(stretch.as_secs().max(1));
    let timeout = || ApiError::BodyTimeout(stretch.as_secs());
    let mut stream = req.into_limited_body().into_data_stream();
    let mut body = Cutter::new(expected.min(cap), state.body_budget.clone());
    let mut received = 0u64;
    let (mut stretch_end, mut due) = (Instant::now() + stretch, per_stretch.min(expected));
    let mut last_piece = Instant::now();
    loop {
        let wait = tokio::time::timeout_at(stretch_end.min(last_piece + stretch), stream.next()).await;
        let next = match wait {
            Ok(next) => next,
            // A stretch ended: the body must have brought its due, and
            // must not have stalled for a whole stretch.
            Err(_) if received >= due && Instant::now() < last_piece + stretch => {
                stretch_end += stretch;
                due = received + per_stretch.min(expected.saturating_sub(received));
                continue;
            }
            Err(_) => return Err(timeout()),
        };
        let Some(piece) = next else { break };
        let piece = piece.map_err(|e| {
            if e.into_inner().is::<http_body_util::LengthLimitError>() {
                ApiError::TooLarge("the request body is larger than this endpoint accepts".into())
            } else {
                ApiError::BadRequest("the request body could not be read completely".into())
            }
        })?;
        state.body_budget.take(&mut held, piece.len() as u64)?;
        received += piece.len() as u64;
        last_piece = Instant::now();
        body.push(&piece);
    }
    let body = body.finish();
    if !is_patch && !body.is_empty() && !json {
        return Err(not_json());
    }
    Ok((body, held))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_cut_into_chunks_as_its_frames_come_and_no_buffer_is_larger() {
        let body: Vec<u8> = (0..2 * CHUNK_SIZE + CHUNK_SIZE / 2).map(|i| (i % 251) as u8).collect();
        for frame in [1, 16_384, 65_536 + 7, CHUNK_SIZE - 1, CHUNK_SIZE + 1] {
            for declared in [body.len() as u64, MAX_PATCH_BODY as u64] {
                let mut cutter = Cutter::new(declared, Arc::new(Budget::new(u64::MAX)));
                let mut biggest = cutter.piece.capacity();
                for f in body.chunks(frame) {
                    cutter.push(f);
                    biggest = biggest.max(cutter.piece.capacity());
                }
                let read = cutter.finish();
                let lens: Vec<usize> = read.pieces().iter().map(Bytes::len).collect();
                assert_eq!(lens, [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE / 2], "frames of {frame}");
                assert!(
                    biggest <= CHUNK_SIZE,
                    "a buffer of {biggest} bytes for frames of {frame}"
                );
                assert_eq!(read.sha256(), <[u8; 32]>::from(Sha256::digest(&body)));
                assert_eq!(read.into_bytes(), body);
            }
        }
        // A small body takes only the room it declared, in one piece.
        let mut cutter = Cutter::new(10, Arc::new(Budget::new(u64::MAX)));
        assert_eq!(cutter.piece.capacity(), 10);
        cutter.push(b"0123456789");
        let read = cutter.finish();
        assert_eq!(read.pieces().len(), 1);
        assert!(Cutter::new(0, Arc::new(Budget::new(u64::MAX))).finish().is_empty());
    }

    #[test]
    fn chunk_buffers_come_back_and_are_used_again_up_to_a_few() {
        let home = Arc::new(Budget::new(u64::MAX));
        let body: Vec<u8> = (0..(BUFFERS_KEPT + 2) * CHUNK_SIZE).map(|i| (i % 253) as u8).collect();
        let read = |home: &Arc<Budget>| {
            let mut cutter = Cutter::new(body.len() as u64, home.clone());
            cutter.push(&body);
            cutter.finish()
        };
        let first = read(&home);
        let places: Vec<*const u8> = first.pieces().iter().map(|p| p.as_ptr()).collect();
        assert_eq!(first.into_bytes(), body, "the pieces hold the body");
        let kept = home.buffers.lock().unwrap().len();
        assert_eq!(kept, BUFFERS_KEPT, "no more than a few are kept");
        let second = read(&home);
        assert!(
            home.buffers.lock().unwrap().is_empty(),
            "the next body took the kept buffers"
        );
        let reused = second.pieces().iter().filter(|p| places.contains(&p.as_ptr())).count();
        assert!(reused >= BUFFERS_KEPT, "the kept buffers are filled again: {reused}");
        assert_eq!(second.sha256(), <[u8; 32]>::from(Sha256::digest(&body)));
    }

    #[test]
    fn the_budget_counts_what_is_held_and_gives_it_back() {
        let budget = Arc::new(Budget::new(100));
        let mut a = BodyBudget {
            budget: budget.clone(),
            bytes: 0,
        };
        budget.take(&mut a, 60).unwrap();
        let mut b = BodyBudget {
            budget: budget.clone(),
            bytes: 0,
        };
        assert!(matches!(budget.take(&mut b, 41), Err(ApiError::Busy)));
        budget.take(&mut b, 40).unwrap();
        assert!(!budget.has_room(1));
        drop(a);
        assert!(budget.has_room(60) && !budget.has_room(61));
        drop(b);
        assert!(budget.has_room(100));
    }
}
