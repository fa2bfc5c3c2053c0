//! Reading a request's body, once its head is authenticated: within the
//! route's size limit, within the vault's budget of body bytes held at once,
//! and at a pace that keeps it moving. The body is buffered whole, because
//! a PATCH is checked against its signed digest before any of it counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use tokio::time::Instant;

use super::error::ApiError;
use super::AppState;
use custos_core::protocol::{MAX_JSON_BODY, MAX_PATCH_BODY};

/// Slowest pace a body may keep: in every stretch of the client timeout at
/// least this many bytes a second must arrive (or the rest of the body, if
/// less). 8 KiB/s carries a 4 MiB PATCH in under nine minutes over the
/// worst link a submitter is likely to have (a slow Tor circuit, EDGE); a
/// sender that trickles to hold its share of memory is cut off after one
/// stretch.
pub const MIN_BODY_RATE: u64 = 8 * 1024;

/// The vault's budget of request body bytes held at once, across all
/// requests, counted as the bytes arrive, so that a sender holds only what
/// it has really sent.
pub struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Budget {
            limit,
            used: AtomicU64::new(0),
        }
    }

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

/// Read a request's body once it is authenticated. Refused: a body larger
/// than the route takes (`413`); one that would not fit the vault's budget
/// of bodies in flight, before any of it is read when its length is
/// declared (`503 server_busy`); one that sends nothing for the client
/// timeout, or brings less than [`MIN_BODY_RATE`] in any stretch of it
/// (`408 body_timeout`). Every body but a tus PATCH's must be JSON.
pub(crate) async fn read_body(state: &AppState, req: axum::extract::Request) -> Result<(Bytes, BodyBudget), ApiError> {
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
    let mut buf = Vec::with_capacity(expected.min(cap) as usize);
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
        buf.extend_from_slice(&piece);
    }
    if !is_patch && !buf.is_empty() && !json {
        return Err(not_json());
    }
    Ok((buf.into(), held))
}

#[cfg(test)]
mod tests {
    use super::*;

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
