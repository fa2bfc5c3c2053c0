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

/// Whether the path to `endpoint` already keeps a request's body from
/// being changed on the way: TLS (`https://`, whose records are
/// authenticated, through a proxy too) or a loopback address written as
/// one (no wire; not `localhost`, which a resolver answers, and not when
/// a proxy variable in the environment could send the request through a
/// proxy elsewhere: object_store's HTTP client follows them). There a
/// PUT's body is left out of its SigV4 signature (`UNSIGNED-PAYLOAD`, as
/// the bench's plain PUT sends it): signing it costs the vault one more SHA-256 pass over every chunk
/// and the store another to check it. Anywhere else (plain HTTP across a
/// network, however private) the body is signed, so that no one on the
/// path can swap a chunk for other bytes. Either way every read re-hashes
/// a chunk against its name.
fn transport_protects_bytes(endpoint: &str) -> bool {
    let proxied = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    path_protects_bytes(endpoint, proxied)
}

/// [`transport_protects_bytes`], told whether a proxy may be in the way.
fn path_protects_bytes(endpoint: &str, proxied: bool) -> bool {
    let Ok(url) = endpoint.parse::<axum::http::Uri>() else {
        return false;
    };
    match (url.scheme_str(), url.host()) {
        (Some("https"), _) => true,
        (Some("http"), Some(host)) => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            !proxied && host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

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

/// How many chunk PUTs one upload request sends at once. Each PUT is
/// answered only once Garage has written and fsynced the chunk on two of
/// its three nodes (about 150 ms for 4 MiB here), during which one PUT
/// leaves the links and disks idle; four in flight keep them busy, and
/// ingest of 1 GiB went from 0.5x of a plain PUT to about 0.8x
/// (bench/README.md). Four 4 MiB chunks is also the protocol's largest
/// PATCH ([`custos_core::protocol::MAX_PATCH_BODY`]).
const PUTS_AT_ONCE: usize = 4;
// Clients take a hint only up to the protocol's largest PATCH.
const _: () = assert!(PUTS_AT_ONCE * super::CHUNK_SIZE <= custos_core::protocol::MAX_PATCH_BODY);

/// How many chunk lengths (HEADs, small answers) are asked at once: a
/// commit of 1 GiB asks 256, which one after another cost a round trip
/// each.
const HEADS_AT_ONCE: usize = 16;

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
            .with_unsigned_payload(transport_protects_bytes(&location.endpoint))
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

    /// The size of the chunk `hash` in the bucket, if it holds it.
    async fn size_of(&self, hash: &Hash) -> Result<Option<u64>> {
        match self.bucket.head(&Self::path(hash)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
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

    fn put_many(&self, chunks: &[(Hash, bytes::Bytes)]) -> Result<()> {
        let puts = chunks.iter().map(|(hash, bytes)| {
            let path = Self::path(hash);
            let payload = PutPayload::from(bytes.clone());
            async move { self.bucket.put(&path, payload).await }
        });
        self.wait(futures_util::future::try_join_all(puts))
            .map_err(unavailable)?;
        Ok(())
    }

    fn chunks_per_patch(&self) -> usize {
        PUTS_AT_ONCE
    }

    fn get(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        self.read(&Self::path(hash))
    }

    fn len(&self, hash: &Hash) -> Result<Option<u64>> {
        self.wait(self.size_of(hash))
    }

    fn lens(&self, hashes: &[Hash]) -> Result<Vec<Option<u64>>> {
        use futures_util::StreamExt;
        let asked = futures_util::stream::iter(hashes)
            .map(|hash| self.size_of(hash))
            .buffered(HEADS_AT_ONCE);
        self.wait(asked.collect::<Vec<_>>()).into_iter().collect()
    }

    // A listing may, for a moment, still name a chunk just deleted: Garage
    // drops deleted objects on each node before it merges the nodes'
    // answers, so one that has not yet heard of the delete puts it back.
    // Nothing relies on a listing for absence: the collector deletes such a
    // name again, and a restore's check of the bucket is followed by an
    // audit that reads every chunk.
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_chunk_is_left_out_of_the_signature_only_where_the_path_protects_it() {
        for endpoint in [
            "https://s3.example.org",
            "https://10.0.0.2:3900",
            "http://127.0.0.1:3900",
            "http://[::1]:3900",
        ] {
            assert!(super::path_protects_bytes(endpoint, false), "{endpoint}");
        }
        // Through a proxy, only TLS still protects the body.
        assert!(super::path_protects_bytes("https://s3.example.org", true));
        assert!(!super::path_protects_bytes("http://127.0.0.1:3900", true));
        for endpoint in [
            "http://10.0.0.2:3900",
            "http://garage.internal:3900",
            "http://127.0.0.1.example.org",
            "http://localhost.example.org:3900",
            "http://localhost:3900",
            "not a url",
        ] {
            assert!(!super::path_protects_bytes(endpoint, false), "{endpoint}");
        }
    }
}
