//! Identifying metadata in the files a submitter sends and a lawyer
//! receives: [`custos_meta`] over files on this device. Files are read
//! whole into memory (zeroized when dropped) up to
//! [`custos_meta::MAX_PARSE_BYTES`]; a cleaned copy is made in memory and
//! never written to disk.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;
use zeroize::Zeroizing;

use super::ClientError;
pub use custos_meta::{Finding, Kind, Report};

/// One file's findings as the CLI's `--json` gives them.
#[derive(Debug, Clone, Serialize)]
pub struct FileFindings {
    /// The file's base name.
    pub name: String,
    /// What it reveals.
    pub findings: Vec<Finding>,
    /// Whether a cleaned copy was (or, for a lawyer, says it was) sent;
    /// `None` when nobody was asked.
    pub cleaned: Option<bool>,
}

/// The file whole, or `None` when it is larger than the most examined.
fn read_bounded(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, ClientError> {
    let file = std::fs::File::open(path).map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(custos_meta::MAX_PARSE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > custos_meta::MAX_PARSE_BYTES {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// A cleaned copy as it is sent: bytes made in memory, or (a video) the
/// file itself with byte ranges overwritten as it streams.
pub enum Cleaned {
    /// The whole cleaned copy.
    Bytes(Zeroizing<Vec<u8>>),
    /// The file's bytes with these ranges (offset, new bytes) replaced;
    /// its length is unchanged.
    Overlay(Vec<(u64, Vec<u8>)>),
}

/// The file open, its length, and whether it is an MP4/MOV video.
fn open_video(path: &Path) -> Result<Option<(std::fs::File, u64)>, ClientError> {
    let mut file = std::fs::File::open(path).map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
    let len = file.metadata()?.len();
    let mut head = Vec::new();
    (&mut file).take(16).read_to_end(&mut head)?;
    Ok((custos_meta::sniff(&head) == Some(custos_meta::Format::Mp4)).then_some((file, len)))
}

/// What the file at `path` reveals.
pub fn examine(path: &Path) -> Result<Report, ClientError> {
    let mut file = std::fs::File::open(path).map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
    let len = file.metadata()?.len();
    examine_reader(&mut file, len)
}

/// What a file of `len` bytes, read from `r` (at its start), reveals: a
/// video from its metadata boxes alone, whatever its size; anything else
/// read whole into memory (zeroized when dropped) up to
/// [`custos_meta::MAX_PARSE_BYTES`]. The desk reads a decrypted age
/// stream this way, so plaintext never reaches a disk.
pub fn examine_reader<R: Read + Seek>(r: &mut R, len: u64) -> Result<Report, ClientError> {
    let mut head = Vec::new();
    (&mut *r).take(16).read_to_end(&mut head)?;
    r.seek(SeekFrom::Start(0))?;
    if custos_meta::sniff(&head) == Some(custos_meta::Format::Mp4) {
        let (findings, note) = match custos_meta::mp4::detect_from(r, len) {
            Ok(f) => (f, None),
            Err(note) => (Vec::new(), Some(note)),
        };
        return Ok(Report {
            format: Some(custos_meta::Format::Mp4),
            findings,
            note,
        });
    }
    if len > custos_meta::MAX_PARSE_BYTES {
        return Ok(Report {
            note: Some(format!(
                "larger than {} MiB: not examined",
                custos_meta::MAX_PARSE_BYTES / (1024 * 1024)
            )),
            ..Report::default()
        });
    }
    // Room for the whole file at once: a growing buffer would leave
    // copies of the plaintext behind that nothing zeroizes.
    let mut bytes = Zeroizing::new(Vec::with_capacity(len as usize));
    r.take(len).read_to_end(&mut bytes)?;
    Ok(custos_meta::detect(&bytes))
}

/// The cleaned copy of the file at `path`, in memory; an error naming the
/// file when it cannot be cleaned (its format, or a copy that would still
/// reveal something).
pub fn cleaned_copy(path: &Path) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let bytes = read_bounded(path)?.ok_or_else(|| {
        ClientError::Usage(format!(
            "{}: too large to clean (more than {} MiB)",
            path.display(),
            custos_meta::MAX_PARSE_BYTES / (1024 * 1024)
        ))
    })?;
    custos_meta::clean(&bytes)
        .map(Zeroizing::new)
        .map_err(|e| ClientError::Usage(format!("{}: cannot send a cleaned copy: {e}", path.display())))
}

/// The cleaned copy of the file at `path` as it is sent: a video as an
/// overlay on the file (never held whole in memory), anything else as
/// [`cleaned_copy`]'s bytes.
pub fn cleaned(path: &Path) -> Result<Cleaned, ClientError> {
    match open_video(path)? {
        Some((mut file, len)) => custos_meta::mp4::overlay_from(&mut file, len)
            .map(Cleaned::Overlay)
            .map_err(|e| ClientError::Usage(format!("{}: cannot send a cleaned copy: {e}", path.display()))),
        None => cleaned_copy(path).map(Cleaned::Bytes),
    }
}

/// `inner` with `patches` (offset, bytes; not overlapping)
/// written over it as it is read from the start.
pub struct Overlaid<R> {
    inner: R,
    pos: u64,
    patches: std::sync::Arc<Vec<(u64, Vec<u8>)>>,
}

impl<R> Overlaid<R> {
    /// `inner`, read from its start, with `patches` applied.
    pub fn new(inner: R, patches: std::sync::Arc<Vec<(u64, Vec<u8>)>>) -> Self {
        Overlaid { inner, pos: 0, patches }
    }
}

impl<R: Read> Read for Overlaid<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let (from, to) = (self.pos, self.pos + n as u64);
        for (at, with) in self.patches.iter() {
            let end = at + with.len() as u64;
            if end <= from || *at >= to {
                continue;
            }
            let (start, stop) = ((*at).max(from), end.min(to));
            buf[(start - from) as usize..(stop - from) as usize]
                .copy_from_slice(&with[(start - at) as usize..(stop - at) as usize]);
        }
        self.pos = to;
        Ok(n)
    }
}

/// The findings in plain words, one line each ("the device: samsung SM-A525F").
pub fn plain_lines(report: &Report) -> Vec<String> {
    let mut lines: Vec<String> = report
        .findings
        .iter()
        .map(|f| format!("{}: {}", f.kind.plain(), f.value))
        .collect();
    if let Some(note) = &report.note {
        lines.push(format!("(not fully examined: {note})"));
    }
    lines
}
