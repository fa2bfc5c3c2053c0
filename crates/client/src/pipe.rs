//! Carrying a download to a blocking thread that writes, hashes or decrypts
//! it: a bounded tokio channel the async side `send().await`s into and the
//! blocking side reads with `blocking_recv`, so neither waits on the other's
//! thread. Knows nothing of cases or keys; `flows` and `export` wire it up.

use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::sync::mpsc;

use super::transfer::Download;
use super::{ClientError, Result};
use custos_core::custody::Receipt;
use custos_core::envelope::HashingWriter;

/// Pieces of ciphertext in flight between a download and the thread that
/// takes them: 16 of up to 64 KiB bounds the memory at about 1 MiB.
const PIPE_DEPTH: usize = 16;

/// How much a file written from a download or a decryption gathers per
/// write, as much as an age chunk: with the 8 KiB default, writing cost
/// about a third more of `custos get`'s time in the kernel (`perf`, 1 GiB);
/// 1 MiB cost more than either.
pub(super) const WRITE_BUFFER: usize = 64 << 10;

/// A piece of a download as the HTTP client handed it over, passed on
/// without copying it into a `Vec`: that copy was a few per cent of
/// `custos get`'s CPU time (`perf`, 1 GiB).
pub(super) type Piece = Box<dyn AsRef<[u8]> + Send>;

/// A bounded pipe: the sender for the async side, the receiver for the
/// blocking side (`blocking_recv`, or read through a [`PieceReader`]).
pub(super) fn pipe() -> (mpsc::Sender<Piece>, mpsc::Receiver<Piece>) {
    mpsc::channel(PIPE_DEPTH)
}

/// The receiving end, for a blocking thread only: reads the pieces in
/// order; end of file once the sender is gone.
pub(super) struct PieceReader {
    pieces: mpsc::Receiver<Piece>,
    piece: Piece,
    at: usize,
}

impl PieceReader {
    /// Read what arrives on `pieces`.
    pub(super) fn new(pieces: mpsc::Receiver<Piece>) -> Self {
        PieceReader {
            pieces,
            piece: Box::new([]),
            at: 0,
        }
    }
}

impl Read for PieceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == (*self.piece).as_ref().len() {
            match self.pieces.blocking_recv() {
                Some(piece) => (self.piece, self.at) = (piece, 0),
                None => return Ok(0),
            }
        }
        let piece = (*self.piece).as_ref();
        let n = buf.len().min(piece.len() - self.at);
        buf[..n].copy_from_slice(&piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A file that one blocking thread appends a download to while another
/// reads it as it grows: the download is staged on disk as fast as it
/// arrives, and a slower reader (the decryptor) follows it there rather
/// than holding it back or buffering it in memory.
pub(super) struct Growing {
    /// Bytes written so far, and whether the writer has ended.
    written: Mutex<(u64, bool)>,
    grew: Condvar,
}

impl Growing {
    /// A file that holds `len` bytes already.
    pub(super) fn new(len: u64) -> Arc<Self> {
        Arc::new(Growing {
            written: Mutex::new((len, false)),
            grew: Condvar::new(),
        })
    }

    fn written(&self) -> std::sync::MutexGuard<'_, (u64, bool)> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// For the writing thread: when the returned guard is dropped (the
    /// writer finished, failed or panicked), readers reach the end.
    pub(super) fn ending(self: &Arc<Self>) -> Ending {
        Ending(self.clone())
    }

    /// On the writing thread: append each piece from `pieces` to `file`,
    /// show it to `each`, and let readers see it; until the sender is gone.
    pub(super) fn append(
        &self,
        file: &mut std::fs::File,
        pieces: &mut mpsc::Receiver<Piece>,
        mut each: impl FnMut(&[u8]),
    ) -> std::io::Result<()> {
        while let Some(piece) = pieces.blocking_recv() {
            let piece = (*piece).as_ref();
            file.write_all(piece)?;
            each(piece);
            self.written().0 += piece.len() as u64;
            self.grew.notify_all();
        }
        Ok(())
    }

    /// A reader of `file` from its start, which waits for the writer at
    /// the end of what is written and ends where the writer ended.
    pub(super) fn reader(self: &Arc<Self>, file: std::fs::File) -> GrowingReader {
        GrowingReader {
            file,
            at: 0,
            growing: self.clone(),
        }
    }
}

/// Marks the end of a [`Growing`] file when dropped.
pub(super) struct Ending(Arc<Growing>);

impl Drop for Ending {
    fn drop(&mut self) {
        self.0.written().1 = true;
        self.0.grew.notify_all();
    }
}

/// Reads a [`Growing`] file, for a blocking thread only.
pub(super) struct GrowingReader {
    file: std::fs::File,
    at: u64,
    growing: Arc<Growing>,
}

impl Read for GrowingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let at = self.at;
        let written = {
            let guard = self.growing.written();
            let guard = self
                .growing
                .grew
                .wait_while(guard, |(len, ended)| *len <= at && !*ended)
                .unwrap_or_else(PoisonError::into_inner);
            guard.0
        };
        if written <= at {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(written - at).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.at += n as u64;
        Ok(n)
    }
}

/// Send a download's pieces into `pieces` as they arrive; the async side
/// waits while the receiver is behind. The receiver gone is a broken pipe:
/// its own result says why.
pub(super) async fn send_all(download: Download, pieces: mpsc::Sender<Piece>) -> Result<Receipt> {
    send_counted(download, &pieces, &mut 0).await
}

/// [`send_all`], adding to `sent` the length of each piece handed on, so
/// that a download that breaks can be taken up again after them.
pub(super) async fn send_counted(
    mut download: Download,
    pieces: &mpsc::Sender<Piece>,
    sent: &mut u64,
) -> Result<Receipt> {
    while let Some(piece) = download.next_bytes().await? {
        let len = piece.as_ref().len() as u64;
        if pieces.send(Box::new(piece)).await.is_err() {
            return Err(ClientError::Io(std::io::ErrorKind::BrokenPipe.into()));
        }
        *sent += len;
    }
    Ok(download.into_receipt())
}

/// Write a download into `file`, durably, on a blocking thread; returns
/// the access receipt and the hex SHA-256 of what arrived.
pub(super) async fn save(download: Download, file: std::fs::File) -> Result<(Receipt, String)> {
    let (tx, pieces) = pipe();
    let mut pieces = PieceReader::new(pieces);
    let writing = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut out = HashingWriter::new(std::io::BufWriter::with_capacity(WRITE_BUFFER, file));
        std::io::copy(&mut pieces, &mut out)?;
        let (sha, _, w) = out.finish();
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(sha)
    });
    let sent = send_all(download, tx).await;
    let written = writing
        .await
        .map_err(|e| ClientError::Verify(format!("writing task failed: {e}")))?;
    // The writer's failure first: a broken pipe only says it stopped.
    let sha = written?;
    Ok((sent?, sha))
}
