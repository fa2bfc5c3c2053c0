//! The disk's memory, pure logic: every file's bytes and every folder's
//! names as programs on the mount see them now, what of them an fsync made
//! durable, and what a power cut leaves. The FUSE adapter (`mount.rs`)
//! calls it under one lock; nothing here does I/O.
//!
//! What is promised durable is what POSIX promises: a file's data (its
//! writes and changes of length) once the file is fsynced; a name (create,
//! link, unlink, rename, mkdir, rmdir) once its folder is fsynced. What is
//! not promised is lost at a cut ([`Cut::DropAll`]), or some of it lasts
//! ([`Cut::Reorder`]): 4 KiB pieces of writes in any combination, a new
//! length without its bytes, and the name changes up to a point in the
//! order they were made, as a journaling file system commits them. So a
//! new file whose name lasted but whose bytes were not synced comes back
//! empty or torn; a file renamed over another without a sync of the folder
//! may come back as the old one. Times, modes and extended attributes are
//! not modelled, nor a drive that loses what it said it had written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::SystemTime;

use rand::{Rng, SeedableRng};

/// An inode number; the root folder is [`ROOT`].
pub type Ino = u64;

/// The root folder's inode number (FUSE's).
pub const ROOT: Ino = 1;

/// Files are kept in pages shared between what is on the mount and what is
/// durable, so that an fsync of a large file copies page pointers, not
/// bytes (sled's log file is fsynced on every group commit).
const PAGE: usize = 64 * 1024;

/// Why an operation is refused; the adapter maps each to its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    Exists,
    NotDir,
    IsDir,
    NotEmpty,
    Invalid,
}

type Result<T> = std::result::Result<T, Refusal>;

/// A file's bytes in copy-on-write pages. Bytes past the length in the last
/// page are always zero, so growing a file shows zeros.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Bytes {
    len: u64,
    pages: Vec<Arc<Vec<u8>>>,
}

impl Bytes {
    /// The length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Up to `n` bytes from `at`: fewer at the end of the file.
    pub fn read(&self, at: u64, n: usize) -> Vec<u8> {
        let end = at.saturating_add(n as u64).min(self.len);
        let mut out = Vec::with_capacity(end.saturating_sub(at) as usize);
        let mut pos = at;
        while pos < end {
            let (page, off) = ((pos / PAGE as u64) as usize, (pos % PAGE as u64) as usize);
            let take = ((PAGE - off) as u64).min(end - pos) as usize;
            out.extend_from_slice(&self.pages[page][off..off + take]);
            pos += take as u64;
        }
        out
    }

    /// Write `data` at `at`, growing the file (with zeros between) if needed.
    pub fn write(&mut self, at: u64, data: &[u8]) {
        let end = at + data.len() as u64;
        if end > self.len {
            self.set_len(end);
        }
        let mut done = 0;
        while done < data.len() {
            let pos = at + done as u64;
            let (page, off) = ((pos / PAGE as u64) as usize, (pos % PAGE as u64) as usize);
            let take = (PAGE - off).min(data.len() - done);
            Arc::make_mut(&mut self.pages[page])[off..off + take].copy_from_slice(&data[done..done + take]);
            done += take;
        }
    }

    /// Truncate or grow to `len` bytes.
    pub fn set_len(&mut self, len: u64) {
        let pages = len.div_ceil(PAGE as u64) as usize;
        if len < self.len {
            self.pages.truncate(pages);
            let off = (len % PAGE as u64) as usize;
            if let (Some(last), true) = (self.pages.last_mut(), off != 0) {
                Arc::make_mut(last)[off..].fill(0);
            }
        } else {
            let zero = Arc::new(vec![0u8; PAGE]);
            self.pages.resize_with(pages, || zero.clone());
        }
        self.len = len;
    }
}

/// One change to a file's data not yet made durable.
#[derive(Clone)]
enum Change {
    Write { at: u64, data: Vec<u8> },
    SetLen(u64),
}

/// The unit a disk writes whole: a write is torn at these boundaries.
const SECTOR: u64 = 4096;

impl Change {
    /// What of this unsynced change a reordering disk wrote: each
    /// 4 KiB-aligned piece of a write or not, at random, and a write's
    /// new length on its own (zeros behind it) or not; a change of length
    /// whole or not.
    fn apply_torn(&self, to: &mut Bytes, rng: &mut impl Rng, report: &mut CutReport) {
        match self {
            Change::Write { at, data } => {
                let end = at + data.len() as u64;
                if end > to.len() && rng.gen_bool(0.5) {
                    to.set_len(end);
                }
                let mut pos = *at;
                while pos < end {
                    let piece_end = ((pos / SECTOR + 1) * SECTOR).min(end);
                    let piece = &data[(pos - at) as usize..(piece_end - at) as usize];
                    if rng.gen_bool(0.5) {
                        to.write(pos, piece);
                        report.changes_kept += 1;
                    } else {
                        report.changes_lost += 1;
                    }
                    pos = piece_end;
                }
            }
            Change::SetLen(len) => {
                if rng.gen_bool(0.5) {
                    to.set_len(*len);
                    report.changes_kept += 1;
                } else {
                    report.changes_lost += 1;
                }
            }
        }
    }
}

#[derive(Clone)]
struct File {
    now: Bytes,
    synced: Bytes,
    /// Changes since the last sync, in the order they were made.
    unsynced: Vec<Change>,
    /// The mutation check: this file's syncs do nothing.
    syncs_ignored: bool,
}

#[derive(Clone)]
struct Dir {
    now: BTreeMap<OsString, Ino>,
    synced: BTreeMap<OsString, Ino>,
    /// Where this folder is now, for paths (a folder has one name).
    parent: Ino,
    name: OsString,
    /// The name change last made durable by a sync of this folder.
    synced_seq: u64,
}

/// One change of a name, in the order programs made them: what a
/// journaling file system commits, a prefix at a time, whether or not the
/// folder is synced.
#[derive(Clone)]
struct NameChange {
    seq: u64,
    dir: Ino,
    name: OsString,
    /// The node the name now stands for; `None`: removed.
    to: Option<Ino>,
}

#[derive(Clone)]
enum Body {
    File(File),
    Dir(Dir),
}

#[derive(Clone)]
struct Node {
    body: Body,
    perm: u16,
    mtime: SystemTime,
    /// Names this node has now (files; folders report 2).
    links: u32,
}

/// What `stat` shows of a node.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub ino: Ino,
    pub is_dir: bool,
    pub size: u64,
    pub perm: u16,
    pub links: u32,
    pub mtime: SystemTime,
}

/// How a power cut treats what was not made durable.
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// Every unsynced change is lost.
    DropAll,
    /// A disk that reorders its writes, at random (the seed): each 4 KiB
    /// piece of an unsynced write reaches it or not, in any combination,
    /// and a write's new length may reach it without the bytes; the
    /// journal of name changes was committed up to a point (a prefix of
    /// them, in the order they were made, whether or not their folders
    /// were synced), so a new name may last without the bytes behind it.
    Reorder(u64),
}

/// What a power cut threw away.
#[derive(Debug, Default, Clone, Copy)]
pub struct CutReport {
    /// Unsynced changes to files' data (4 KiB pieces, for a reordering
    /// disk) that were lost.
    pub changes_lost: u64,
    /// Unsynced changes to files' data that reached the disk anyway.
    pub changes_kept: u64,
    /// Folders whose names went back to their last sync.
    pub folders_rolled_back: u64,
}

/// Counts of what programs asked of the disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub writes: u64,
    pub file_syncs: u64,
    pub folder_syncs: u64,
    /// Syncs the mutation check ignored.
    pub syncs_ignored: u64,
}

/// The whole disk: an empty root folder to begin with.
#[derive(Clone)]
pub struct Disk {
    nodes: HashMap<Ino, Node>,
    next: Ino,
    /// Name changes not yet known durable, oldest first, numbered from 1.
    names: Vec<NameChange>,
    seq: u64,
    /// The mutation check: files created under this path (relative to the
    /// root, like `db/chunks`) ignore their fsyncs.
    ignore_syncs_under: Option<OsString>,
    pub stats: Stats,
}

impl Default for Disk {
    fn default() -> Self {
        Disk::new()
    }
}

impl Disk {
    /// An empty disk.
    pub fn new() -> Disk {
        let root = Node {
            body: Body::Dir(Dir {
                now: BTreeMap::new(),
                synced: BTreeMap::new(),
                parent: ROOT,
                name: OsString::new(),
                synced_seq: 0,
            }),
            perm: 0o755,
            mtime: SystemTime::now(),
            links: 2,
        };
        Disk {
            nodes: HashMap::from([(ROOT, root)]),
            next: ROOT + 1,
            names: Vec::new(),
            seq: 0,
            ignore_syncs_under: None,
            stats: Stats::default(),
        }
    }

    /// The mutation check: make fsyncs of files created from now on under
    /// `folder` (a path from the root, `a/b`) do nothing, as if the
    /// program had not called them. The harness must then fail.
    pub fn ignore_syncs_under(&mut self, folder: &str) {
        self.ignore_syncs_under = Some(folder.into());
    }

    fn node(&self, ino: Ino) -> Result<&Node> {
        self.nodes.get(&ino).ok_or(Refusal::NotFound)
    }

    fn dir(&self, ino: Ino) -> Result<&Dir> {
        match &self.node(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(Refusal::NotDir),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut Dir> {
        match &mut self.nodes.get_mut(&ino).ok_or(Refusal::NotFound)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(Refusal::NotDir),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut File> {
        match &mut self.nodes.get_mut(&ino).ok_or(Refusal::NotFound)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(Refusal::IsDir),
        }
    }

    /// Point `name` in folder `dir` at `to` (or remove it), and remember
    /// the change until the folder is synced.
    fn set_name(&mut self, dir: Ino, name: &OsStr, to: Option<Ino>) -> Result<()> {
        let d = self.dir_mut(dir)?;
        match to {
            Some(ino) => d.now.insert(name.to_owned(), ino),
            None => d.now.remove(name),
        };
        self.seq += 1;
        self.names.push(NameChange {
            seq: self.seq,
            dir,
            name: name.to_owned(),
            to,
        });
        Ok(())
    }

    fn touch(&mut self, ino: Ino) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.mtime = SystemTime::now();
        }
    }

    /// The path of folder `ino` from the root, `a/b`.
    fn path_of(&self, mut ino: Ino) -> OsString {
        let mut parts = Vec::new();
        while ino != ROOT {
            let Ok(d) = self.dir(ino) else { break };
            parts.push(d.name.clone());
            ino = d.parent;
        }
        parts.reverse();
        let mut path = OsString::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                path.push("/");
            }
            path.push(p);
        }
        path
    }

    /// What `stat` shows of `ino`.
    pub fn attr(&self, ino: Ino) -> Result<Attr> {
        let n = self.node(ino)?;
        let (is_dir, size) = match &n.body {
            Body::File(f) => (false, f.now.len()),
            Body::Dir(d) => (true, d.now.len() as u64),
        };
        Ok(Attr {
            ino,
            is_dir,
            size,
            perm: n.perm,
            links: n.links,
            mtime: n.mtime,
        })
    }

    /// The node named `name` in folder `parent`.
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Ino> {
        self.dir(parent)?.now.get(name).copied().ok_or(Refusal::NotFound)
    }

    /// The names in folder `ino`, with their nodes and whether each is a folder.
    pub fn list(&self, ino: Ino) -> Result<Vec<(OsString, Ino, bool)>> {
        let d = self.dir(ino)?;
        Ok(d.now
            .iter()
            .map(|(name, &child)| {
                let is_dir = matches!(self.nodes.get(&child).map(|n| &n.body), Some(Body::Dir(_)));
                (name.clone(), child, is_dir)
            })
            .collect())
    }

    /// The folder that holds folder `ino` (the root holds itself).
    pub fn parent_of(&self, ino: Ino) -> Result<Ino> {
        Ok(self.dir(ino)?.parent)
    }

    fn add(&mut self, parent: Ino, name: &OsStr, body: Body, perm: u16) -> Result<Ino> {
        if self.dir(parent)?.now.contains_key(name) {
            return Err(Refusal::Exists);
        }
        if name.is_empty() || name == "." || name == ".." {
            return Err(Refusal::Invalid);
        }
        let ino = self.next;
        self.next += 1;
        let links = if matches!(body, Body::Dir(_)) { 2 } else { 1 };
        self.nodes.insert(
            ino,
            Node {
                body,
                perm,
                mtime: SystemTime::now(),
                links,
            },
        );
        self.set_name(parent, name, Some(ino))?;
        self.touch(parent);
        Ok(ino)
    }

    /// Create an empty file `name` in `parent`.
    pub fn create(&mut self, parent: Ino, name: &OsStr, perm: u16) -> Result<Ino> {
        let syncs_ignored = match &self.ignore_syncs_under {
            Some(under) => {
                let path = self.path_of(parent);
                path == *under || {
                    let mut prefix = under.clone();
                    prefix.push("/");
                    path.as_encoded_bytes().starts_with(prefix.as_encoded_bytes())
                }
            }
            None => false,
        };
        let file = File {
            now: Bytes::default(),
            synced: Bytes::default(),
            unsynced: Vec::new(),
            syncs_ignored,
        };
        self.add(parent, name, Body::File(file), perm)
    }

    /// Create an empty folder `name` in `parent`.
    pub fn mkdir(&mut self, parent: Ino, name: &OsStr, perm: u16) -> Result<Ino> {
        let dir = Dir {
            now: BTreeMap::new(),
            synced: BTreeMap::new(),
            parent,
            name: name.to_owned(),
            synced_seq: 0,
        };
        self.add(parent, name, Body::Dir(dir), perm)
    }

    /// Remove the name of a file.
    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<()> {
        let ino = self.lookup(parent, name)?;
        if self.dir(ino).is_ok() {
            return Err(Refusal::IsDir);
        }
        self.set_name(parent, name, None)?;
        self.nodes.get_mut(&ino).expect("named nodes exist").links -= 1;
        self.touch(parent);
        Ok(())
    }

    /// Remove an empty folder.
    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<()> {
        let ino = self.lookup(parent, name)?;
        if !self.dir(ino)?.now.is_empty() {
            return Err(Refusal::NotEmpty);
        }
        self.set_name(parent, name, None)?;
        self.nodes.get_mut(&ino).expect("named nodes exist").links = 0;
        self.touch(parent);
        Ok(())
    }

    /// A second name for file `ino`.
    pub fn link(&mut self, ino: Ino, parent: Ino, name: &OsStr) -> Result<()> {
        if self.dir(ino).is_ok() {
            return Err(Refusal::IsDir);
        }
        if self.dir(parent)?.now.contains_key(name) {
            return Err(Refusal::Exists);
        }
        self.set_name(parent, name, Some(ino))?;
        self.nodes.get_mut(&ino).ok_or(Refusal::NotFound)?.links += 1;
        self.touch(parent);
        Ok(())
    }

    /// rename(2), with `RENAME_NOREPLACE` (`no_replace`) and
    /// `RENAME_EXCHANGE` (`exchange`).
    pub fn rename(
        &mut self,
        (from, name): (Ino, &OsStr),
        (to, new_name): (Ino, &OsStr),
        no_replace: bool,
        exchange: bool,
    ) -> Result<()> {
        let moving = self.lookup(from, name)?;
        let target = self.dir(to)?.now.get(new_name).copied();
        if target == Some(moving) {
            return Ok(());
        }
        let moving_is_dir = self.dir(moving).is_ok();
        if moving_is_dir && (moving == to || self.is_below(to, moving)) {
            return Err(Refusal::Invalid);
        }
        match (target, exchange) {
            (None, true) => return Err(Refusal::NotFound),
            (Some(_), _) if no_replace => return Err(Refusal::Exists),
            (Some(t), true) => {
                self.set_name(from, name, Some(t))?;
                self.set_name(to, new_name, Some(moving))?;
                self.moved(t, from, name);
                self.moved(moving, to, new_name);
            }
            (Some(t), false) => {
                let target_is_dir = self.dir(t).is_ok();
                match (moving_is_dir, target_is_dir) {
                    (true, false) => return Err(Refusal::NotDir),
                    (false, true) => return Err(Refusal::IsDir),
                    (true, true) if !self.dir(t)?.now.is_empty() => return Err(Refusal::NotEmpty),
                    _ => {}
                }
                self.set_name(from, name, None)?;
                self.set_name(to, new_name, Some(moving))?;
                let replaced = self.nodes.get_mut(&t).expect("named nodes exist");
                replaced.links = replaced.links.saturating_sub(1);
                self.moved(moving, to, new_name);
            }
            (None, false) => {
                self.set_name(from, name, None)?;
                self.set_name(to, new_name, Some(moving))?;
                self.moved(moving, to, new_name);
            }
        }
        // A journal commits a rename whole: its name changes share one
        // place in the order, so no cut keeps the removal without the
        // new name (or the other way round).
        let shared = self.seq - 1;
        for change in self.names.iter_mut().rev().take_while(|c| c.seq >= shared) {
            change.seq = shared;
        }
        self.seq = shared;
        self.touch(from);
        self.touch(to);
        Ok(())
    }

    /// Whether folder `ino` is somewhere below folder `above`.
    fn is_below(&self, mut ino: Ino, above: Ino) -> bool {
        while ino != ROOT {
            let Ok(d) = self.dir(ino) else { return false };
            if d.parent == above {
                return true;
            }
            ino = d.parent;
        }
        false
    }

    fn moved(&mut self, ino: Ino, parent: Ino, name: &OsStr) {
        if let Ok(d) = self.dir_mut(ino) {
            d.parent = parent;
            d.name = name.to_owned();
        }
    }

    /// Up to `n` bytes of file `ino` from `at`.
    pub fn read(&self, ino: Ino, at: u64, n: usize) -> Result<Vec<u8>> {
        match &self.node(ino)?.body {
            Body::File(f) => Ok(f.now.read(at, n)),
            Body::Dir(_) => Err(Refusal::IsDir),
        }
    }

    /// Write `data` at `at` in file `ino`: on the mount at once, durable at
    /// the file's next sync.
    pub fn write(&mut self, ino: Ino, at: u64, data: &[u8]) -> Result<()> {
        let f = self.file_mut(ino)?;
        f.now.write(at, data);
        f.unsynced.push(Change::Write {
            at,
            data: data.to_vec(),
        });
        self.stats.writes += 1;
        self.touch(ino);
        Ok(())
    }

    /// Truncate or grow file `ino`.
    pub fn set_len(&mut self, ino: Ino, len: u64) -> Result<()> {
        let f = self.file_mut(ino)?;
        if f.now.len() != len {
            f.now.set_len(len);
            f.unsynced.push(Change::SetLen(len));
        }
        self.touch(ino);
        Ok(())
    }

    /// chmod.
    pub fn set_perm(&mut self, ino: Ino, perm: u16) -> Result<()> {
        self.nodes.get_mut(&ino).ok_or(Refusal::NotFound)?.perm = perm;
        Ok(())
    }

    /// fsync or fdatasync of file `ino`: its data becomes durable. A
    /// folder's fsync reaches [`Disk::sync_dir`].
    pub fn sync_file(&mut self, ino: Ino) -> Result<()> {
        if self.dir(ino).is_ok() {
            return self.sync_dir(ino);
        }
        let f = self.file_mut(ino)?;
        if f.syncs_ignored {
            self.stats.syncs_ignored += 1;
            return Ok(());
        }
        f.synced = f.now.clone();
        f.unsynced.clear();
        self.stats.file_syncs += 1;
        Ok(())
    }

    /// fsync of folder `ino`: its names become durable.
    pub fn sync_dir(&mut self, ino: Ino) -> Result<()> {
        let seq = self.seq;
        let d = self.dir_mut(ino)?;
        d.synced = d.now.clone();
        d.synced_seq = seq;
        self.stats.folder_syncs += 1;
        // Changes every folder has made durable need not be kept.
        let nodes = &self.nodes;
        self.names.retain(|c| match nodes.get(&c.dir).map(|n| &n.body) {
            Some(Body::Dir(d)) => c.seq > d.synced_seq,
            _ => false,
        });
        Ok(())
    }

    /// The disk after a power cut: only what was durable (and, with
    /// [`Cut::Reorder`], some unsynced writes), reached from the root
    /// through durable names. A folder reached twice (an unsynced rename of
    /// a folder) keeps its first name. What programs asked of the disk
    /// carries over, the mutation check too.
    pub fn cut(&self, how: Cut) -> (Disk, CutReport) {
        let reorder = matches!(how, Cut::Reorder(_));
        let mut rng = rand::rngs::StdRng::seed_from_u64(match how {
            Cut::DropAll => 0,
            Cut::Reorder(seed) => seed,
        });
        let mut report = CutReport::default();
        // A reordering disk's journal committed the unsynced name changes
        // up to a point: the same point for every folder.
        let committed = match (reorder, self.names.first(), self.names.last()) {
            (true, Some(first), Some(last)) => rng.gen_range(first.seq - 1..=last.seq),
            _ => 0,
        };
        let mut out = Disk {
            nodes: HashMap::new(),
            next: self.next,
            names: Vec::new(),
            seq: 0,
            ignore_syncs_under: self.ignore_syncs_under.clone(),
            stats: self.stats,
        };
        let mut seen_dirs = HashSet::from([ROOT]);
        let mut queue = vec![(ROOT, ROOT, OsString::new())];
        while let Some((ino, parent, name)) = queue.pop() {
            let node = &self.nodes[&ino];
            let body = match &node.body {
                Body::File(f) => {
                    if out.nodes.contains_key(&ino) {
                        out.nodes.get_mut(&ino).expect("just checked").links += 1;
                        continue;
                    }
                    let mut kept = f.synced.clone();
                    for change in &f.unsynced {
                        if reorder {
                            change.apply_torn(&mut kept, &mut rng, &mut report);
                        } else {
                            report.changes_lost += 1;
                        }
                    }
                    Body::File(File {
                        now: kept.clone(),
                        synced: kept,
                        unsynced: Vec::new(),
                        syncs_ignored: f.syncs_ignored,
                    })
                }
                Body::Dir(d) => {
                    let mut durable = d.synced.clone();
                    for c in self.names.iter() {
                        if c.dir == ino && c.seq > d.synced_seq && c.seq <= committed {
                            match c.to {
                                Some(to) => durable.insert(c.name.clone(), to),
                                None => durable.remove(&c.name),
                            };
                        }
                    }
                    if d.now != durable {
                        report.folders_rolled_back += 1;
                    }
                    let mut names = BTreeMap::new();
                    for (child_name, &child) in &durable {
                        let child_is_dir = matches!(self.nodes[&child].body, Body::Dir(_));
                        if child_is_dir && !seen_dirs.insert(child) {
                            continue;
                        }
                        names.insert(child_name.clone(), child);
                        queue.push((child, ino, child_name.clone()));
                    }
                    Body::Dir(Dir {
                        now: names.clone(),
                        synced: names,
                        parent,
                        name,
                        synced_seq: 0,
                    })
                }
            };
            let links = if matches!(body, Body::Dir(_)) { 2 } else { 1 };
            out.nodes.insert(
                ino,
                Node {
                    body,
                    perm: node.perm,
                    mtime: node.mtime,
                    links,
                },
            );
        }
        (out, report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    fn contents(d: &Disk, path: &[&str]) -> Option<Vec<u8>> {
        let mut ino = ROOT;
        for p in path {
            ino = d.lookup(ino, name(p)).ok()?;
        }
        Some(d.read(ino, 0, usize::MAX).unwrap())
    }

    #[test]
    fn bytes_read_back_what_was_written_across_pages_and_truncation() {
        let mut b = Bytes::default();
        let data: Vec<u8> = (0..PAGE * 2 + 100).map(|i| (i % 251) as u8).collect();
        b.write(10, &data);
        assert_eq!(b.len(), 10 + data.len() as u64);
        assert_eq!(b.read(10, data.len()), data);
        assert_eq!(b.read(0, 10), vec![0; 10]);
        b.set_len(PAGE as u64 + 5);
        b.set_len(PAGE as u64 * 3);
        let back = b.read(0, PAGE * 3);
        assert_eq!(&back[10..PAGE + 5], &data[..PAGE - 5]);
        assert!(back[PAGE + 5..].iter().all(|&x| x == 0), "growing shows zeros");
        assert_eq!(b.read(PAGE as u64 * 3, 10), Vec::<u8>::new());
    }

    #[test]
    fn an_unsynced_write_is_lost_and_a_synced_one_stays() {
        let mut d = Disk::new();
        let f = d.create(ROOT, name("f"), 0o600).unwrap();
        d.sync_dir(ROOT).unwrap();
        d.write(f, 0, b"durable").unwrap();
        d.sync_file(f).unwrap();
        d.write(f, 0, b"VOLATILE and longer").unwrap();
        assert_eq!(contents(&d, &["f"]).unwrap(), b"VOLATILE and longer");
        let (after, report) = d.cut(Cut::DropAll);
        assert_eq!(contents(&after, &["f"]).unwrap(), b"durable");
        assert_eq!(report.changes_lost, 1);
    }

    #[test]
    fn a_name_lasts_only_once_its_folder_is_synced() {
        let mut d = Disk::new();
        let f = d.create(ROOT, name("f"), 0o600).unwrap();
        d.write(f, 0, b"x").unwrap();
        d.sync_file(f).unwrap();
        assert_eq!(
            contents(&d.cut(Cut::DropAll).0, &["f"]),
            None,
            "the name was never synced"
        );
        d.sync_dir(ROOT).unwrap();
        assert_eq!(contents(&d.cut(Cut::DropAll).0, &["f"]).unwrap(), b"x");
        // Synced name, unsynced data: the file comes back empty.
        let g = d.create(ROOT, name("g"), 0o600).unwrap();
        d.write(g, 0, b"lost").unwrap();
        d.sync_dir(ROOT).unwrap();
        assert_eq!(contents(&d.cut(Cut::DropAll).0, &["g"]).unwrap(), b"");
    }

    #[test]
    fn a_rename_over_a_file_without_a_folder_sync_brings_the_old_file_back() {
        let mut d = Disk::new();
        let old = d.create(ROOT, name("mark"), 0o600).unwrap();
        d.write(old, 0, b"old").unwrap();
        d.sync_file(old).unwrap();
        d.sync_dir(ROOT).unwrap();
        let tmp = d.create(ROOT, name("mark.tmp"), 0o600).unwrap();
        d.write(tmp, 0, b"new").unwrap();
        d.sync_file(tmp).unwrap();
        d.rename((ROOT, name("mark.tmp")), (ROOT, name("mark")), false, false)
            .unwrap();
        assert_eq!(contents(&d, &["mark"]).unwrap(), b"new");
        assert_eq!(d.attr(old).unwrap().links, 0);
        let (after, _) = d.cut(Cut::DropAll);
        assert_eq!(contents(&after, &["mark"]).unwrap(), b"old");
        assert_eq!(contents(&after, &["mark.tmp"]), None);
        d.sync_dir(ROOT).unwrap();
        assert_eq!(contents(&d.cut(Cut::DropAll).0, &["mark"]).unwrap(), b"new");
    }

    #[test]
    fn a_new_folder_needs_its_parent_synced() {
        let mut d = Disk::new();
        let sub = d.mkdir(ROOT, name("sub"), 0o700).unwrap();
        let f = d.create(sub, name("f"), 0o600).unwrap();
        d.write(f, 0, b"x").unwrap();
        d.sync_file(f).unwrap();
        d.sync_dir(sub).unwrap();
        assert_eq!(contents(&d.cut(Cut::DropAll).0, &["sub", "f"]), None);
        d.sync_dir(ROOT).unwrap();
        assert_eq!(contents(&d.cut(Cut::DropAll).0, &["sub", "f"]).unwrap(), b"x");
    }

    #[test]
    fn a_reordering_disk_keeps_some_unsynced_writes_and_not_others() {
        let mut d = Disk::new();
        let f = d.create(ROOT, name("f"), 0o600).unwrap();
        d.sync_dir(ROOT).unwrap();
        for i in 0..64u64 {
            d.write(f, i, &[b'a' + (i % 26) as u8]).unwrap();
        }
        let (after, report) = d.cut(Cut::Reorder(7));
        // One byte each: each write is one piece.
        assert_eq!(report.changes_kept + report.changes_lost, 64);
        assert!(report.changes_kept > 0 && report.changes_lost > 0, "{report:?}");
        let kept = contents(&after, &["f"]).unwrap();
        // Holes are zeros; what reached the disk is what was written there.
        assert!(kept
            .iter()
            .enumerate()
            .all(|(i, &b)| b == 0 || b == b'a' + (i % 26) as u8));
    }

    #[test]
    fn a_reordering_disk_keeps_names_in_the_order_they_were_made() {
        let mut d = Disk::new();
        for n in ["a", "b", "c"] {
            let f = d.create(ROOT, name(n), 0o600).unwrap();
            d.write(f, 0, n.as_bytes()).unwrap();
            d.sync_file(f).unwrap();
        }
        let mut seen = HashSet::new();
        for seed in 0..64 {
            let (after, _) = d.cut(Cut::Reorder(seed));
            let kept: Vec<bool> = ["a", "b", "c"]
                .iter()
                .map(|n| contents(&after, &[n]).is_some())
                .collect();
            // A prefix: never a later name without an earlier one.
            assert!(kept.windows(2).all(|w| w[0] || !w[1]), "seed {seed}: {kept:?}");
            seen.insert(kept.iter().filter(|k| **k).count());
        }
        assert_eq!(seen.len(), 4, "every prefix turns up: {seen:?}");
        assert_eq!(contents(&d.cut(Cut::DropAll).0, &["a"]), None);
    }

    /// Regression (found by review): a rename's removal and new name were
    /// two places in the journal's order, so a reordering cut could keep
    /// the one without the other and lose the file.
    #[test]
    fn a_reordering_disk_keeps_a_rename_whole_or_not_at_all() {
        let mut d = Disk::new();
        let (a, b) = (
            d.mkdir(ROOT, name("a"), 0o700).unwrap(),
            d.mkdir(ROOT, name("b"), 0o700).unwrap(),
        );
        let f = d.create(a, name("f"), 0o600).unwrap();
        d.write(f, 0, b"x").unwrap();
        d.sync_file(f).unwrap();
        for dir in [a, b, ROOT] {
            d.sync_dir(dir).unwrap();
        }
        d.rename((a, name("f")), (b, name("g")), false, false).unwrap();
        let mut seen = HashSet::new();
        for seed in 0..64 {
            let (after, _) = d.cut(Cut::Reorder(seed));
            let here = (
                contents(&after, &["a", "f"]).is_some(),
                contents(&after, &["b", "g"]).is_some(),
            );
            assert!(
                here.0 != here.1,
                "seed {seed}: the file is in a {}, in b {}",
                here.0,
                here.1
            );
            seen.insert(here);
        }
        assert_eq!(seen.len(), 2, "both outcomes turn up: {seen:?}");
    }

    #[test]
    fn a_reordering_disk_tears_a_write_at_4_kib_and_may_keep_only_its_length() {
        let mut d = Disk::new();
        let f = d.create(ROOT, name("f"), 0o600).unwrap();
        d.sync_dir(ROOT).unwrap();
        d.write(f, 0, &[7u8; 3 * SECTOR as usize]).unwrap();
        let (mut torn, mut length_only) = (false, false);
        for seed in 0..64 {
            let got = contents(&d.cut(Cut::Reorder(seed)).0, &["f"]).unwrap();
            let pieces: Vec<bool> = got.chunks(SECTOR as usize).map(|p| p.iter().all(|&b| b == 7)).collect();
            for p in got.chunks(SECTOR as usize) {
                assert!(
                    p.iter().all(|&b| b == 7) || p.iter().all(|&b| b == 0),
                    "a piece is whole or absent"
                );
            }
            torn |= pieces.len() == 3 && pieces.contains(&true) && pieces.contains(&false);
            length_only |= got.len() == 3 * SECTOR as usize && got.iter().all(|&b| b == 0);
        }
        assert!(torn && length_only, "torn {torn}, length alone {length_only}");
    }

    #[test]
    fn ignored_syncs_under_a_folder_make_nothing_durable_there() {
        let mut d = Disk::new();
        d.ignore_syncs_under("a/b");
        let a = d.mkdir(ROOT, name("a"), 0o700).unwrap();
        let b = d.mkdir(a, name("b"), 0o700).unwrap();
        let c = d.mkdir(b, name("c"), 0o700).unwrap();
        let (inside, deeper, beside) = (
            d.create(b, name("f"), 0o600).unwrap(),
            d.create(c, name("f"), 0o600).unwrap(),
            d.create(a, name("f"), 0o600).unwrap(),
        );
        for (ino, dir) in [(inside, b), (deeper, c), (beside, a)] {
            d.write(ino, 0, b"x").unwrap();
            d.sync_file(ino).unwrap();
            d.sync_dir(dir).unwrap();
        }
        d.sync_dir(ROOT).unwrap();
        let (after, _) = d.cut(Cut::DropAll);
        assert_eq!(contents(&after, &["a", "b", "f"]).unwrap(), b"");
        assert_eq!(contents(&after, &["a", "b", "c", "f"]).unwrap(), b"");
        assert_eq!(contents(&after, &["a", "f"]).unwrap(), b"x");
        assert_eq!(d.stats.syncs_ignored, 2);
    }

    #[test]
    fn rename_refusals_follow_posix() {
        let mut d = Disk::new();
        let dir = d.mkdir(ROOT, name("d"), 0o700).unwrap();
        d.create(dir, name("x"), 0o600).unwrap();
        d.create(ROOT, name("f"), 0o600).unwrap();
        let r = |d: &mut Disk, a: &str, b: &str, nr: bool, ex: bool| d.rename((ROOT, name(a)), (ROOT, name(b)), nr, ex);
        assert_eq!(r(&mut d, "f", "d", false, false), Err(Refusal::IsDir));
        assert_eq!(r(&mut d, "d", "f", false, false), Err(Refusal::NotDir));
        assert_eq!(r(&mut d, "f", "d", true, false), Err(Refusal::Exists));
        assert_eq!(r(&mut d, "nope", "g", false, false), Err(Refusal::NotFound));
        assert_eq!(
            d.rename((ROOT, name("d")), (dir, name("inner")), false, false),
            Err(Refusal::Invalid)
        );
        assert_eq!(d.rmdir(ROOT, name("d")), Err(Refusal::NotEmpty));
        r(&mut d, "f", "d", false, true).unwrap();
        assert!(d.dir(d.lookup(ROOT, name("f")).unwrap()).is_ok(), "exchanged");
    }
}
