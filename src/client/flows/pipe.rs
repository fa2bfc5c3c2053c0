//! The bounded pipe that carries ciphertext from a download to the
//! decryptor on its blocking thread, so decryption overlaps the transfer.
//! Knows nothing of cases or keys; `retrieve` wires it up.

use std::io::Read;

/// Pieces of ciphertext in flight between a download and its decryptor:
/// 16 of up to 64 KiB bounds the memory at about 1 MiB.
pub(super) const PIPE_DEPTH: usize = 16;

/// Writes to two writers (a file or hasher, and the decryptor's pipe).
pub(super) struct Tee<A, B>(pub(super) A, pub(super) B);

impl<A: std::io::Write, B: std::io::Write> std::io::Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// The sending end of the pipe to a decryptor; `None` once closed.
pub(super) struct PipeWriter(pub(super) Option<std::sync::mpsc::SyncSender<Vec<u8>>>);

impl std::io::Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let broken = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let tx = self.0.as_ref().ok_or_else(broken)?;
        tx.send(buf.to_vec()).map_err(|_| broken())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The receiving end: reads the pieces in order; end of file once the
/// sender is gone.
pub(super) struct PipeReader {
    feed: std::sync::mpsc::Receiver<Vec<u8>>,
    piece: Vec<u8>,
    at: usize,
}

impl PipeReader {
    pub(super) fn new(feed: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        PipeReader {
            feed,
            piece: Vec::new(),
            at: 0,
        }
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.piece.len() {
            match self.feed.recv() {
                Ok(piece) => (self.piece, self.at) = (piece, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
