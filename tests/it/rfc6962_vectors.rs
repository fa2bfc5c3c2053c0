//! Walks every public RFC 6962 / RFC 9162 proof vector in tests/vectors:
//! the verifier must accept each `wantErr: false` file and reject each
//! `wantErr: true` file.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::custody::merkle::{verify_consistency, verify_inclusion, Hash};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inclusion {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Consistency {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    want_err: bool,
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(json_files(&p));
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn b64(s: &str) -> Vec<u8> {
    B64.decode(s).unwrap()
}

/// Proof hashes; `None` when one is not 32 bytes, which no verifier may accept.
fn hashes(proof: &Option<Vec<String>>) -> Option<Vec<Hash>> {
    proof
        .iter()
        .flatten()
        .map(|h| Hash::try_from(b64(h).as_slice()).ok())
        .collect()
}

fn vectors(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/rfc6962")
        .join(kind)
}

#[test]
fn every_inclusion_vector() {
    let files = json_files(&vectors("inclusion"));
    assert!(files.len() > 50, "vectors present: {}", files.len());
    let (mut accepted, mut rejected) = (0, 0);
    for f in files {
        let v: Inclusion = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let ok = match (hashes(&v.proof), Hash::try_from(b64(&v.leaf_hash).as_slice())) {
            (Some(proof), Ok(leaf)) => verify_inclusion(v.leaf_idx, v.tree_size, &leaf, &proof, &b64(&v.root)).is_ok(),
            _ => false,
        };
        assert_eq!(ok, !v.want_err, "{}", f.display());
        if ok {
            accepted += 1
        } else {
            rejected += 1
        }
    }
    assert!(accepted > 0 && rejected > 0, "both kinds exercised");
}

#[test]
fn every_consistency_vector() {
    let files = json_files(&vectors("consistency"));
    assert!(files.len() > 50, "vectors present: {}", files.len());
    let (mut accepted, mut rejected) = (0, 0);
    for f in files {
        let v: Consistency = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let ok = match hashes(&v.proof) {
            Some(proof) => verify_consistency(v.size1, v.size2, &proof, &b64(&v.root1), &b64(&v.root2)).is_ok(),
            None => false,
        };
        assert_eq!(ok, !v.want_err, "{}", f.display());
        if ok {
            accepted += 1
        } else {
            rejected += 1
        }
    }
    assert!(accepted > 0 && rejected > 0, "both kinds exercised");
}
