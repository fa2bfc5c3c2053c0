//! Moving bulk data: tus uploads (create, PATCH from an offset, commit),
//! sent as the ciphertext is made (no copy of it on disk),
//! object downloads that resume with a range request, and backups. Reports
//! to the progress sink; the JSON requests and signing are in `client`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

use super::progress::Meter;
use super::{case_path, ids, Client, ClientError, RequestParts, Result};
use custos_core::custody::Receipt;
use custos_core::protocol::{CHUNK_SIZE, MAX_PATCH_BODY, TUS_VERSION};
use custos_core::wire::{CommitUpload, ObjectCommitted};

impl Client {
    /// Create a tus upload; returns its path, which must be that of an
    /// upload of this case (the vault's `Location`).
    pub async fn create_upload(&self, key: &SigningKey, case_id: &str, length: u64) -> Result<String> {
        let parts = RequestParts {
            headers: vec![
                ("tus-resumable", TUS_VERSION.into()),
                ("upload-length", length.to_string()),
            ],
            covered: vec!["upload-length"],
            body: None,
        };
        let resp = self
            .send(Some(key), Method::POST, &case_path(case_id, "/uploads")?, parts)
            .await?;
        self.note_patch_size(resp.headers());
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| ClientError::Verify("upload created without a Location".into()))?;
        ids::upload_path(case_id, location).ok_or_else(|| {
            ClientError::Verify(format!(
                "the vault placed the upload at \"{}\", not under this case's uploads",
                crate::terminal::escaped(&location.chars().take(200).collect::<String>())
            ))
        })
    }

    /// Keep the PATCH size the vault asks for, if it is whole chunks
    /// within the protocol's limit; any other value leaves the size as it
    /// was. Only speed depends on it: every PATCH is checked alike.
    fn note_patch_size(&self, headers: &reqwest::header::HeaderMap) {
        let asked = headers
            .get("custos-patch-size")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(size) = asked.filter(|n| (CHUNK_SIZE..=MAX_PATCH_BODY).contains(n) && n % CHUNK_SIZE == 0) {
            self.patch_size.store(size, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// How many bytes this client's PATCHes carry: [`crate::PATCH_SIZE`]
    /// until the vault asks for more.
    pub fn patch_size(&self) -> usize {
        self.patch_size.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Send one PATCH at `offset`; returns the new offset.
    pub async fn patch(&self, key: &SigningKey, upload: &str, offset: u64, data: Vec<u8>) -> Result<u64> {
        let sha = B64.encode(Sha256::digest(&data));
        self.patch_hashed(key, upload, offset, data, &sha).await
    }

    /// [`Client::patch`] with the body's SHA-256 (base64) already computed:
    /// it serves as both the tus checksum and the signed `Content-Digest`.
    async fn patch_hashed(&self, key: &SigningKey, upload: &str, offset: u64, data: Vec<u8>, sha: &str) -> Result<u64> {
        let parts = RequestParts {
            headers: vec![
                ("tus-resumable", TUS_VERSION.into()),
                ("upload-offset", offset.to_string()),
                ("upload-checksum", format!("sha256 {sha}")),
                ("content-digest", format!("sha-256=:{sha}:")),
                ("content-type", "application/offset+octet-stream".into()),
            ],
            covered: vec!["upload-offset"],
            body: Some(data),
        };
        let resp = self.send(Some(key), Method::PATCH, upload, parts).await?;
        resp.headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Verify("PATCH reply without Upload-Offset".into()))
    }

    /// The durable offset of an upload (tus HEAD).
    pub async fn upload_offset(&self, key: &SigningKey, upload: &str) -> Result<u64> {
        let parts = RequestParts {
            headers: vec![("tus-resumable", TUS_VERSION.into())],
            ..Default::default()
        };
        let resp = self.send(Some(key), Method::HEAD, upload, parts).await?;
        self.note_patch_size(resp.headers());
        resp.headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Verify("HEAD reply without Upload-Offset".into()))
    }

    /// Commit an upload as an object named by its SHA-256.
    pub async fn commit(&self, key: &SigningKey, upload: &str, body: &CommitUpload) -> Result<ObjectCommitted> {
        self.json(Some(key), Method::POST, &format!("{upload}/commit"), Some(body))
            .await
    }

    /// Send the age file `source` makes (`length` bytes, read from its
    /// first byte) to `upload` from `offset` (where the vault says the
    /// upload stands) to its end; returns the hex SHA-256 of the whole.
    ///
    /// The first `offset` bytes are made again and hashed, not sent: the
    /// object id covers them, and only the plaintext is kept on disk. The
    /// next PATCH is made and hashed while the current one is in flight,
    /// so encryption, hashing and the vault's fsync overlap.
    pub async fn upload_from(
        &self,
        key: &SigningKey,
        upload: &str,
        source: impl Read + Send + 'static,
        length: u64,
        offset: u64,
    ) -> Result<String> {
        if offset > length {
            return Err(ClientError::Verify(format!(
                "the vault says the upload is at {offset}, past its {length} bytes"
            )));
        }
        let mut meter = self.progress.begin("upload", length);
        let skipped = tokio::task::spawn_blocking(move || -> std::io::Result<Piece> {
            let mut source: Box<dyn Read + Send> = Box::new(source);
            let mut whole = Sha256::new();
            let copied = std::io::copy(&mut (&mut source).take(offset), &mut HashInto(&mut whole))?;
            if copied != offset {
                return Err(short_source());
            }
            Ok(Piece {
                source,
                whole,
                buf: Vec::new(),
                sha: String::new(),
            })
        });
        let first = skipped
            .await
            .map_err(|e| ClientError::Verify(format!("reading task failed: {e}")))??;
        meter.advance(offset);
        let mut offset = offset;
        let patch = self.patch_size.load(std::sync::atomic::Ordering::Relaxed);
        let mut next = read_piece(first.source, first.whole, length - offset, patch);
        loop {
            let piece = next
                .await
                .map_err(|e| ClientError::Verify(format!("reading task failed: {e}")))??;
            if piece.buf.is_empty() {
                return Ok(hex::encode(piece.whole.finalize()));
            }
            let sent = piece.buf.len() as u64;
            next = read_piece(piece.source, piece.whole, length - offset - sent, patch);
            let moved = self.patch_hashed(key, upload, offset, piece.buf, &piece.sha).await?;
            if moved != offset + sent {
                return Err(ClientError::Verify(format!(
                    "the vault moved the upload to {moved}, not {}",
                    offset + sent
                )));
            }
            meter.advance(sent);
            offset = moved;
        }
    }

    /// Download a small object into `out`, a writer that does not block (a
    /// buffer in memory), hashing as it streams. Returns the receipt of the
    /// access event and the hex SHA-256 of what arrived. Large objects go
    /// through [`Client::open_download`] to a blocking thread instead.
    pub async fn download(
        &self,
        key: &SigningKey,
        case_id: &str,
        object_id: &str,
        out: &mut impl Write,
    ) -> Result<(Receipt, String)> {
        let mut hasher = Sha256::new();
        let receipt = self.download_from(key, case_id, object_id, 0, out, &mut hasher).await?;
        Ok((receipt, hex::encode(hasher.finalize())))
    }

    /// [`Client::download`] from byte `offset` on (an HTTP range request,
    /// to resume a cut download), feeding `hasher`, which the caller has fed
    /// the first `offset` bytes. Returns the access receipt.
    pub async fn download_from(
        &self,
        key: &SigningKey,
        case_id: &str,
        object_id: &str,
        offset: u64,
        out: &mut impl Write,
        hasher: &mut Sha256,
    ) -> Result<Receipt> {
        let mut download = self.open_download(key, case_id, object_id, offset).await?;
        while let Some(piece) = download.next_piece().await? {
            hasher.update(&piece);
            out.write_all(&piece)?;
        }
        Ok(download.into_receipt())
    }

    /// Start downloading an object from byte `offset` on (an HTTP range
    /// request, to resume a cut download).
    pub async fn open_download(
        &self,
        key: &SigningKey,
        case_id: &str,
        object_id: &str,
        offset: u64,
    ) -> Result<Download> {
        ids::object_id_arg(object_id)?;
        self.open_object(key, &case_path(case_id, &format!("/objects/{object_id}"))?, offset)
            .await
    }

    /// Start downloading an object's ciphertext for an export bundle
    /// (auditors may).
    pub async fn open_export_download(&self, key: &SigningKey, case_id: &str, object_id: &str) -> Result<Download> {
        ids::object_id_arg(object_id)?;
        self.open_object(key, &case_path(case_id, &format!("/export/objects/{object_id}"))?, 0)
            .await
    }

    async fn open_object(&self, key: &SigningKey, path: &str, offset: u64) -> Result<Download> {
        let mut parts = RequestParts::default();
        if offset > 0 {
            // The vault refuses a Range its signature does not cover.
            parts.headers.push(("range", format!("bytes={offset}-")));
            parts.covered.push("range");
        }
        let resp = self.send(Some(key), Method::GET, path, parts).await?;
        if offset > 0 {
            let range = resp.headers().get("content-range").and_then(|v| v.to_str().ok());
            if resp.status() != StatusCode::PARTIAL_CONTENT
                || !range.is_some_and(|r| r.starts_with(&format!("bytes {offset}-")))
            {
                return Err(ClientError::Verify(format!(
                    "asked to resume at byte {offset}, the vault answered otherwise"
                )));
            }
        }
        let receipt = resp
            .headers()
            .get("custos-receipt")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| B64.decode(v).ok())
            .and_then(|v| serde_json::from_slice::<Receipt>(&v).ok())
            .ok_or_else(|| ClientError::Verify("download without a receipt".into()))?;
        let mut meter = self
            .progress
            .begin("download", offset + resp.content_length().unwrap_or(0));
        meter.advance(offset);
        Ok(Download { resp, meter, receipt })
    }

    /// Take a backup of the whole vault (admins) into `out`; returns its
    /// size. The caller checks what arrived with the server crate's `backup::verify_file`.
    pub async fn backup(&self, key: &SigningKey, out: &mut impl Write) -> Result<u64> {
        self.backup_chunks(key, out, false).await
    }

    /// [`Client::backup`]; with `hashes_only`, of a vault whose chunks are
    /// in an S3 bucket, the large chunks are listed by hash and length in
    /// the signed manifest instead of sent (`Custos-Backup-Chunks: hashes`,
    /// covered by the signature).
    pub async fn backup_chunks(&self, key: &SigningKey, out: &mut impl Write, hashes_only: bool) -> Result<u64> {
        let parts = if hashes_only {
            RequestParts {
                headers: vec![("custos-backup-chunks", "hashes".into())],
                covered: vec!["custos-backup-chunks"],
                ..Default::default()
            }
        } else {
            RequestParts::default()
        };
        let mut resp = self.send(Some(key), Method::GET, "/v1/vault/backup", parts).await?;
        let expected = resp.content_length();
        let mut meter = self.progress.begin("backup", expected.unwrap_or(0));
        let mut got = 0u64;
        while let Some(piece) = resp.chunk().await? {
            out.write_all(&piece)?;
            got += piece.len() as u64;
            meter.advance(piece.len() as u64);
        }
        if expected.is_some_and(|e| e != got) {
            return Err(ClientError::Verify(format!(
                "the backup stopped after {got} of {} bytes",
                expected.unwrap_or(0)
            )));
        }
        Ok(got)
    }
}

/// The source of an upload, the running SHA-256 of everything read from
/// it, and the last piece read with its own SHA-256 (base64).
struct Piece {
    source: Box<dyn Read + Send>,
    whole: Sha256,
    buf: Vec<u8>,
    sha: String,
}

/// The source ended before the length the upload was created with.
fn short_source() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the upload's source ended early")
}

/// A writer that only hashes.
struct HashInto<'a>(&'a mut Sha256);

impl Write for HashInto<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Read the next PATCH's worth of `source` (at most `patch` of the `left`
/// bytes) and hash it, both alone and into `whole`, off the async threads.
fn read_piece(
    source: Box<dyn Read + Send>,
    mut whole: Sha256,
    left: u64,
    patch: usize,
) -> tokio::task::JoinHandle<std::io::Result<Piece>> {
    tokio::task::spawn_blocking(move || {
        let want = left.min(patch as u64);
        let mut buf = Vec::with_capacity(want as usize);
        let mut source = source;
        (&mut source).take(want).read_to_end(&mut buf)?;
        if (buf.len() as u64) < want {
            return Err(short_source());
        }
        whole.update(&buf);
        let sha = B64.encode(Sha256::digest(&buf));
        Ok(Piece {
            source,
            whole,
            buf,
            sha,
        })
    })
}

/// An object download under way: the access receipt the vault sent with
/// it, and its body, a piece at a time as it arrives. Where the pieces go
/// is the caller's choice; nothing here writes a file.
pub struct Download {
    resp: reqwest::Response,
    meter: Box<dyn Meter>,
    receipt: Receipt,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Download")
    }
}

impl Download {
    /// The next piece of the body; `None` at its end.
    pub async fn next_piece(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.next_bytes().await?.map(|piece| Vec::from(piece.as_ref())))
    }

    /// [`Download::next_piece`] as the HTTP client holds it, not copied.
    pub(crate) async fn next_bytes(&mut self) -> Result<Option<impl AsRef<[u8]> + Send + 'static>> {
        let Some(piece) = self.resp.chunk().await? else {
            return Ok(None);
        };
        self.meter.advance(piece.len() as u64);
        Ok(Some(piece))
    }

    /// The receipt of the access event, once the body has been read.
    pub fn into_receipt(self) -> Receipt {
        self.receipt
    }

    /// The receipt of the access event, which came with the answer's
    /// head: it can be checked before a byte of the body is kept.
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }
}
