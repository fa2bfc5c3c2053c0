//! `custos export`: fetch a case's ciphertext, have the vault log the export
//! and hand over the events with their proofs, write the bundle, and verify
//! it before it is given a name. A bundle that does not verify is never left
//! behind as if it were good.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;

use super::flows::{check_receipt, verify};
use super::{Client, ClientError};
use crate::bundle::{self, Policy, VerifyReport};
use custos_core::audit::decode_hashes;
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::custody::tlog_proof::TlogProof;
use custos_core::custody::Action;
use custos_core::identity::Identity;

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    /// The case.
    pub case_id: String,
    /// The bundle folder or archive.
    pub path: PathBuf,
    /// Whether it is a .tar archive.
    pub archive: bool,
    /// Events in the bundle.
    pub events: usize,
    /// Ciphertext objects in the bundle.
    pub objects: usize,
    /// Size of the checkpoint the events are proven against.
    pub checkpoint_size: u64,
    /// The verification the bundle passed before it was written.
    pub verification: VerifyReport,
}

/// How the bundle is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Write one .tar file instead of a folder.
    pub archive: bool,
    /// Also write report.html.
    pub report: bool,
}

/// Export `case_id` to `out` (which must not exist yet).
pub async fn export(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
    out: &Path,
    options: ExportOptions,
) -> Result<Exported> {
    crate::ids::case_id_arg(case_id)?;
    if out.exists() {
        return Err(ClientError::Usage(format!(
            "{} exists already; choose a new path for the bundle",
            out.display()
        )));
    }
    let detail = match client.case(identity.signing_key(), case_id).await {
        Err(e) if e.code() == Some("not_found") => {
            return Err(ClientError::Usage(format!(
                "case {case_id} does not exist, or identity {} may not see it",
                identity.key_id()
            )))
        }
        other => other?,
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let staging = tempfile::Builder::new().prefix(".custos-export-").tempdir_in(&parent)?;
    let dir = staging.path().join("bundle");
    custos_durable::create_private_dir(&dir)?;
    for sub in [bundle::EVENTS_DIR, bundle::PROOFS_DIR, bundle::OBJECTS_DIR] {
        std::fs::create_dir(dir.join(sub))?;
    }

    // Ciphertext first, so the accesses are part of what the export proves.
    for obj in &detail.objects {
        // `Client::case` checked the ids; a file name is made of this one.
        crate::ids::host_object_id(&obj.object_id)?;
        let path = dir.join(bundle::object_file(&obj.object_id));
        let file = std::fs::File::create(&path)?;
        let download = client
            .open_export_download(identity.signing_key(), case_id, &obj.object_id)
            .await?;
        let (receipt, sha) = super::pipe::save(download, file).await?;
        if sha != obj.object_id {
            return Err(verify(format!(
                "object {} does not match its hash (got {sha})",
                obj.object_id
            )));
        }
        check_receipt(&receipt, log, Action::ObjectAccessed)?;
    }

    let body = client.export(identity.signing_key(), case_id).await?;
    if body.case_id != case_id {
        return Err(verify("the vault exported another case"));
    }
    let checkpoint = log
        .verify(&body.checkpoint)
        .map_err(|e| verify(format!("export checkpoint: {e}")))?;
    for entry in &body.entries {
        let bytes = B64
            .decode(&entry.event)
            .map_err(|_| verify("an exported event is not base64"))?;
        let hashes = decode_hashes(&entry.proof).ok_or_else(|| verify("an exported proof is malformed"))?;
        let proof = TlogProof {
            index: entry.index,
            hashes,
            checkpoint: body.checkpoint.clone(),
        };
        std::fs::write(dir.join(bundle::event_file(entry.index)), &bytes)?;
        std::fs::write(dir.join(bundle::proof_file(entry.index)), proof.to_text())?;
    }
    std::fs::write(dir.join(bundle::CHECKPOINT_FILE), &body.checkpoint)?;
    std::fs::write(dir.join(bundle::VKEY_FILE), format!("{}\n", log.vkey()))?;
    // Hashing every object again and packing them are long file work: off
    // the async threads, and so is removing the staging folder after.
    let (out_path, log_key) = (out.to_path_buf(), log.clone());
    let (verification, verified) = tokio::task::spawn_blocking(move || {
        let written = write_bundle(staging.path(), &out_path, &log_key, options);
        drop(staging);
        written
    })
    .await
    .map_err(|e| verify(format!("bundle task failed: {e}")))??;
    Ok(Exported {
        case_id: case_id.to_owned(),
        path: out.to_path_buf(),
        archive: options.archive,
        events: verified.events.len(),
        objects: verified.objects.len(),
        checkpoint_size: checkpoint.size,
        verification,
    })
}

/// Finish the bundle staged in `staging/bundle` (its derived files), verify
/// it, and put it at `out`, as a folder or a .tar. Blocking.
fn write_bundle(
    staging: &Path,
    out: &Path,
    log: &LogVerifier,
    options: ExportOptions,
) -> Result<(VerifyReport, bundle::Verified)> {
    let dir = staging.join("bundle");
    bundle::finish_dir(&dir, log, options.report).map_err(|e| match e {
        // A disk that cannot take the derived files is no verification failure.
        bundle::BundleError::Write { file, source } => ClientError::Io(std::io::Error::new(
            source.kind(),
            format!("writing the bundle's {file}: {source}"),
        )),
        e => verify(format!("the exported bundle: {e}")),
    })?;
    let (verification, verified) = bundle::verify_dir(&dir, log, &Policy::default());
    let verified = match (verified, verification.failure()) {
        (Some(v), None) => v,
        (_, failure) => {
            return Err(verify(format!(
                "the exported bundle does not verify: {}",
                failure.map_or("unknown".into(), |f| format!("{}: {}", f.check, f.detail))
            )))
        }
    };

    if options.archive {
        let root = out
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("custos-bundle")
            .to_owned();
        let partial = staging.join("bundle.tar");
        bundle::write_archive(&dir, &root, &partial)?;
        std::fs::rename(&partial, out)?;
    } else {
        std::fs::rename(&dir, out)?;
    }
    Ok((verification, verified))
}
