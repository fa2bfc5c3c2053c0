//! The high-water mark: the last signed checkpoint made durable, kept in a
//! small file of its own beside sled's (`DATA/db/high-water`).
//!
//! sled 0.34 recovers its log by reading it until the first message whose
//! checksum fails and silently drops everything after it. A damaged byte in
//! the middle of the log therefore rolls the whole store back to an older,
//! self-consistent state, which would pass every check made inside sled and
//! lead the vault to sign checkpoints that fork from the ones it handed out.
//! Every group flush writes the checkpoint it made durable here, after
//! sled's own sync and before any request is acknowledged, so at startup a
//! store that holds less than this mark is known to have lost acknowledged
//! entries, and the vault refuses to serve it.
//!
//! The file has two fixed slots written alternately, each with its own
//! SHA-256, so a write torn by a power cut spoils at most the slot being
//! written; the other still holds the previous mark. The file never changes
//! size, so `fdatasync` writes only the slot.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Size of one slot: a checkpoint note with a few witness cosignatures
/// takes well under 1 KiB.
const SLOT: usize = 4096;
/// Slot header: sequence number (8), note length (4), SHA-256 (32).
const HEADER: usize = 8 + 4 + 32;

/// The file holding the mark, opened for writing.
#[derive(Debug)]
pub(crate) struct HighWater {
    file: File,
    /// Sequence number of the newest valid slot (0: none).
    seq: u64,
    /// The note in it, to skip writing the same mark twice.
    note: Option<String>,
}

impl HighWater {
    /// Open (creating if missing) the mark in `dir`.
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join("high-water");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if file.metadata()?.len() < (2 * SLOT) as u64 {
            file.set_len((2 * SLOT) as u64)?;
            file.sync_all()?;
            if let Some(parent) = path.parent() {
                custos_durable::sync_dir(parent)?;
            }
        }
        let mut buf = vec![0u8; 2 * SLOT];
        file.read_exact_at(&mut buf, 0)?;
        let best = buf.chunks(SLOT).filter_map(read_slot).max_by_key(|(seq, _)| *seq);
        let (seq, note) = match best {
            Some((seq, note)) => (seq, Some(note)),
            None => (0, None),
        };
        Ok(HighWater { file, seq, note })
    }

    /// The last note made durable, if any was.
    pub(crate) fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Make `note` the mark, durably. Writes the slot that does not hold the
    /// current mark, so a torn write leaves the current one readable.
    pub(crate) fn record(&mut self, note: &str) -> std::io::Result<()> {
        if self.note.as_deref() == Some(note) {
            return Ok(());
        }
        let bytes = note.as_bytes();
        if bytes.len() > SLOT - HEADER {
            return Err(std::io::Error::other(
                "checkpoint note too long for the high-water mark",
            ));
        }
        let seq = self.seq + 1;
        let mut slot = vec![0u8; SLOT];
        slot[..8].copy_from_slice(&seq.to_be_bytes());
        slot[8..12].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
        slot[HEADER..HEADER + bytes.len()].copy_from_slice(bytes);
        let digest = slot_digest(seq, bytes);
        slot[12..HEADER].copy_from_slice(&digest);
        self.file.write_all_at(&slot, (seq % 2) * SLOT as u64)?;
        self.file.sync_data()?;
        self.seq = seq;
        self.note = Some(note.to_owned());
        Ok(())
    }
}

fn slot_digest(seq: u64, note: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"custos-high-water-v1");
    h.update(seq.to_be_bytes());
    h.update(note);
    h.finalize().into()
}

/// A slot's sequence number and note, if the slot is whole.
fn read_slot(slot: &[u8]) -> Option<(u64, String)> {
    let seq = u64::from_be_bytes(slot[..8].try_into().ok()?);
    let len = u32::from_be_bytes(slot[8..12].try_into().ok()?) as usize;
    if seq == 0 || len > SLOT - HEADER {
        return None;
    }
    let note = &slot[HEADER..HEADER + len];
    if slot_digest(seq, note)[..] != slot[12..HEADER] {
        return None;
    }
    Some((seq, String::from_utf8(note.to_vec()).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_whole_slot_wins_and_a_torn_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut hw = HighWater::open(dir.path()).unwrap();
        assert_eq!(hw.note(), None);
        hw.record("one").unwrap();
        hw.record("two").unwrap();
        assert_eq!(HighWater::open(dir.path()).unwrap().note(), Some("two"));

        // Tear the slot holding "two" (seq 2, slot 0): "one" is still read.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("high-water"))
            .unwrap();
        file.write_all_at(b"tw0", HEADER as u64).unwrap();
        let mut hw = HighWater::open(dir.path()).unwrap();
        assert_eq!(hw.note(), Some("one"));

        // The next mark goes into the torn slot, never over the good one.
        hw.record("three").unwrap();
        hw.record("four").unwrap();
        assert_eq!(HighWater::open(dir.path()).unwrap().note(), Some("four"));
        assert_eq!(
            std::fs::metadata(dir.path().join("high-water")).unwrap().len(),
            2 * SLOT as u64
        );
    }
}
