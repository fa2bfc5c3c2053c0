//! The FUSE adapter: serves a [`Disk`] at a folder through `fuser`, one
//! request at a time under one lock, and takes the power cut. No caching
//! of the disk's state in here: every answer comes from the model.
//!
//! Attributes and names are given with a time to live of zero, so the
//! kernel asks again rather than remember. Writes reach the model as they
//! are made: FUSE without its writeback cache (not asked for) sends each
//! write(2) through before it returns. File locks (sled's `flock`) stay in
//! the kernel, which keeps them itself when a file system does not.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    Request, TimeOrNow, WriteFlags,
};

use crate::disk::{Attr, Cut, CutReport, Disk, Refusal, Stats};

/// Attributes and names are never cached by the kernel (see the module
/// docs).
const TTL: Duration = Duration::ZERO;

/// The file-type bits of a mode, and a regular file's.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

/// A [`Disk`] served at a folder until [`Mounted::cut`].
pub struct Mounted {
    session: fuser::BackgroundSession,
    disk: Arc<Mutex<Disk>>,
    at: PathBuf,
}

impl Mounted {
    /// Serve `disk` at the folder `at` (which must exist). Needs the right
    /// to mount: root, or root of a user namespace with its own mounts.
    pub fn mount(disk: Disk, at: &Path) -> std::io::Result<Mounted> {
        let meta = std::fs::metadata(at)?;
        let disk = Arc::new(Mutex::new(disk));
        let fs = Forgetful {
            disk: disk.clone(),
            uid: meta.uid(),
            gid: meta.gid(),
        };
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("custos-powercut".into()),
            fuser::MountOption::RW,
        ];
        let session = fuser::spawn_mount(fs, at, &config)?;
        Ok(Mounted {
            session,
            disk,
            at: at.to_path_buf(),
        })
    }

    /// Counts of what programs asked of the disk so far.
    pub fn stats(&self) -> Stats {
        lock(&self.disk).stats
    }

    /// Unmount, the disk's volatile layer kept as it is: what
    /// [`Disk::cut`] may then cut in several ways. Every program that used
    /// the mount must have died first (the harness kills and reaps the
    /// server), so that no request is in flight and nothing holds a file
    /// open.
    pub fn stop(self) -> std::io::Result<Disk> {
        let disk = self.disk.clone();
        unmount(&self.at)?;
        // The session ends once the kernel has let go of the mount.
        self.session.join()?;
        let d = lock(&disk).clone();
        Ok(d)
    }

    /// The power cut: [`Mounted::stop`], then keep only what was durable.
    pub fn cut(self, how: Cut) -> std::io::Result<(Disk, CutReport)> {
        Ok(self.stop()?.cut(how))
    }
}

/// Unmount `at` with util-linux's `umount`. A file a thread of this
/// process has not closed yet (sled's, just after an in-process vault is
/// dropped) makes a plain unmount fail for a moment: it is tried again for
/// a second, then the mount is detached and goes once that file is closed.
fn unmount(at: &Path) -> std::io::Result<()> {
    let umount = |lazy: bool| {
        let mut c = std::process::Command::new("umount");
        if lazy {
            c.arg("-l");
        }
        c.arg(at).stderr(std::process::Stdio::null()).status()
    };
    for _ in 0..50 {
        if umount(false)?.success() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if umount(true)?.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!("umount {} failed", at.display())))
}

fn lock(disk: &Mutex<Disk>) -> MutexGuard<'_, Disk> {
    // A panic inside a request leaves the model as it was before that
    // request's change: carrying on shows what the harness would see.
    disk.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Forgetful {
    disk: Arc<Mutex<Disk>>,
    uid: u32,
    gid: u32,
}

fn errno(r: Refusal) -> Errno {
    match r {
        Refusal::NotFound => Errno::ENOENT,
        Refusal::Exists => Errno::EEXIST,
        Refusal::NotDir => Errno::ENOTDIR,
        Refusal::IsDir => Errno::EISDIR,
        Refusal::NotEmpty => Errno::ENOTEMPTY,
        Refusal::Invalid => Errno::EINVAL,
    }
}

impl Forgetful {
    fn disk(&self) -> MutexGuard<'_, Disk> {
        lock(&self.disk)
    }

    fn file_attr(&self, a: Attr) -> FileAttr {
        FileAttr {
            ino: INodeNo(a.ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: a.mtime,
            mtime: a.mtime,
            ctime: a.mtime,
            crtime: a.mtime,
            kind: if a.is_dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            perm: a.perm,
            nlink: a.links,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// Answer with the attributes, or the refusal.
    fn attr(&self, attr: Result<Attr, Refusal>, reply: ReplyAttr) {
        match attr {
            Ok(a) => reply.attr(&TTL, &self.file_attr(a)),
            Err(r) => reply.error(errno(r)),
        }
    }

    /// Answer with the attributes of `ino` from `disk`, or the refusal.
    fn entry(&self, disk: &Disk, made: Result<u64, Refusal>, reply: ReplyEntry) {
        match made.and_then(|ino| disk.attr(ino)) {
            Ok(a) => reply.entry(&TTL, &self.file_attr(a), Generation(0)),
            Err(r) => reply.error(errno(r)),
        }
    }
}

fn done(r: Result<(), Refusal>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(r) => reply.error(errno(r)),
    }
}

impl fuser::Filesystem for Forgetful {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let disk = self.disk();
        let found = disk.lookup(parent.0, name);
        self.entry(&disk, found, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let attr = self.disk().attr(ino.0);
        self.attr(attr, reply);
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut disk = self.disk();
        let changed = (|| {
            if let Some(len) = size {
                disk.set_len(ino.0, len)?;
            }
            if let Some(mode) = mode {
                disk.set_perm(ino.0, (mode & 0o7777) as u16)?;
            }
            disk.attr(ino.0)
        })();
        self.attr(changed, reply);
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & S_IFMT != S_IFREG {
            return reply.error(Errno::EPERM);
        }
        let mut disk = self.disk();
        let made = disk.create(parent.0, name, (mode & !umask & 0o7777) as u16);
        self.entry(&disk, made, reply);
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let mut disk = self.disk();
        let made = disk.mkdir(parent.0, name, (mode & !umask & 0o7777) as u16);
        self.entry(&disk, made, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(self.disk().unlink(parent.0, name), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(self.disk().rmdir(parent.0, name), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_WHITEOUT) {
            return reply.error(Errno::EINVAL);
        }
        let r = self.disk().rename(
            (parent.0, name),
            (newparent.0, newname),
            flags.contains(RenameFlags::RENAME_NOREPLACE),
            flags.contains(RenameFlags::RENAME_EXCHANGE),
        );
        done(r, reply);
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let mut disk = self.disk();
        let linked = disk.link(ino.0, newparent.0, newname).map(|()| ino.0);
        self.entry(&disk, linked, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.disk().attr(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(r) => reply.error(errno(r)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.disk().read(ino.0, offset, size as usize) {
            Ok(bytes) => reply.data(&bytes),
            Err(r) => reply.error(errno(r)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.disk().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(r) => reply.error(errno(r)),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        done(self.disk().sync_file(ino.0), reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.disk().list(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(r) => reply.error(errno(r)),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let disk = self.disk();
        let (names, parent) = match (disk.list(ino.0), disk.parent_of(ino.0)) {
            (Ok(names), Ok(parent)) => (names, parent),
            (Err(r), _) | (_, Err(r)) => return reply.error(errno(r)),
        };
        let dots = [(".".into(), ino.0, true), ("..".into(), parent, true)];
        for (i, (name, child, is_dir)) in dots.into_iter().chain(names).enumerate().skip(offset as usize) {
            let kind = if is_dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        done(self.disk().sync_dir(ino.0), reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Room enough for any harness run; the model keeps bytes in memory.
        reply.statfs(1 << 24, 1 << 23, 1 << 23, 1 << 20, 1 << 19, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut disk = self.disk();
        match disk
            .create(parent.0, name, (mode & !umask & 0o7777) as u16)
            .and_then(|ino| disk.attr(ino))
        {
            Ok(a) => reply.created(
                &TTL,
                &self.file_attr(a),
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(r) => reply.error(errno(r)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        // Plain allocation only: it may grow the file, never shrink it.
        if mode != 0 {
            return reply.error(Errno::EOPNOTSUPP);
        }
        let mut disk = self.disk();
        let grown = disk.attr(ino.0).and_then(|a| {
            let end = offset + length;
            if end > a.size {
                disk.set_len(ino.0, end)
            } else {
                Ok(())
            }
        });
        done(grown, reply);
    }
}
