//! The writes of tus PATCHes still under way: a PATCH's chunks go to the
//! chunk store, then its upload's offset moves in sled and is made durable.
//! One upload's writes are applied in the order their PATCHes came.
//!
//! Where a write is cheap (chunks on this disk) a PATCH is answered once
//! its own write is durable. Where each write waits for the network
//! (chunks in a bucket) a PATCH is answered once its bytes are received
//! and checked and the upload's *previous* PATCH is durable, so that the
//! bucket writes one PATCH's chunks while the next one travels: with each
//! PATCH waiting for its own PUTs, the bucket sat idle between PATCHes and
//! ingest of 1 GiB into Garage stayed near 0.6x of a plain PUT
//! (bench/README.md, "Chunks on Garage"). A tus HEAD and the commit wait
//! for the write under way, so the offset a HEAD gives is durable, and no
//! object is acknowledged before every chunk's PUT is. A write that fails
//! is told once, to whichever comes first of the upload's next PATCH, a
//! HEAD (which says nothing of it but the durable offset) or the commit;
//! the writes queued behind it fail with it, without applying anything,
//! and are forgotten with it. A vault stopped with a write under way loses
//! at most that one PATCH, which the client sends again from the offset
//! its HEAD gives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::future::{BoxFuture, FutureExt, Shared};

use super::error::ApiError;
use crate::store::StoreError;

/// How one write ended, for every request that waits for it.
pub(super) type Outcome = Result<(), Arc<ApiError>>;

/// A write under way, which any number of requests may wait for.
pub(super) type Done = Shared<BoxFuture<'static, Outcome>>;

/// The last write under way of one upload.
#[derive(Clone)]
struct Tail {
    /// The upload's offset once this write is applied.
    end: u64,
    /// Which write this is, so that only it removes itself.
    id: u64,
    done: Done,
    /// How it ended, once it has: set by the write's own task, so that it
    /// is known even if no request ever waited for it.
    ended: Arc<OnceLock<Outcome>>,
}

/// The writes under way (and the failed ones not yet told), by upload id.
#[derive(Default)]
pub struct UploadWrites {
    tails: Mutex<HashMap<String, Tail>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl UploadWrites {
    fn tails(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tail>> {
        self.tails.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where `upload`'s next PATCH starts, given its durable offset: the
    /// end of its last write under way, if there is one.
    pub(super) fn next_offset(&self, upload: &str, durable: u64) -> u64 {
        self.tails().get(upload).map_or(durable, |tail| tail.end)
    }

    /// Start the write of a PATCH of `upload` from `start` to `end`, if
    /// `start` is still where the upload's next PATCH starts (`durable`
    /// reads the upload's durable offset). `write` gets the write it must
    /// follow, if any; it runs on its own task, so a client that goes away
    /// does not stop it. Returns the write and the one before it, or the
    /// offset the PATCH should have had.
    pub(super) fn start<F>(
        self: &Arc<Self>,
        upload: &str,
        (start, end): (u64, u64),
        durable: impl FnOnce() -> Result<u64, ApiError>,
        write: impl FnOnce(Option<Done>) -> F,
    ) -> Result<(Done, Option<Done>), ApiError>
    where
        F: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        let mut tails = self.tails();
        let before = tails.get(upload).cloned();
        let expected = match &before {
            Some(tail) => tail.end,
            None => durable()?,
        };
        if start != expected {
            return Err(super::error::conflict(
                "upload_offset_mismatch",
                format!("the upload is at offset {expected}, not {start}"),
            ));
        }
        let before = before.map(|tail| tail.done);
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ended = Arc::new(OnceLock::new());
        let (writes, name, ending) = (self.clone(), upload.to_owned(), ended.clone());
        let running = write(before.clone());
        let task = tokio::spawn(async move {
            let outcome = running.await.map_err(Arc::new);
            // Applied: the durable offset now says where the upload
            // stands. Failed: the write stays until its failure is told.
            let mut tails = writes.tails();
            let _ = ending.set(outcome.clone());
            if outcome.is_ok() && tails.get(&name).is_some_and(|tail| tail.id == id) {
                tails.remove(&name);
            }
            outcome
        });
        let done = async move {
            task.await.unwrap_or_else(|e| {
                Err(Arc::new(
                    StoreError::Integrity(format!("a PATCH's write failed: {e}")).into(),
                ))
            })
        }
        .boxed()
        .shared();
        let tail = Tail {
            end,
            id,
            done: done.clone(),
            ended,
        };
        tails.insert(upload.to_owned(), tail);
        Ok((done, before))
    }

    /// The failure of `upload`'s last write, if it has ended so, told once:
    /// the upload's writes are forgotten, and its durable offset says
    /// where it stands.
    pub(super) fn take_failure(&self, upload: &str) -> Option<ApiError> {
        let mut tails = self.tails();
        let failure = match tails.get(upload)?.ended.get()? {
            Err(e) => again(e),
            Ok(()) => return None,
        };
        tails.remove(upload);
        Some(failure)
    }

    /// Forget `upload`'s writes: a failure among them has been told, and
    /// those still under way wait for it and will fail without applying
    /// anything.
    pub(super) fn forget(&self, upload: &str) {
        self.tails().remove(upload);
    }

    /// Wait until `upload`'s last write has ended; its failure, if it
    /// failed (told as [`UploadWrites::take_failure`] tells it).
    pub(super) async fn settle(&self, upload: &str) -> Result<(), ApiError> {
        let last = self.tails().get(upload).map(|tail| tail.done.clone());
        if let Some(done) = last {
            let _ = done.await;
        }
        self.take_failure(upload).map_or(Ok(()), Err)
    }

    /// Forget the writes of uploads `exists` no longer knows (expired,
    /// terminated, or their sender's access revoked before anyone asked
    /// after a failed write), so that the map does not grow.
    pub fn forget_gone(&self, exists: impl Fn(&str) -> bool) {
        self.tails().retain(|upload, _| exists(upload));
    }

    /// Wait until no write is under way (a stopping server).
    pub async fn settle_all(&self) {
        let all: Vec<Done> = self.tails().values().map(|tail| tail.done.clone()).collect();
        futures_util::future::join_all(all).await;
    }
}

/// A write's failure, for one more request that waited for it: the same
/// code and the same message.
pub(super) fn again(e: &ApiError) -> ApiError {
    match e {
        ApiError::Store(StoreError::Unavailable(detail)) => StoreError::Unavailable(detail.clone()).into(),
        ApiError::Store(StoreError::Integrity(detail)) => StoreError::Integrity(detail.clone()).into(),
        ApiError::Store(other) => StoreError::Io(std::io::Error::new(
            other.io_kind().unwrap_or(std::io::ErrorKind::Other),
            other.to_string(),
        ))
        .into(),
        ApiError::NotFound(what) => ApiError::NotFound(what),
        ApiError::Conflict { code, message } => ApiError::Conflict {
            code,
            message: message.clone(),
        },
        other => StoreError::Integrity(format!("a PATCH's write failed: {other}")).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    /// A write that ends when told, how it is told.
    async fn held(until: oneshot::Receiver<Result<(), ApiError>>) -> Result<(), ApiError> {
        until.await.expect("the test tells every write how it ends")
    }

    #[tokio::test]
    async fn writes_follow_each_other_and_a_failure_is_reported_once() {
        let writes = Arc::new(UploadWrites::default());
        assert_eq!(writes.next_offset("u", 7), 7, "no write: the durable offset");

        let (end_a, a) = oneshot::channel();
        let (done_a, before) = writes.start("u", (0, 10), || Ok(0), |_| held(a)).unwrap();
        assert!(before.is_none());
        assert_eq!(writes.next_offset("u", 0), 10, "the next PATCH starts where A ends");
        // A PATCH at the old offset, or past A's end, is refused.
        for start in [0, 11] {
            let e = writes.start("u", (start, 20), || Ok(0), |_| held(oneshot::channel().1));
            assert!(matches!(
                e,
                Err(ApiError::Conflict {
                    code: "upload_offset_mismatch",
                    ..
                })
            ));
        }
        let (end_b, b) = oneshot::channel();
        let mut b_saw = None;
        let (done_b, before) = writes
            .start(
                "u",
                (10, 20),
                || Ok(0),
                |before| {
                    b_saw = before.clone();
                    held(b)
                },
            )
            .unwrap();
        assert!(before.is_some() && b_saw.is_some(), "B is given A to wait for");

        end_a.send(Ok(())).unwrap();
        done_a.await.unwrap();
        assert_eq!(writes.next_offset("u", 10), 20, "B is still the tail");
        end_b
            .send(Err(StoreError::Unavailable("no quorum".into()).into()))
            .unwrap();
        assert!(done_b.await.is_err());
        // Reported once, with its code, then the durable offset rules.
        let e = writes.settle("u").await.unwrap_err();
        assert_eq!(e.code().1, "storage_unavailable");
        assert!(writes.take_failure("u").is_none());
        writes.settle("u").await.unwrap();
        assert_eq!(
            writes.next_offset("u", 3),
            3,
            "the durable offset, once the failure is told"
        );
    }

    #[tokio::test]
    async fn a_failed_write_no_one_waited_for_is_told_and_forgotten_with_its_upload() {
        let writes = Arc::new(UploadWrites::default());
        for upload in ["kept", "gone"] {
            let (end, until) = oneshot::channel();
            let (done, _) = writes.start(upload, (0, 5), || Ok(0), |_| held(until)).unwrap();
            end.send(Err(StoreError::Unavailable("down".into()).into())).unwrap();
            // Nobody waits for it: its own task records how it ended.
            drop(done);
        }
        while writes.tails().values().any(|tail| tail.ended.get().is_none()) {
            tokio::task::yield_now().await;
        }
        writes.forget_gone(|upload| upload == "kept");
        assert_eq!(writes.next_offset("gone", 0), 0, "forgotten with its upload");
        assert_eq!(
            writes.next_offset("kept", 0),
            5,
            "an open upload's failure waits to be told"
        );
        let e = writes.take_failure("kept").expect("told to the next request");
        assert_eq!(e.code().1, "storage_unavailable");
        assert_eq!(writes.next_offset("kept", 0), 0);
    }
}
