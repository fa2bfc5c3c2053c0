//! A file system that forgets, for the power-cut harness
//! (`tests/it/powercut.rs`). Programs on the mount see an ordinary file
//! system; underneath, each file's writes and each folder's names stay in
//! a volatile layer until an `fsync`/`fdatasync` of that file (or of that
//! folder, for its names) makes them durable, as the weakest disk and
//! file system POSIX allows would. `sync_file_range` never reaches a FUSE
//! file system, so it makes nothing durable, as on a real power cut.
//!
//! - [`disk`]: the model, pure logic: what is on the mount now and what a
//!   power cut would leave ([`disk::Disk::cut`]).
//! - [`mount`]: the FUSE adapter that serves a [`disk::Disk`] at a folder,
//!   and the cut itself: unmount, then keep only what was durable.
//!
//! A power cut is taken only after every program using the mount has
//! died: then no request is in flight, and the next mount starts from
//! what stayed, with no kernel cache of what was forgotten.
#![forbid(unsafe_code)]

pub mod disk;
pub mod mount;

pub use disk::{Cut, CutReport, Disk};
pub use mount::Mounted;
