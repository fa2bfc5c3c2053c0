//! The custody log at scale: a log of 1,000,000 events is written through
//! the store's own append path into a real sled store, then
//!   audit        every entry is read back and replayed by the auditor
//!                (`LogAuditor::push_all` on all cores, 10,000 entries at a
//!                time: JSON, chain link, actor, Ed25519 signature, Merkle
//!                tree), in events per second, against references measured
//!                in the same run: SHA-256 leaf hashing of the same bytes,
//!                the least any audit must do, and the Ed25519 checks of the
//!                same signatures alone on all cores, in ed25519-dalek's
//!                batches (`batch_rate`), in batches made to accept no more
//!                than one by one (`exact_batch_rate`: each R checked for a
//!                small-order component first), and one by one
//!                (`single_rate`, the check the auditor runs: see
//!                `audit/batch.rs` for why);
//!   incremental  the log served by a live vault on 127.0.0.1, audited
//!                through the `custos` command with a state file, then
//!                10,000 more events and the audit again, end to end
//!                (process start to exit);
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
//! The registry also holds an auditor, whose identity the command uses.
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
/// Entries the auditor is given at a time.
const AUDIT_CHUNK: usize = 10_000;
/// Signatures per ed25519-dalek batch in the reference.
const SIG_BATCH: usize = 256;
/// Events logged between the two audits through the command.
const NEW_EVENTS: u64 = 10_000;

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
    let auditor = Identity::generate("Auditor").expect("identity");
    let base = "http://bench.local";
    let registration = serde_json::to_vec(&PrincipalBody {
        card: lawyer.card(),
        role: Role::Lawyer,
        intake: true,
    })
    .expect("serialisable");
    let auditor_registration = serde_json::to_vec(&PrincipalBody {
        card: auditor.card(),
        role: Role::Auditor,
        intake: false,
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
        EventDraft {
            case: "vault".into(),
            actor: admin.card().key_id().to_string(),
            action: Action::PrincipalAdded,
            objects: vec![],
            details: serde_json::json!({ "key_id": auditor.card().key_id(), "role": "auditor" }),
            request: Some(signed(
                admin.signing_key(),
                "POST",
                &format!("{base}/v1/principals"),
                Some(&auditor_registration),
            )),
        },
    ];
    // The registry the two events above build, as the vault keeps it (the
    // restore's audit compares the two).
    let mut registry = custos::store::Batch::default();
    let registered = [
        (&admin, Role::Admin),
        (&lawyer, Role::Lawyer),
        (&auditor, Role::Auditor),
    ];
    for (index, (id, role)) in registered.into_iter().enumerate() {
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

    let accesses = Accesses {
        lawyer: &lawyer,
        cases: &cases,
        object: &object,
        base,
    };
    let t0 = Instant::now();
    let mut signing = std::time::Duration::ZERO;
    let mut written = 0u64;
    while written < events {
        let signed_at = Instant::now();
        accesses.fill(&mut drafts, written, BATCH.min(events - written));
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
    let mut log_auditor = LogAuditor::new();
    for chunk in entries.chunks(AUDIT_CHUNK) {
        log_auditor.push_all(chunk).expect("the log audits");
    }
    let audit_secs = t0.elapsed().as_secs_f64();
    assert_eq!(log_auditor.root(), tree.root_at(size));
    let summary = log_auditor.summary();
    let (batch_rate, exact_batch_rate, single_rate) = signature_rates(&entries, &[&admin, &lawyer, &auditor]);
    let rate = size as f64 / audit_secs;
    println!(
        "log audit events={size} bytes={bytes} secs={audit_secs:.2} rate={rate:.0} signatures={} hash_secs={hash_secs:.3} hash_rate={:.0} threads={} batch_rate={batch_rate:.0} exact_batch_rate={exact_batch_rate:.0} single_rate={single_rate:.0} batch_ratio={:.2} single_ratio={:.2}",
        summary.signatures,
        size as f64 / hash_secs,
        threads(),
        rate / batch_rate,
        rate / single_rate,
    );

    // What the signatures alone cost: one Ed25519 check of a stored request.
    let requests: Vec<SignedRequest> = cases
        .iter()
        .map(|case| {
            let url = format!("{base}/v1/cases/{case}/objects/{object}");
            signed(lawyer.signing_key(), "GET", &url, None)
        })
        .collect();
    let t0 = Instant::now();
    let rounds = 20_000u32;
    for i in 0..rounds {
        requests[i as usize % requests.len()]
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

    let vault = custos::vault::Vault {
        description: custos::vault::Description {
            origin: signer.origin().to_owned(),
            anchors: vec![admin.card()],
            vkey: signer.verifier().vkey(),
        },
        store,
        signer,
        dir: tmp.path().to_owned(),
    };
    let vault = incremental(vault, &auditor, &accesses, tmp.path()).await;
    backup(std::sync::Arc::new(vault), &log_key, tmp.path()).await;
}

/// Object accesses by the lawyer, across the cases in turn.
struct Accesses<'a> {
    lawyer: &'a Identity,
    cases: &'a [String],
    object: &'a str,
    base: &'a str,
}

impl Accesses<'_> {
    /// Fill `drafts` up to `n`, the first being the log's event `from`.
    fn fill(&self, drafts: &mut Vec<EventDraft>, from: u64, n: u64) {
        while (drafts.len() as u64) < n {
            let case = &self.cases[((from + drafts.len() as u64) % CASES) as usize];
            let url = format!("{}/v1/cases/{case}/objects/{}", self.base, self.object);
            drafts.push(EventDraft {
                case: case.clone(),
                actor: self.lawyer.card().key_id().to_string(),
                action: Action::ObjectAccessed,
                objects: vec![self.object.to_owned()],
                details: serde_json::json!({ "size": 1_048_576 }),
                request: Some(signed(self.lawyer.signing_key(), "GET", &url, None)),
            });
        }
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// This machine's Ed25519 rates over the log's own signatures, on all
/// cores, in signatures per second: ed25519-dalek's batch verification
/// (batches of `SIG_BATCH`), and its one-by-one `verify`. Only the curve
/// arithmetic is timed: the messages are rebuilt beforehand.
fn signature_rates(entries: &[Vec<u8>], who: &[&Identity]) -> (f64, f64, f64) {
    use custos::httpsig::SignatureCheck;
    let keys: std::collections::HashMap<String, ed25519_dalek::VerifyingKey> = who
        .iter()
        .map(|id| (id.key_id().to_string(), id.card().verifying_key))
        .collect();
    type Check = (SignatureCheck, ed25519_dalek::VerifyingKey);
    let checks: Vec<Check> = entries
        .iter()
        .filter_map(|e| {
            let event: custos::custody::Event = serde_json::from_slice(e).expect("event");
            let (_, check, _) = event.request?.prepare().expect("well formed");
            Some((check, keys[&event.actor]))
        })
        .collect();
    let parts = checks.len().div_ceil(threads());
    let timed = |f: &(dyn Fn(&[Check]) + Sync)| {
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for part in checks.chunks(parts) {
                s.spawn(move || f(part));
            }
        });
        checks.len() as f64 / t0.elapsed().as_secs_f64()
    };
    let batch = timed(&|part| {
        for batch in part.chunks(SIG_BATCH) {
            let messages: Vec<&[u8]> = batch.iter().map(|(c, _)| c.message()).collect();
            let signatures: Vec<ed25519_dalek::Signature> = batch.iter().map(|(c, _)| *c.signature()).collect();
            let keys: Vec<ed25519_dalek::VerifyingKey> = batch.iter().map(|(_, k)| *k).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &keys).expect("the batch verifies");
        }
    });
    // The batch made to accept no more than `verify`: each R canonical and
    // free of a small-order component first (the keys here are).
    let exact = timed(&|part| {
        for (check, _) in part {
            let r = curve25519_dalek::edwards::CompressedEdwardsY(check.signature().r_bytes().to_owned());
            let point = r.decompress().expect("a point");
            assert!(point.compress() == r && point.is_torsion_free());
        }
        for batch in part.chunks(SIG_BATCH) {
            let messages: Vec<&[u8]> = batch.iter().map(|(c, _)| c.message()).collect();
            let signatures: Vec<ed25519_dalek::Signature> = batch.iter().map(|(c, _)| *c.signature()).collect();
            let keys: Vec<ed25519_dalek::VerifyingKey> = batch.iter().map(|(_, k)| *k).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &keys).expect("the batch verifies");
        }
    });
    let single = timed(&|part| {
        for (check, key) in part {
            check.verify(key).expect("verifies");
        }
    });
    (batch, exact, single)
}

/// The log served by a live vault, audited through the command with a
/// state file; then `NEW_EVENTS` more, and the audit again: the second's
/// time, end to end, is the incremental audit's.
async fn incremental(
    vault: custos::vault::Vault,
    auditor: &Identity,
    more: &Accesses<'_>,
    dir: &std::path::Path,
) -> custos::vault::Vault {
    use custos::api::{self, AppState};
    let settings = custos::config::Settings::default();
    let state = std::sync::Arc::new(AppState::new(vault, &settings));
    let vault = &state.vault;
    let (listener, addr) = api::bind("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(state.clone(), listener, async move {
        let _ = stopped.await;
    }));
    let identity = dir.join("auditor.identity");
    auditor.save(&identity, None).expect("identity file");
    let (url, vkey) = (format!("http://{addr}"), vault.signer.verifier().vkey());
    let audit = |identity: std::path::PathBuf, url: String, vkey: String, dir: std::path::PathBuf| async move {
        tokio::task::spawn_blocking(move || {
            let t0 = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_custos"))
                .args([
                    "--server",
                    &url,
                    "--identity",
                    identity.to_str().expect("utf-8"),
                    "--json",
                ])
                .args([
                    "audit",
                    "--vkey",
                    &vkey,
                    "--state",
                    dir.join("audit-state.json").to_str().expect("utf-8"),
                ])
                .env("CUSTOS_CONFIG_DIR", dir.join("cli-config"))
                .env_remove("CUSTOS_PASSPHRASE")
                .stdin(std::process::Stdio::null())
                .output()
                .expect("custos runs");
            let secs = t0.elapsed().as_secs_f64();
            assert!(out.status.success(), "audit: {}", String::from_utf8_lossy(&out.stderr));
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
            (secs, report)
        })
        .await
        .expect("audit thread")
    };
    let (full_secs, first) = audit(identity.clone(), url.clone(), vkey.clone(), dir.to_owned()).await;
    let size = vault.store.log_size().expect("size");
    assert_eq!(first["entries"], size);
    let mut drafts = Vec::new();
    more.fill(&mut drafts, size, NEW_EVENTS);
    let guard = vault.store.writer().await;
    vault
        .store
        .append(&guard, custos::store::Batch::default(), drafts, &vault.signer)
        .expect("append");
    drop(guard);
    vault.store.flush().await.expect("flush");
    let (secs, next) = audit(identity, url, vkey, dir.to_owned()).await;
    assert_eq!(
        (next["from_size"].as_u64(), next["entries"].as_u64()),
        (Some(size), Some(NEW_EVENTS))
    );
    let state_bytes = std::fs::metadata(dir.join("audit-state.json")).expect("state").len();
    println!(
        "log incremental size={} events={NEW_EVENTS} secs={secs:.2} full_cli_secs={full_secs:.1} state_bytes={state_bytes}",
        size + NEW_EVENTS
    );
    let _ = stop.send(());
    server.await.expect("server task").expect("server");
    // Its background tasks let go of the vault as they stop.
    let mut state = state;
    for _ in 0..100 {
        match std::sync::Arc::try_unwrap(state) {
            Ok(state) => return state.vault,
            Err(held) => state = held,
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server's tasks still hold the vault");
}

/// The backup of this log: the snapshot's cut (the writer lock is held from
/// its start to the end of the tree copy, so this bounds how long writes
/// wait), the whole file, and its restore with the full audit; against a
/// plain copy of the store's files.
async fn backup(vault: std::sync::Arc<custos::vault::Vault>, log_key: &SigningKey, dir: &std::path::Path) {
    use custos::backup::{self, LogKeySource};
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
