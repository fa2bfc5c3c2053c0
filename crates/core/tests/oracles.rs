//! Our Merkle proofs and signed notes against two independent
//! implementations of the same specifications, used as oracles:
//! `tlog_tiles` (RFC 6962 / C2SP tlog hashing and proofs, a port of Go's
//! golang.org/x/mod/sumdb/tlog) and `signed_note` (C2SP signed-note).
//! Each side must accept what the other makes, and roots must agree.

use custos_core::custody::checkpoint::LogSigner;
use custos_core::custody::merkle::{self, MemoryTree};
use ed25519_dalek::SigningKey;
use tlog_tiles::tlog;

/// tlog's stored hashes, in memory, as its HashReader wants them.
struct Stored(Vec<tlog::Hash>);

impl tlog::HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
    }
}

fn record(i: u64) -> Vec<u8> {
    format!("custody event {i}").into_bytes()
}

#[test]
fn roots_and_proofs_agree_with_tlog_tiles() {
    const N: u64 = 70;
    let mut ours = MemoryTree::default();
    let mut theirs = Stored(Vec::new());
    for i in 0..N {
        let data = record(i);
        ours.push(merkle::leaf_hash(&data));
        let new = tlog::stored_hashes(i, &data, &theirs).unwrap();
        theirs.0.extend(new);
    }
    let node = |l: u32, i: u64| ours.node(l, i);
    for n in 1..=N {
        let root = ours.root_at(n);
        assert_eq!(tlog::tree_hash(n, &theirs).unwrap().0, root, "root of {n}");
        for t in 0..n {
            let leaf = merkle::leaf_hash(&record(t));
            // Our inclusion proof passes their check, and theirs ours.
            let proof = merkle::inclusion_proof(t, n, &mut { node }).unwrap().unwrap();
            let as_theirs: Vec<tlog::Hash> = proof.iter().map(|h| tlog::Hash(*h)).collect();
            tlog::check_record(&as_theirs, n, tlog::Hash(root), t, tlog::Hash(leaf))
                .unwrap_or_else(|e| panic!("their check of our proof of {t} in {n}: {e:?}"));
            let theirs_proof: Vec<[u8; 32]> = tlog::prove_record(n, t, &theirs).unwrap().iter().map(|h| h.0).collect();
            merkle::verify_inclusion(t, n, &leaf, &theirs_proof, &root)
                .unwrap_or_else(|e| panic!("our check of their proof of {t} in {n}: {e:?}"));
        }
        for m in 1..=n {
            let old = ours.root_at(m);
            let proof = merkle::consistency_proof(m, n, &mut { node }).unwrap().unwrap();
            let as_theirs: Vec<tlog::Hash> = proof.iter().map(|h| tlog::Hash(*h)).collect();
            tlog::check_tree(&as_theirs, n, tlog::Hash(root), m, tlog::Hash(old))
                .unwrap_or_else(|e| panic!("their check of our proof {m} -> {n}: {e:?}"));
            let theirs_proof: Vec<[u8; 32]> = tlog::prove_tree(n, m, &theirs).unwrap().iter().map(|h| h.0).collect();
            merkle::verify_consistency(m, n, &theirs_proof, &old, &root)
                .unwrap_or_else(|e| panic!("our check of their proof {m} -> {n}: {e:?}"));
        }
    }
    // And a wrong root is refused by both.
    let proof = merkle::inclusion_proof(3, 9, &mut { node }).unwrap().unwrap();
    let as_theirs: Vec<tlog::Hash> = proof.iter().map(|h| tlog::Hash(*h)).collect();
    let wrong = tlog::Hash(ours.root_at(8));
    assert!(tlog::check_record(&as_theirs, 9, wrong, 3, tlog::Hash(merkle::leaf_hash(&record(3)))).is_err());
}

#[test]
fn our_checkpoints_are_signed_notes_to_signed_note() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let signer = LogSigner::new("oracle.example/log", key.clone()).unwrap();
    let mut tree = MemoryTree::default();
    for i in 0..5 {
        tree.push(merkle::leaf_hash(&record(i)));
    }
    let note = signer.sign(5, tree.root_at(5));
    // Their verifier, made from our vkey, accepts our note.
    let verifier = signed_note::StandardVerifier::new(&signer.verifier().vkey()).unwrap();
    let parsed = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
    let list = signed_note::VerifierList::new(vec![Box::new(verifier)]);
    let (verified, _) = parsed.verify(&list).unwrap();
    assert_eq!(verified.len(), 1);
    // A note they sign with the same key and name, we accept.
    let ours_verifier = signer.verifier();
    let text = format!("oracle.example/log\n5\n{}\n", base64_root(&tree.root_at(5)));
    let skey = signed_note_skey("oracle.example/log", &key);
    let their_signer = signed_note::StandardSigner::new(&skey).unwrap();
    let mut theirs = signed_note::Note::new(text.as_bytes(), &[]).unwrap();
    theirs.add_sigs(&[&their_signer]).unwrap();
    let theirs = String::from_utf8(theirs.to_bytes()).unwrap();
    let checkpoint = ours_verifier.verify(&theirs).unwrap();
    assert_eq!(checkpoint.size, 5);
    // A tampered note is refused by both.
    let forged = note.replacen("\n5\n", "\n6\n", 1);
    let list = signed_note::VerifierList::new(vec![Box::new(
        signed_note::StandardVerifier::new(&signer.verifier().vkey()).unwrap(),
    )]);
    assert!(signed_note::Note::from_bytes(forged.as_bytes())
        .unwrap()
        .verify(&list)
        .is_err());
    assert!(ours_verifier.verify(&forged).is_err());
}

fn base64_root(root: &[u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(root)
}

/// A signed-note private key in the C2SP text form:
/// `PRIVATE+KEY+name+keyid+base64(0x01 || seed)`.
fn signed_note_skey(name: &str, key: &SigningKey) -> String {
    use base64::Engine;
    let id = signed_note::key_id(name, &[&[0x01u8][..], key.verifying_key().as_bytes()].concat());
    let mut raw = vec![0x01u8];
    raw.extend_from_slice(key.as_bytes());
    format!(
        "PRIVATE+KEY+{name}+{id:08x}+{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}
