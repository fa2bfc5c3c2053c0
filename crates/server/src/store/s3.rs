//! Ciphertext chunks in an S3 bucket (a Garage cluster across sites, or
//! any S3 service), through the `object_store` crate. Each chunk is one
//! object named `chunks/<sha256 hex>`; the bucket holds nothing else of
//! the vault's. Owns the S3 client and its requests; knows nothing of
//! objects, uploads or the log, which stay in sled on the vault.

use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};
use zeroize::Zeroizing;

use super::chunks::ChunkStore;
use super::{Hash, Result, StoreError};

/// Where in the bucket chunks are kept.
const PREFIX: &str = "chunks";

/// The object that says which vault the bucket's chunks belong to: the
/// vault's log vkey. Each vault's collector deletes the chunks it does not
/// refer to, so a second vault on the same bucket would delete the first
/// one's evidence; a vault opens only on a bucket marked with its own key
/// (or, the first time, an unmarked one, which it then marks).
const OWNER: &str = "custos-vault";

/// Longest one request to the store may take. A chunk is at most 4 MiB;
/// a minute is room for a slow link between sites, and short enough that
/// a hung store answers `storage_unavailable` before a client gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest a connection to the store may take to open: a site that is
/// down should be known as down in seconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Retries of a failed request, and the time they may take in all. Short:
/// the client of the vault retries too (uploads and downloads resume), and
/// a store without quorum must turn into a plain `503` quickly rather than
/// hold the request and its memory for minutes (object_store's default).
const RETRIES: usize = 2;
const RETRY_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the chunks go and the key that may write them. The secret is
/// zeroized on drop (every copy) and never printed.
#[derive(Clone)]
pub struct S3Location {
    /// The S3 API's URL (`https://...`, or `http://` on loopback and in a
    /// private network such as a WireGuard mesh).
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region the store answers for (Garage's `s3_region`).
    pub region: String,
    /// The access key's id.
    pub access_key_id: String,
    /// The access key's secret.
    pub secret_access_key: Zeroizing<String>,
}

impl std::fmt::Debug for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "S3Location({}, bucket {}, secret hidden)",
            self.endpoint, self.bucket
        )
    }
}

/// The bucket, and a small runtime of its own that drives its requests:
/// the store is synchronous and is called from blocking threads (the
/// async rule in ARCHITECTURE.md), which wait here for the bucket's answer.
pub(super) struct S3Chunks {
    bucket: AmazonS3,
    runtime: Option<tokio::runtime::Runtime>,
}

impl S3Chunks {
    /// Set up the client; nothing is sent until the first request.
    pub(super) fn new(location: &S3Location) -> Result<Self> {
        // reqwest is built without a TLS provider of its own so that the
        // process keeps one: ring, as everywhere else in the vault.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bucket = AmazonS3Builder::new()
            .with_endpoint(&location.endpoint)
            .with_bucket_name(&location.bucket)
            .with_region(&location.region)
            .with_access_key_id(&location.access_key_id)
            .with_secret_access_key(location.secret_access_key.as_str())
            .with_virtual_hosted_style_request(false)
            // The client options as a whole: plain HTTP only where the
            // endpoint says so (loopback, a WireGuard mesh).
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(location.endpoint.starts_with("http://"))
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_connect_timeout(CONNECT_TIMEOUT),
            )
            .with_retry(RetryConfig {
                max_retries: RETRIES,
                retry_timeout: RETRY_TIMEOUT,
                ..RetryConfig::default()
            })
            .build()
            .map_err(unavailable)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("custos-s3")
            .enable_all()
            .build()?;
        Ok(S3Chunks {
            bucket,
            runtime: Some(runtime),
        })
    }

    /// Run one request to the bucket and wait for it. Never called from a
    /// runtime thread: the store's callers are on blocking threads.
    fn wait<T>(&self, request: impl std::future::Future<Output = T>) -> T {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the store")
            .block_on(request)
    }

    /// The whole object at `path`; `None` if the bucket has none there.
    fn read(&self, path: &ObjectPath) -> Result<Option<Vec<u8>>> {
        self.wait(async {
            match self.bucket.get(path).await {
                Ok(got) => got.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(unavailable)
    }

    fn path(hash: &Hash) -> ObjectPath {
        ObjectPath::from(format!("{PREFIX}/{}", hex::encode(hash)))
    }
}

impl Drop for S3Chunks {
    fn drop(&mut self) {
        // The store may be dropped on a runtime thread, where a runtime
        // may not block to stop: its threads are told to stop instead.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// What a failed request means to the vault: the store could not be
/// reached or would not answer. Its detail goes to the server's log only.
fn unavailable(e: object_store::Error) -> StoreError {
    // The causes too: "HTTP error" alone does not say a node is down.
    let mut detail = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        detail.push_str(": ");
        detail.push_str(&c.to_string());
        cause = c.source();
    }
    StoreError::Unavailable(detail)
}

impl ChunkStore for S3Chunks {
    fn put(&self, hash: &Hash, bytes: &[u8]) -> Result<()> {
        // Always written, even if the bucket holds the name: a PUT is
        // atomic, so a copy that rotted is replaced whole, and the commit
        // that names this chunk is answered only after the store has
        // acknowledged it.
        let payload = PutPayload::from(bytes.to_vec());
        self.wait(self.bucket.put(&Self::path(hash), payload))
            .map_err(unavailable)?;
        Ok(())
    }

    fn get(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        self.read(&Self::path(hash))
    }

    fn len(&self, hash: &Hash) -> Result<Option<u64>> {
        match self.wait(self.bucket.head(&Self::path(hash))) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn list(&self) -> Result<Vec<(String, u64)>> {
        let prefix = ObjectPath::from(PREFIX);
        self.wait(async {
            let mut listed = self.bucket.list(Some(&prefix));
            let mut out = Vec::new();
            while let Some(meta) = listed.next().await {
                let meta = meta?;
                // The whole name under the prefix, so that `remove` finds
                // even what was put in a folder below it.
                let name = meta.location.prefix_match(&prefix).map_or_else(
                    || meta.location.to_string(),
                    |parts| parts.map(|p| p.as_ref().to_owned()).collect::<Vec<_>>().join("/"),
                );
                out.push((name, meta.size));
            }
            Ok(out)
        })
        .map_err(unavailable)
    }

    fn remove(&self, name: &str) -> Result<()> {
        let path = ObjectPath::from(format!("{PREFIX}/{name}"));
        match self.wait(self.bucket.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn claim_for(&self, vault: &str, adopt: bool) -> Result<()> {
        let mark = ObjectPath::from(OWNER);
        let read =
            || -> Result<Option<String>> { Ok(self.read(&mark)?.map(|b| String::from_utf8_lossy(&b).into_owned())) };
        let another = |owner: &str| {
            StoreError::Misplaced(format!(
                "the bucket holds the chunks of another vault (log {owner}): one bucket serves one vault, \
                 for each vault's collector deletes the chunks it does not refer to"
            ))
        };
        match read()? {
            Some(owner) if owner == vault => Ok(()),
            Some(owner) => Err(another(&owner)),
            None if !adopt => Err(StoreError::Misplaced(
                "the bucket has no custos-vault mark, though this vault keeps its chunks there: is this \
                 its cluster, endpoint and bucket?"
                    .into(),
            )),
            None => {
                let create = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                match self.wait(
                    self.bucket
                        .put_opts(&mark, PutPayload::from(vault.as_bytes().to_vec()), create),
                ) {
                    Ok(_) => Ok(()),
                    // Another vault marked it first.
                    Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                        match read()? {
                            Some(owner) if owner == vault => Ok(()),
                            owner => Err(another(owner.as_deref().unwrap_or("unknown"))),
                        }
                    }
                    Err(e) => Err(unavailable(e)),
                }
            }
        }
    }

    fn probe(&self) -> Result<()> {
        // A read of a name that is never written: answered (not found)
        // only when enough of the store is up to read at all.
        match self.wait(self.bucket.head(&ObjectPath::from(format!("{PREFIX}/probe")))) {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}
