//! Packing a bundle folder into a reproducible .tar and unpacking one
//! safely (one top folder, no links, no `..`). Checks nothing inside; a
//! bundle unpacked from an archive is verified like any folder.

use std::path::{Path, PathBuf};

use super::{EVENTS_DIR, OBJECTS_DIR, PROOFS_DIR};

/// Pack a bundle folder into a .tar whose entries sit under `root/`, with
/// fixed owners, modes and times so the archive depends only on the content.
pub fn write_archive(dir: &Path, root: &str, out: &Path) -> std::io::Result<()> {
    let file = std::fs::File::create(out)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(dir.join(&rel))? {
            let e = e?;
            let path = rel.join(e.file_name());
            if e.file_type()?.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for dir_name in [EVENTS_DIR, PROOFS_DIR, OBJECTS_DIR] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o700);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(&mut h, format!("{root}/{dir_name}/"), std::io::empty())?;
    }
    for rel in files {
        let f = std::fs::File::open(dir.join(&rel))?;
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(f.metadata()?.len());
        h.set_mtime(0);
        tar.append_data(&mut h, Path::new(root).join(&rel), f)?;
    }
    let mut w = tar.into_inner()?;
    std::io::Write::flush(&mut w)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Make `folder` and each missing folder between `into` and it, readable
/// by their owner only.
fn private_dirs(into: &Path, folder: &Path) -> std::io::Result<()> {
    let mut missing: Vec<&Path> = folder.ancestors().take_while(|a| *a != into && !a.exists()).collect();
    missing.reverse();
    for dir in missing {
        custos_durable::create_private_dir(dir)?;
    }
    Ok(())
}

/// Unpack a bundle archive into `into` and return the bundle folder inside
/// it. Entries must all sit under one top folder; links and absolute or
/// `..` paths are refused.
pub fn unpack_archive(archive: &Path, into: &Path) -> Result<PathBuf, String> {
    let file = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let mut tar = tar::Archive::new(file);
    let mut root: Option<String> = None;
    for entry in tar.entries().map_err(|e| format!("not a tar archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("damaged archive: {e}"))?;
        let ty = entry.header().entry_type();
        if !(ty.is_file() || ty.is_dir()) {
            return Err("the archive holds a link or special file".into());
        }
        let path = entry.path().map_err(|e| format!("damaged archive: {e}"))?.into_owned();
        let mut parts = path.components();
        let top = match parts.next() {
            Some(std::path::Component::Normal(t)) => t.to_string_lossy().into_owned(),
            _ => return Err(format!("unsafe path {} in the archive", path.display())),
        };
        if parts.any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(format!("unsafe path {} in the archive", path.display()));
        }
        match &root {
            None => root = Some(top),
            Some(r) if *r != top => return Err("the archive holds more than one folder".into()),
            Some(_) => {}
        }
        // Folders are made here, readable by their owner only, never with
        // the archive's modes (a folder listed read-only before its files
        // would stop the unpacking, or leave files no one can remove), and
        // files keep no more than the owner's bits: a disclosure in the
        // clear is evidence.
        let at = into.join(&path);
        let folder = if ty.is_dir() {
            at.as_path()
        } else {
            at.parent().unwrap_or(into)
        };
        private_dirs(into, folder).map_err(|e| format!("unpacking {}: {e}", path.display()))?;
        if ty.is_dir() {
            continue;
        }
        entry.set_mask(0o077);
        if !entry
            .unpack_in(into)
            .map_err(|e| format!("unpacking {}: {e}", path.display()))?
        {
            return Err(format!("unsafe path {} in the archive", path.display()));
        }
    }
    let root = root.ok_or("the archive is empty")?;
    Ok(into.join(root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn header(path: &str, ty: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_size(size);
        h.set_cksum();
        h
    }

    #[test]
    fn unpacked_files_and_folders_are_the_owners_alone_whatever_the_archive_says() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("b.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
        let body = b"evidence";
        b.append(
            &header(
                "bundle/sub/evidence.jpg",
                tar::EntryType::Regular,
                0o644,
                body.len() as u64,
            ),
            &body[..],
        )
        .unwrap();
        // A folder listed read-only after its file: applied as given, it
        // would leave a file no one can remove.
        b.append(
            &header("bundle/sub/", tar::EntryType::Directory, 0o000, 0),
            std::io::empty(),
        )
        .unwrap();
        b.append(
            &header("bundle/objects/", tar::EntryType::Directory, 0o555, 0),
            std::io::empty(),
        )
        .unwrap();
        b.into_inner().unwrap();
        let into = tmp.path().join("into");
        std::fs::create_dir(&into).unwrap();
        let root = unpack_archive(&archive, &into).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(std::fs::read(root.join("sub/evidence.jpg")).unwrap(), body);
        assert_eq!(mode(&root.join("sub/evidence.jpg")), 0o600);
        for dir in [root.clone(), root.join("sub"), root.join("objects")] {
            assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        }
    }
}
