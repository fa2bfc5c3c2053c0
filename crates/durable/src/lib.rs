//! Writing small files so that a crash or a power cut leaves either the old
//! file or the new one, never half of one: the one place outside the store
//! that calls fsync. Used for trust pins, resume journals, receipts and a
//! witness's state; and folders only their owner can enter. Its own crate
//! because the server and the client both write such files and neither
//! may depend on the other.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::Path;

/// Write `bytes` to `path` by way of a temporary file in the same folder,
/// synced, then renamed over `path`, and the folder synced so the rename
/// itself survives a power cut.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = folder_of(path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// The folder that holds `path`: `.` for a bare file name.
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Make `path`'s own name, in the folder that holds it, durable: after a
/// file or folder is created or renamed there.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    sync_dir(folder_of(path))
}

/// Make the names in `dir` (creations, renames, removals) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Create a directory only its owner can enter. A new one's name is made
/// durable in its parent, unless the user may not open the parent (a
/// root-owned folder need not be readable): then it lasts as that file
/// system keeps names.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    // The folders create_dir_all will make, deepest first.
    let created: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    // Each new folder's name in its parent, from the top down.
    for new in created.into_iter().rev() {
        match sync_parent(new) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            other => other?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
