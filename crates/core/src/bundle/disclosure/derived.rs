//! The files a disclosure bundle derives from its verified contents: the
//! manifest and the README (the summary is `summary`). Deterministic, so
//! that verifying can demand each is exactly what the contents imply;
//! reads no file.

use super::{
    disclosed_file, keys_file, DisclosedObject, DisclosureManifest, VerifiedDisclosure, FORMAT, SUMMARY_FILE,
    SUMMARY_SEALED_FILE,
};
use crate::bundle::derived::b64;
use crate::bundle::object_file;

/// The summary's file in a bundle in the clear or not.
pub(super) fn summary_file(plaintext: bool) -> &'static str {
    if plaintext {
        SUMMARY_FILE
    } else {
        SUMMARY_SEALED_FILE
    }
}

/// The manifest a verified disclosure must carry.
pub(super) fn manifest(v: &VerifiedDisclosure) -> DisclosureManifest {
    let plaintext = v.disclosure.plaintext;
    DisclosureManifest {
        format: FORMAT.into(),
        case: v.case_id.clone(),
        origin: v.checkpoint.origin.clone(),
        checkpoint_size: v.checkpoint.size,
        checkpoint_root: b64(&v.checkpoint.root),
        disclosed_at: v.disclosed.event.time.clone(),
        disclosed_by: v.disclosed.event.actor.clone(),
        disclosed_by_name: v.lawyer.name.clone(),
        recipient: v.disclosure.recipient.clone(),
        recipient_key_id: v.disclosure.recipient_key_id.as_ref().map(|k| k.to_string()),
        plaintext,
        language: v.language.code().into(),
        events: crate::bundle::derived::manifest_events(&v.events),
        objects: v
            .objects
            .iter()
            .map(|o| DisclosedObject {
                sha256: o.sha256.clone(),
                size: o.size,
                file: object_file(&o.sha256),
                keys: keys_file(&o.sha256, plaintext),
                disclosed: disclosed_file(&o.name, plaintext),
                stored_index: o.stored.index,
                received: o.stored.event.time.clone(),
                cleaned_sha256: o.cleaned_sha256.clone(),
            })
            .collect(),
        summary: summary_file(plaintext).into(),
    }
}

/// Manifest bytes, as written.
pub(super) fn manifest_bytes(v: &VerifiedDisclosure) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(&manifest(v)).expect("manifests serialise");
    out.push(b'\n');
    out
}

/// The README a verified disclosure must carry.
pub(super) fn readme(v: &VerifiedDisclosure) -> String {
    let m = manifest(v);
    let first = m.objects.first().expect("a disclosure names an object");
    let (mode, open) = if m.plaintext {
        (
            "in the clear, as filed with a court",
            "The disclosed files are in the clear; their keys, in keys/, let anyone\n   open the logged ciphertext and compare.",
        )
    } else {
        (
            "encrypted to the recipient's age key",
            "The disclosed files, their keys and the summary are age files encrypted\n   to the recipient: open them with the recipient's key, for example\n\n       age -d -i KEY_FILE files/NAME.age > NAME",
        )
    };
    format!(
        include_str!("README.txt.in"),
        case = m.case,
        origin = m.origin,
        size = m.checkpoint_size,
        root = m.checkpoint_root,
        disclosed_at = m.disclosed_at,
        disclosed_by = m.disclosed_by,
        disclosed_by_name = m.disclosed_by_name,
        recipient = m.recipient,
        objects = m.objects.len(),
        mode = mode,
        open = open,
        object = first.sha256,
        stored = first.stored_index,
        disclosure = v.disclosed.index,
        summary = m.summary,
        cleaned = cleaned_section(&m),
    )
}

/// The README's words on cleaned copies, when the bundle has any (and
/// nothing otherwise, so that a bundle without them reads as it always
/// did).
fn cleaned_section(m: &DisclosureManifest) -> String {
    let copies: Vec<String> = m
        .objects
        .iter()
        .filter_map(|o| {
            Some(format!(
                "    {}\n        SHA-256 {}\n",
                o.disclosed,
                o.cleaned_sha256.as_ref()?
            ))
        })
        .collect();
    if copies.is_empty() {
        return String::new();
    }
    format!(
        "\nCleaned copies\n--------------\n\
         The lawyer disclosed these files as copies cleaned of identifying metadata\n\
         (where, on what device or by whom a file was made), as the signed\n\
         \"case_disclosed\" entry records in its \"cleaned\" list:\n\n{}\n\
         A cleaned copy is not the logged object's plaintext and is not\n\
         byte-comparable with it, by design: step 4 does not apply to it. Its\n\
         keys file holds only its label's key, not the file key that would open\n\
         the original, metadata and all; the logged ciphertext is here so that\n\
         the original's existence, hash and time of receipt are still proven.\n\
         Check the copy against the SHA-256 the signed entry names:\n\n\
         {}    sha256sum files/NAME\n",
        copies.join(""),
        if m.plaintext {
            ""
        } else {
            "    age -d -i KEY_FILE files/NAME.age | sha256sum     # sealed, or\n"
        }
    )
}
