//! The disclosure bundle's own small parts: key files in their one form,
//! and the file names a bundle may use. Whole bundles are built and broken
//! by `tests/it/disclose.rs`, through the real binary.

use super::contents::plain_name;
use super::*;
use crate::envelope::{decrypt_capturing, encrypt_bytes, CaseKey};

fn a_key() -> AgeFileKey {
    let case = CaseKey::generate();
    let ct = encrypt_bytes(b"x", &[&case.recipient()]).unwrap();
    decrypt_capturing(&ct[..], Vec::new(), case.identity()).unwrap()
}

#[test]
fn key_files_have_one_form() {
    let keys = ObjectKeys {
        object: Some(a_key()),
        label: a_key(),
    };
    let bytes = keys.to_bytes();
    assert_eq!(ObjectKeys::from_bytes(&bytes).unwrap(), keys);
    // A cleaned copy's: the label's key alone, in its one form too.
    let label_only = ObjectKeys {
        object: None,
        label: a_key(),
    };
    let only = label_only.to_bytes();
    assert!(!String::from_utf8_lossy(&only).contains("object"));
    assert_eq!(ObjectKeys::from_bytes(&only).unwrap(), label_only);
    // Pretty-printed, or without its newline, or with a field more: refused.
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    assert!(ObjectKeys::from_bytes(&pretty).is_err());
    assert!(ObjectKeys::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut more = value.clone();
    more["case"] = "key".into();
    let mut more = serde_json::to_vec(&more).unwrap();
    more.push(b'\n');
    assert!(ObjectKeys::from_bytes(&more).is_err());
}

#[test]
fn disclosed_files_have_plain_names() {
    for ok in ["exam.pdf", "photo 1.jpg", "отчёт.pdf", "statement-2.txt"] {
        assert!(plain_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", ".hidden", "..", "../x", "a/b", "a\\b", "a\nb"] {
        assert!(plain_name(bad).is_err(), "{bad:?}");
    }
    assert_eq!(disclosed_file("exam.pdf", false), "files/exam.pdf.age");
    assert_eq!(disclosed_file("exam.pdf", true), "files/exam.pdf");
    assert_eq!(
        keys_file(&"a".repeat(64), true),
        format!("keys/{}.json", "a".repeat(64))
    );
}
