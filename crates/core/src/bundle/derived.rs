//! The files a bundle derives from its verified contents: the manifest and
//! the README (the report is `report`). Deterministic, so that verifying
//! can demand each is exactly what the contents imply; reads no file.

use super::{event_file, object_file, proof_file, Manifest, ManifestEvent, ManifestObject, Verified, FORMAT};

pub(super) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The manifest's line for each verified event: where its file and proof
/// are, and the hash of its bytes. Export and disclosure manifests share it.
pub(super) fn manifest_events(events: &[super::VerifiedEvent]) -> Vec<ManifestEvent> {
    events
        .iter()
        .map(|e| ManifestEvent {
            index: e.index,
            case: e.event.case.clone(),
            seq: e.event.seq,
            action: e.event.action,
            file: event_file(e.index),
            proof: proof_file(e.index),
            sha256: crate::custody::event_hash(&e.bytes),
        })
        .collect()
}

/// The manifest a verified bundle must carry.
pub fn manifest(v: &Verified, report: bool) -> Manifest {
    let export = v.export_event();
    Manifest {
        format: FORMAT.into(),
        case: v.case_id.clone(),
        origin: v.checkpoint.origin.clone(),
        checkpoint_size: v.checkpoint.size,
        checkpoint_root: b64(&v.checkpoint.root),
        exported_at: export.time.clone(),
        exported_by: export.actor.clone(),
        events: manifest_events(&v.events),
        objects: v
            .objects
            .iter()
            .map(|(sha, size)| ManifestObject {
                sha256: sha.clone(),
                size: *size,
                file: object_file(sha),
            })
            .collect(),
        report,
    }
}

/// Manifest bytes, as written.
pub fn manifest_bytes(v: &Verified, report: bool) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(&manifest(v, report)).expect("manifests serialise");
    out.push(b'\n');
    out
}

/// The README a verified bundle must carry.
pub fn readme(v: &Verified) -> String {
    let m = manifest(v, false);
    let first_case_event = m
        .events
        .iter()
        .find(|e| e.case == v.case_id)
        .expect("case events exist");
    let first_object = m.objects.first().map_or("SHA256".to_owned(), |o| o.sha256.clone());
    format!(
        include_str!("README.txt.in"),
        case = m.case,
        origin = m.origin,
        size = m.checkpoint_size,
        root = m.checkpoint_root,
        exported_at = m.exported_at,
        exported_by = m.exported_by,
        events = m.events.len(),
        objects = m.objects.len(),
        index = first_case_event.index,
        object = first_object,
    )
}
