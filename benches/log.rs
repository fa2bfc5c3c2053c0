//! The custody log at scale: a log of 1,000,000 events is written through
//! the store's own append path into a real sled store, then
//!   audit        every entry is read back and replayed by the auditor
//!                (`LogAuditor`: JSON, chain link, actor, Ed25519 signature,
//!                Merkle tree), in events per second, against a reference
//!                measured in the same run: SHA-256 leaf hashing of the same
//!                bytes, the least any audit must do;
//!   proofs       inclusion and consistency proofs at that size, as the
//!                vault builds them from its stored tree and as a client
//!                verifies them, mean over many random positions.
//!
//! The log is a registry (an anchor admin who registers a lawyer) and then
//! object accesses by that lawyer across 1,000 cases, each carrying a real
//! signed request of its own (the auditor refuses a request logged twice,
//! and one logged outside its validity): every event costs the auditor one
//! signature check, the most common and most expensive kind of event. The
//! requests are signed as the events are written, and the time spent
//! signing is left out of the write rate.
//!
//! Then, at that size, a backup: how long writes wait while the snapshot
//! is cut, the whole backup file against a plain copy of the store's files
//! measured in the same run, and its restore with the full audit.
//!
//! Usage: `cargo bench --bench log -- [EVENTS] [DIR]`; prints lines
//! `log ...` that `bench/run.sh` reads, and `backup ...` lines.

use std::time::Instant;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::audit::LogAuditor;
use custos::custody::checkpoint::LogSigner;
use custos::custody::{merkle, Action, EventDraft};
use custos::httpsig::SignedRequest;
use custos::identity::{Identity, Role};
use custos::store::Store;
use custos::wire::PrincipalBody;
use ed25519_dalek::SigningKey;
use rand::Rng;

const CASES: u64 = 1000;
/// Events per append: the size of one group commit of a busy vault.
const BATCH: u64 = 10_000;
/// Proofs timed per kind.
const PROOFS: u32 = 2000;

/// A request signed by `key` now, as a client would sign it, stored as
/// the vault stores it.
fn signed(key: &SigningKey, method: &str, uri: &str, body: Option<&[u8]>) -> SignedRequest {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    SignedRequest::sign(key, method, uri, body, now)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let events: u64 = args
        .first()
        .map(|a| a.parse().expect("EVENTS is a number"))
        .unwrap_or(1_000_000);
    let keep = args.get(1).map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir_in(keep.as_deref().unwrap_or(&std::env::temp_dir())).expect("temp dir");
    let store = Store::open(&custos::vault::db_path(tmp.path())).expect("store");
    let log_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let signer = LogSigner::new("bench.local/log", log_key.clone()).expect("signer");

    let admin = Identity::generate("Admin").expect("identity");
    let lawyer = Identity::generate("Lawyer").expect("identity");
    let base = "http://bench.local";
    let registration = serde_json::to_vec(&PrincipalBody {
        card: lawyer.card(),
        role: Role::Lawyer,
        intake: true,
    })
    .expect("serialisable");
    let mut drafts = vec![
        EventDraft {
            case: "vault".into(),
            actor: "vault".into(),
            action: Action::PrincipalAdded,
            objects: vec![],
            details: serde_json::json!({ "card": admin.card(), "role": "admin" }),
            request: None,
        },
        EventDraft {
            case: "vault".into(),
            actor: admin.card().key_id().to_string(),
            action: Action::PrincipalAdded,
            objects: vec![],
            details: serde_json::json!({ "key_id": lawyer.card().key_id(), "role": "lawyer" }),
            request: Some(signed(
                admin.signing_key(),
                "POST",
                &format!("{base}/v1/principals"),
                Some(&registration),
            )),
        },
    ];
    // The registry the two events above build, as the vault keeps it (the
    // restore's audit compares the two).
    let mut registry = custos::store::Batch::default();
    for (index, (id, role)) in [(&admin, Role::Admin), (&lawyer, Role::Lawyer)].into_iter().enumerate() {
        let principal = custos::identity::Principal {
            key_id: id.key_id(),
            name: id.card().name.clone(),
            role,
            intake: role == Role::Lawyer,
            card: id.card(),
        };
        let key = principal.key_id.to_string();
        registry.put_json(
            custos::store::T::Registry,
            key,
            &custos::store::RegistryRecord {
                principal,
                index: index as u64,
                contact: None,
            },
        );
    }
    let mut registry = Some(registry);
    let object = hex::encode([7u8; 32]);
    let cases: Vec<String> = (0..CASES).map(|c| format!("{c:024x}")).collect();

    let t0 = Instant::now();
    let mut signing = std::time::Duration::ZERO;
    let mut written = 0u64;
    while written < events {
        let signed_at = Instant::now();
        while (drafts.len() as u64) < BATCH.min(events - written) {
            let case = &cases[((written + drafts.len() as u64) % CASES) as usize];
            let url = format!("{base}/v1/cases/{case}/objects/{object}");
            drafts.push(EventDraft {
                case: case.clone(),
                actor: lawyer.card().key_id().to_string(),
                action: Action::ObjectAccessed,
                objects: vec![object.clone()],
                details: serde_json::json!({ "size": 1_048_576 }),
                request: Some(signed(lawyer.signing_key(), "GET", &url, None)),
            });
        }
        signing += signed_at.elapsed();
        let n = drafts.len() as u64;
        let guard = store.writer().await;
        store
            .append(
                &guard,
                registry.take().unwrap_or_default(),
                std::mem::take(&mut drafts),
                &signer,
            )
            .expect("append");
        drop(guard);
        written += n;
    }
    store.flush().await.expect("flush");
    let write_secs = (t0.elapsed() - signing).as_secs_f64();
    let size = store.log_size().expect("size");
    assert_eq!(size, events);
    println!(
        "log write events={events} secs={write_secs:.2} rate={:.0}",
        events as f64 / write_secs
    );

    // Read every entry back once, so both timed passes start from memory.
    let entries: Vec<Vec<u8>> = (0..size)
        .map(|i| store.entry(i).expect("read").expect("present"))
        .collect();
    let bytes: usize = entries.iter().map(Vec::len).sum();

    let t0 = Instant::now();
    let mut tree = merkle::MemoryTree::default();
    for e in &entries {
        tree.push(merkle::leaf_hash(e));
    }
    let hash_secs = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let mut auditor = LogAuditor::new();
    for e in &entries {
        auditor.push(e).expect("the log audits");
    }
    let audit_secs = t0.elapsed().as_secs_f64();
    assert_eq!(auditor.root(), tree.root_at(size));
    let summary = auditor.summary();
    println!(
        "log audit events={size} bytes={bytes} secs={audit_secs:.2} rate={:.0} signatures={} hash_secs={hash_secs:.3} hash_rate={:.0}",
        size as f64 / audit_secs,
        summary.signatures,
        size as f64 / hash_secs,
    );

    // What the signatures alone cost: one Ed25519 check of a stored request.
    let accesses: Vec<SignedRequest> = cases
        .iter()
        .map(|case| {
            let url = format!("{base}/v1/cases/{case}/objects/{object}");
            signed(lawyer.signing_key(), "GET", &url, None)
        })
        .collect();
    let t0 = Instant::now();
    let rounds = 20_000u32;
    for i in 0..rounds {
        accesses[i as usize % accesses.len()]
            .verify(&lawyer.card().verifying_key)
            .expect("verifies");
    }
    println!(
        "log signature verify_us={:.1}",
        t0.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
    );

    let root = tree.root_at(size);
    let mut rng = rand::thread_rng();
    let (mut make, mut check) = (0f64, 0f64);
    for _ in 0..PROOFS {
        let index = rng.gen_range(0..size);
        let t = Instant::now();
        let proof = store.inclusion_proof(index, size).expect("read").expect("proof");
        let t2 = Instant::now();
        merkle::verify_inclusion(index, size, &merkle::leaf_hash(&entries[index as usize]), &proof, &root)
            .expect("inclusion verifies");
        make += (t2 - t).as_secs_f64();
        check += t2.elapsed().as_secs_f64();
    }
    let per = |s: f64| s * 1e6 / f64::from(PROOFS);
    println!(
        "log inclusion size={size} make_us={:.1} verify_us={:.1}",
        per(make),
        per(check)
    );
    let (mut make, mut check) = (0f64, 0f64);
    for _ in 0..PROOFS {
        let old = rng.gen_range(1..size);
        let old_root = tree.root_at(old);
        let t = Instant::now();
        let proof = store.consistency_proof(old, size).expect("read").expect("proof");
        let t2 = Instant::now();
        merkle::verify_consistency(old, size, &proof, &old_root, &root).expect("consistency verifies");
        make += (t2 - t).as_secs_f64();
        check += t2.elapsed().as_secs_f64();
    }
    println!(
        "log consistency size={size} make_us={:.1} verify_us={:.1}",
        per(make),
        per(check)
    );

    backup(store, signer, &log_key, &admin, tmp.path()).await;
}

/// The backup of this log: the snapshot's cut (the writer lock is held from
/// its start to the end of the tree copy, so this bounds how long writes
/// wait), the whole file, and its restore with the full audit; against a
/// plain copy of the store's files.
async fn backup(store: Store, signer: LogSigner, log_key: &SigningKey, admin: &Identity, dir: &std::path::Path) {
    use custos::backup::{self, LogKeySource};
    let description = custos::vault::Description {
        origin: signer.origin().to_owned(),
        anchors: vec![admin.card()],
        vkey: signer.verifier().vkey(),
    };
    let vault = std::sync::Arc::new(custos::vault::Vault {
        store,
        signer,
        description,
        dir: dir.to_owned(),
    });
    let t0 = Instant::now();
    let snapshot = backup::snapshot(vault.clone()).await.expect("snapshot");
    let snapshot_ms = t0.elapsed().as_secs_f64() * 1e3;
    let held_ms = snapshot.writes_held().as_secs_f64() * 1e3;
    let file = dir.join("vault.backup");
    let t0 = Instant::now();
    let out = std::fs::File::create(&file).expect("backup file");
    snapshot
        .write(&vault.store, std::io::BufWriter::new(&out))
        .expect("backup");
    out.sync_all().expect("sync");
    let secs = t0.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&file).expect("size").len();

    // The reference: copy sled's own files, as a backup of a stopped vault
    // by `cp` would.
    let copy = dir.join("copy");
    std::fs::create_dir_all(&copy).expect("copy dir");
    let t0 = Instant::now();
    let mut copied = 0;
    for entry in std::fs::read_dir(custos::vault::db_path(dir)).expect("db dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            let to = copy.join(entry.file_name());
            copied += std::fs::copy(entry.path(), &to).expect("copy");
            std::fs::File::open(&to).expect("copied").sync_all().expect("sync");
        }
    }
    let copy_secs = t0.elapsed().as_secs_f64();
    let mb = |b: u64, s: f64| b as f64 / s / (1024.0 * 1024.0);
    println!(
        "backup events={} held_ms={held_ms:.1} snapshot_ms={snapshot_ms:.0} bytes={bytes} secs={secs:.2} rate_mib_s={:.0} copy_bytes={copied} copy_secs={copy_secs:.2} copy_rate_mib_s={:.0} ratio={:.2}",
        vault.store.log_size().expect("size"),
        mb(bytes, secs),
        mb(copied, copy_secs),
        mb(bytes, secs) / mb(copied, copy_secs),
    );
    drop(vault);

    let key = dir.join("log.key");
    std::fs::write(&key, B64.encode(log_key.to_bytes())).expect("key file");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("mode");
    let t0 = Instant::now();
    let restored = backup::restore(&file, &dir.join("restored"), LogKeySource::File(&key))
        .expect("the backup restores and audits");
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "backup restore events={} secs={secs:.2} rate={:.0}",
        restored.audit.entries,
        restored.audit.entries as f64 / secs
    );
}
