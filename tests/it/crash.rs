//! Crash harness: a real `custos serve` process, under concurrent
//! submissions (with multi-chunk uploads) and grants, is killed with SIGKILL
//! at a random moment, round after round, and started again on the same
//! data directory. After every restart:
//!
//! - every acknowledged submission (every receipt a client received) is
//!   there and decrypts byte for byte to what was sent; every acknowledged
//!   grant still holds;
//! - every case the lawyer can see downloads whole, so no half-written
//!   object is visible, including in the submissions the kill cut off;
//! - the whole log passes the auditor's audit, carried from round to round
//!   in its state file;
//! - the new checkpoint is consistent (RFC 9162 proof) with every
//!   checkpoint handed out before the crash.
//!
//! The same harness runs with the chunks in a real three-node Garage
//! cluster (`tests/garage/`), where a commit is answered only after the
//! bucket acknowledged every chunk.
//!
//! `cargo test` runs the short form (20 rounds). The long form, by hand:
//! `CUSTOS_CRASH_ROUNDS=300 cargo test --test it crash:: -- --nocapture`.
//! Either prints its figures: rounds, acknowledged, lost, audit failures.

use crate::util;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custos::client::flows::{self, SubmitFile};
use custos::client::trust::TrustStore;
use custos::client::Client;
use custos::custody::checkpoint::LogVerifier;
use custos::custody::merkle::verify_consistency;
use custos::envelope::ObjectKind;
use custos::identity::{Identity, Role};
use custos::wire::PrincipalBody;
use rand::{Rng, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_custos");
const ORIGIN: &str = "crash.custos.example/log";
/// Kill rounds in the short form that `cargo test` runs.
const SHORT_ROUNDS: u64 = 20;
/// Concurrent clients writing while the server is killed.
const WORKERS: usize = 4;
/// Evidence large enough to span two chunk files (4 MiB + 1 MiB).
const LARGE: usize = 5 << 20;
/// Evidence kept inside sled (a chunk of up to 64 KiB): a few of these in
/// one leaf made sled write the page to a blob file of its own, in a
/// store of sled's old segment size (`powercut.rs`).
const MEDIUM: usize = 60 << 10;

/// Start `custos serve` on the data directory with `flags` (SIGKILLed
/// when dropped).
fn start_with(data: &Path, flags: &[String]) -> util::ServerProcess {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    util::ServerProcess::start(data, &flags)
}

/// Start `custos serve` on the data directory (SIGKILLed when dropped).
fn start(data: &Path) -> util::ServerProcess {
    start_with(data, &[])
}

/// A submission the vault acknowledged: its case and the plaintexts sent.
#[derive(Clone)]
struct Acked {
    case_id: String,
    plaintexts: Vec<Vec<u8>>,
}

/// What the clients were told, shared between workers.
#[derive(Default, Clone)]
pub(crate) struct Told {
    submissions: Vec<Acked>,
    /// Cases granted to the second lawyer, acknowledged.
    grants: Vec<String>,
    /// Every checkpoint note handed out (in receipts or by GET).
    checkpoints: Vec<String>,
    /// Receipts received: acknowledged writes.
    receipts: u64,
    /// Requests that failed because the server died under them.
    cut: u64,
    /// Requests the live server refused: none are expected.
    refused: Vec<String>,
}

pub(crate) struct Harness {
    /// The clients' folder: files to send, downloads, trust stores.
    dir: PathBuf,
    /// The vault's data directory.
    data: PathBuf,
    /// The server's flags (its chunk storage, its witness).
    pub(crate) flags: Vec<String>,
    pub(crate) admin: Identity,
    lawyer: Identity,
    colleague: Identity,
    auditor: Identity,
    pub(crate) log: LogVerifier,
    /// A witness's state file: what it cosigned must stay a prefix of the
    /// log, as every checkpoint handed out must.
    pub(crate) witness_state: Option<PathBuf>,
}

impl Harness {
    pub(crate) fn data(&self) -> PathBuf {
        self.data.clone()
    }

    /// Forget what the auditor verified: for a test that puts an earlier
    /// copy of the vault back on purpose, which the auditor would rightly
    /// call a rewritten log.
    pub(crate) fn forget_audit(&self) {
        let _ = std::fs::remove_file(self.dir.join("audit-state.json"));
    }

    pub(crate) fn serve(&self) -> util::ServerProcess {
        start_with(&self.data(), &self.flags)
    }
}

/// One client's work until the server dies under it: submissions (one in
/// four with a two-chunk file, three in eight with a 60 KiB one), grants of acknowledged cases, and reads of
/// the checkpoint.
async fn worker(h: Arc<Harness>, url: String, told: Arc<Mutex<Told>>, worker: usize, round: u64, seed: u64) {
    let client = Client::new(&url).unwrap();
    let trust = TrustStore::new(h.dir.join(format!("trust-{worker}")));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for step in 0u64.. {
        let result = match rng.gen_range(0..10) {
            0..=5 => submit(&h, &client, &trust, &told, (round, worker, step), &mut rng).await,
            6..=7 => grant(&h, &client, &told, &mut rng).await,
            _ => client
                .checkpoint()
                .await
                .map(|note| told.lock().unwrap().checkpoints.push(note)),
        };
        match result {
            Ok(()) => {}
            // The server answered with an error: a bug, not the kill.
            Err(e) if e.code().is_some() => {
                told.lock().unwrap().refused.push(e.to_string());
                return;
            }
            Err(_) => {
                told.lock().unwrap().cut += 1;
                return;
            }
        }
    }
}

async fn submit(
    h: &Harness,
    client: &Client,
    trust: &TrustStore,
    told: &Mutex<Told>,
    (round, worker, step): (u64, usize, u64),
    rng: &mut impl Rng,
) -> Result<(), custos::client::ClientError> {
    let name = format!("r{round}-w{worker}-s{step}");
    let folder = h.dir.join("in").join(&name);
    std::fs::create_dir_all(&folder).unwrap();
    let statement = format!("statement {name}: they held me in room {}", rng.gen::<u16>()).into_bytes();
    let mut sent = vec![(ObjectKind::Statement, statement)];
    if rng.gen_ratio(1, 4) {
        sent.push((ObjectKind::Evidence, util::bytes(rng.gen(), LARGE)));
    } else if rng.gen_ratio(1, 2) {
        sent.push((ObjectKind::Evidence, util::bytes(rng.gen(), MEDIUM)));
    }
    send(client, trust, &folder, sent, told).await
}

/// Submit the files `sent` (written to `folder` first) and record what
/// the client was told.
async fn send(
    client: &Client,
    trust: &TrustStore,
    folder: &Path,
    sent: Vec<(ObjectKind, Vec<u8>)>,
    told: &Mutex<Told>,
) -> Result<(), custos::client::ClientError> {
    let files: Vec<SubmitFile> = sent
        .iter()
        .enumerate()
        .map(|(i, (kind, bytes))| {
            let path = folder.join(format!("{i}.bin"));
            std::fs::write(&path, bytes).unwrap();
            SubmitFile { path, kind: *kind }
        })
        .collect();
    let done = flows::submit(client, trust, &[], &files, false).await?;
    let mut told = told.lock().unwrap();
    told.receipts += done.receipt.receipts.len() as u64;
    told.checkpoints
        .extend(done.receipt.receipts.iter().map(|r| r.checkpoint.clone()));
    told.submissions.push(Acked {
        case_id: done.case_id,
        plaintexts: sent.into_iter().map(|(_, b)| b).collect(),
    });
    Ok(())
}

/// One acknowledged submission with a two-chunk file, sent to the server
/// at `url`: what a client was told.
pub(crate) async fn a_large_submission(h: &Harness, url: &str) -> Told {
    submissions_with(h, url, LARGE, 1).await
}

/// `n` acknowledged submissions with a 60 KiB file each (kept inside
/// sled), sent to the server at `url`.
pub(crate) async fn medium_submissions(h: &Harness, url: &str, n: u64) -> Told {
    submissions_with(h, url, MEDIUM, n).await
}

/// `n` acknowledged submissions, each a statement and a file of `len`
/// bytes: what a client was told.
async fn submissions_with(h: &Harness, url: &str, len: usize, n: u64) -> Told {
    let told = Mutex::new(Told::default());
    let client = Client::new(url).unwrap();
    let trust = TrustStore::new(h.dir.join("trust-set-up"));
    for step in 0..n {
        let folder = h.dir.join("in").join(format!("set-up-{len}-{step}"));
        std::fs::create_dir_all(&folder).unwrap();
        let sent = vec![
            (ObjectKind::Statement, format!("statement {step}: set up").into_bytes()),
            (ObjectKind::Evidence, util::bytes(step, len)),
        ];
        send(&client, &trust, &folder, sent, &told).await.unwrap();
    }
    told.into_inner().unwrap()
}

async fn grant(
    h: &Harness,
    client: &Client,
    told: &Mutex<Told>,
    rng: &mut impl Rng,
) -> Result<(), custos::client::ClientError> {
    let case = {
        let told = told.lock().unwrap();
        let open: Vec<&Acked> = told
            .submissions
            .iter()
            .filter(|a| !told.grants.contains(&a.case_id))
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        open[rng.gen_range(0..open.len())].case_id.clone()
    };
    let receipt = flows::grant(client, &h.lawyer, &h.log, &case, &h.colleague.key_id()).await;
    let receipt = match receipt {
        Ok(r) => r,
        // Another worker granted it first: not a crash.
        Err(e) if e.code() == Some("already_granted") => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut told = told.lock().unwrap();
    told.receipts += 1;
    told.checkpoints.push(receipt.checkpoint);
    if !told.grants.contains(&case) {
        told.grants.push(case);
    }
    Ok(())
}

/// What one check after a restart found wrong.
#[derive(Default)]
struct Findings {
    lost: Vec<String>,
    audit: Vec<String>,
}

/// Download and decrypt a case; its plaintexts, sorted.
async fn plaintexts(h: &Harness, client: &Client, case: &str) -> Result<Vec<Vec<u8>>, String> {
    let out = h.dir.join("got").join(case);
    let _ = std::fs::remove_dir_all(&out);
    let got = flows::get_case(client, &h.lawyer, &h.log, case, &out)
        .await
        .map_err(|e| e.to_string())?;
    let mut texts: Vec<Vec<u8>> = got.files.iter().map(|f| std::fs::read(&f.path).unwrap()).collect();
    texts.sort();
    std::fs::remove_dir_all(&out).unwrap();
    Ok(texts)
}

/// Everything that must hold after a restart. `fresh` are the submissions
/// acknowledged since the last check, which are downloaded; the older ones
/// are checked for presence and object count (and downloaded at the end).
async fn check(
    h: &Harness,
    url: &str,
    told: &Told,
    fresh: &[Acked],
    unacked_seen: &mut HashSet<String>,
    verified_checkpoint: &mut Option<(u64, [u8; 32])>,
) -> Findings {
    let mut f = Findings::default();
    let client = Client::new(url).unwrap();

    let visible: HashMap<String, usize> = flows::cases(&client, &h.lawyer, &h.log, &Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.summary.case_id, c.summary.objects))
        .collect();
    let acked: HashMap<&str, &Acked> = told.submissions.iter().map(|a| (a.case_id.as_str(), a)).collect();
    for a in &told.submissions {
        match visible.get(&a.case_id) {
            None => f.lost.push(format!("case {} is gone", a.case_id)),
            Some(&n) if n != a.plaintexts.len() => f.lost.push(format!(
                "case {} has {n} objects, {} acknowledged",
                a.case_id,
                a.plaintexts.len()
            )),
            Some(_) => {}
        }
    }
    for a in fresh {
        let mut want = a.plaintexts.clone();
        want.sort();
        match plaintexts(h, &client, &a.case_id).await {
            Ok(got) if got == want => {}
            Ok(_) => f.lost.push(format!("case {} decrypts to other bytes", a.case_id)),
            Err(e) => f.lost.push(format!("case {} does not download: {e}", a.case_id)),
        }
    }
    // Submissions the kill cut off may have left a case with some of its
    // objects; whatever is visible must be whole.
    for case in visible.keys().filter(|c| !acked.contains_key(c.as_str())) {
        if unacked_seen.insert(case.clone()) {
            if let Err(e) = plaintexts(h, &client, case).await {
                f.lost
                    .push(format!("unacknowledged case {case} shows a damaged object: {e}"));
            }
        }
    }
    let granted: HashSet<String> = client
        .cases(h.colleague.signing_key())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.case_id)
        .collect();
    for case in told.grants.iter().filter(|c| !granted.contains(*c)) {
        f.lost.push(format!("the grant of case {case} is gone"));
    }

    let report = flows::audit(&client, &h.auditor, &h.log, Some(&h.dir.join("audit-state.json")))
        .await
        .unwrap();
    if let Some(why) = report.failure {
        f.audit.push(format!("audit: {why}"));
    }

    // The new checkpoint must extend every one handed out before.
    let now = h.log.verify(&client.checkpoint().await.unwrap()).unwrap();
    let mut old: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
    for note in told.checkpoints.iter() {
        let cp = h.log.verify(note).unwrap();
        if let Some(root) = old.insert(cp.size, cp.root) {
            if root != cp.root {
                f.audit.push(format!("two checkpoints of size {} differ", cp.size));
            }
        }
    }
    old.extend(verified_checkpoint.iter().copied());
    if let Some(path) = &h.witness_state {
        for (size, root) in witnessed(path) {
            if old.insert(size, root).is_some_and(|r| r != root) {
                f.audit
                    .push(format!("the witness cosigned another tree of size {size}"));
            }
        }
    }
    for (&size, root) in &old {
        if size > now.size {
            f.audit.push(format!(
                "checkpoint of size {size} was handed out, the log now has {}",
                now.size
            ));
            continue;
        }
        let proof = client.consistency(size, now.size).await.unwrap();
        let hashes = custos::audit::decode_hashes(&proof.proof).unwrap();
        if let Err(e) = verify_consistency(size, now.size, &hashes, root, &now.root) {
            f.audit.push(format!(
                "checkpoint of size {size} is not a prefix of size {}: {e}",
                now.size
            ));
        }
    }
    *verified_checkpoint = Some((now.size, now.root));
    f
}

/// The tree a witness last cosigned for each log, from its state file.
fn witnessed(path: &Path) -> Vec<(u64, [u8; 32])> {
    use base64::Engine;
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    state["logs"]
        .as_object()
        .expect("a witness state names its logs")
        .values()
        .map(|seen| {
            let root = base64::engine::general_purpose::STANDARD
                .decode(seen["root"].as_str().unwrap())
                .unwrap();
            (seen["size"].as_u64().unwrap(), root.try_into().unwrap())
        })
        .collect()
}

/// A vault in `dir/data`, its principals registered, the server stopped.
pub(crate) async fn setup(dir: PathBuf, flags: Vec<String>) -> Harness {
    let data = dir.join("data");
    setup_at(dir, data, flags).await
}

/// [`setup`] with the vault's data directory at `data`.
pub(crate) async fn setup_at(dir: PathBuf, data: PathBuf, flags: Vec<String>) -> Harness {
    let admin = Identity::generate("Admin").unwrap();
    let lawyer = Identity::generate("Lawyer").unwrap();
    let colleague = Identity::generate("Colleague").unwrap();
    let auditor = Identity::generate("Auditor").unwrap();
    let log = custos::vault::init(&data, ORIGIN, &[admin.card()]).await.unwrap();
    let server = start_with(&data, &flags);
    let client = Client::new(&server.url).unwrap();
    for (who, role, intake) in [
        (&lawyer, Role::Lawyer, true),
        (&colleague, Role::Lawyer, false),
        (&auditor, Role::Auditor, false),
    ] {
        let body = PrincipalBody {
            card: who.card(),
            role,
            intake,
        };
        client.add_principal(admin.signing_key(), &body).await.unwrap();
    }
    drop(server);
    Harness {
        dir,
        data,
        flags,
        admin,
        lawyer,
        colleague,
        auditor,
        log,
        witness_state: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_the_server_is_killed_at_random_moments() {
    kill_rounds(Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_the_server_is_killed_with_its_chunks_on_garage() {
    let cluster = tokio::task::spawn_blocking(crate::garage::GarageCluster::start)
        .await
        .unwrap();
    kill_rounds(cluster.flags()).await;
    drop(cluster);
}

/// What happens to the server's disk between the kill and the restart:
/// nothing for the crash harness; the power-cut harness
/// (`powercut.rs`) throws away what was never fsynced.
pub(crate) trait AfterKill {
    fn after_kill(&mut self, rng: &mut rand::rngs::StdRng);
}

impl AfterKill for () {
    fn after_kill(&mut self, _: &mut rand::rngs::StdRng) {}
}

/// What a run of rounds found.
pub(crate) struct Outcome {
    told: Told,
    lost: Vec<String>,
    audit_failures: Vec<String>,
    unacked_seen: usize,
    rounds: u64,
}

impl Outcome {
    /// The figures, in one line.
    pub(crate) fn figures(&self) -> String {
        let told = &self.told;
        format!(
            "rounds {}, acknowledged {} receipts ({} submissions, {} grants, {} checkpoints read or received), \
             requests cut by the kill {}, cases left unfinished by a kill {}, lost {}, audit failures {}",
            self.rounds,
            told.receipts,
            told.submissions.len(),
            told.grants.len(),
            told.checkpoints.len(),
            told.cut,
            self.unacked_seen,
            self.lost.len(),
            self.audit_failures.len(),
        )
    }

    /// What was lost after a restart, one line each.
    pub(crate) fn lost(&self) -> &[String] {
        &self.lost
    }

    /// Everything must have held, and the run must have proven something.
    pub(crate) fn assert_whole(&self) {
        let (told, rounds) = (&self.told, self.rounds);
        assert!(self.lost.is_empty(), "lost after a crash:\n{}", self.lost.join("\n"));
        assert!(
            self.audit_failures.is_empty(),
            "audit failures:\n{}",
            self.audit_failures.join("\n")
        );
        assert!(
            told.refused.is_empty(),
            "the live server refused requests:\n{}",
            told.refused.join("\n")
        );
        assert!(
            told.submissions.len() as u64 >= rounds,
            "too little was acknowledged to prove anything"
        );
        assert_eq!(
            told.cut,
            rounds * WORKERS as u64,
            "every round's kill must cut every client off"
        );
    }
}

/// A number from the environment variable `var`, or `default`.
pub(crate) fn from_env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{var} is a number")))
        .unwrap_or(default)
}

/// The crash harness against a server started with `flags`.
async fn kill_rounds(flags: Vec<String>) {
    let rounds = from_env("CUSTOS_CRASH_ROUNDS", SHORT_ROUNDS);
    let seed = from_env("CUSTOS_CRASH_SEED", rand::random());
    eprintln!("crash harness: {rounds} rounds, seed {seed}");
    let tmp = tempfile::tempdir().unwrap();
    let h = Arc::new(setup(tmp.path().to_path_buf(), flags).await);
    let outcome = run_rounds(h, rounds, seed, &mut (), Told::default()).await;
    eprintln!("crash harness: {}", outcome.figures());
    outcome.assert_whole();
}

/// The harness: rounds of concurrent work killed at random moments, each
/// followed by `disk`'s turn and then the checks.
/// `told`: what clients were told before the first round.
pub(crate) async fn run_rounds(
    h: Arc<Harness>,
    rounds: u64,
    seed: u64,
    disk: &mut dyn AfterKill,
    told: Told,
) -> Outcome {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let told = Arc::new(Mutex::new(told));
    let (mut lost, mut audit_failures) = (Vec::new(), Vec::new());
    let mut unacked_seen = HashSet::new();
    let mut verified_checkpoint = None;
    let mut checked = 0;

    for round in 0..rounds {
        let server = h.serve();
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| tokio::spawn(worker(h.clone(), server.url.clone(), told.clone(), w, round, rng.gen())))
            .collect();
        // A random moment, but not before this round's first
        // acknowledgment: on a loaded machine a short round would
        // otherwise kill before anything was sent, and prove nothing.
        let before = told.lock().unwrap().submissions.len();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..2000))).await;
        for _ in 0..600 {
            if told.lock().unwrap().submissions.len() > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(server); // SIGKILL
        for w in workers {
            tokio::time::timeout(Duration::from_secs(120), w)
                .await
                .expect("a client hung after the server died")
                .unwrap();
        }
        disk.after_kill(&mut rng);

        let server = h.serve();
        let told = told.lock().unwrap().clone();
        let fresh = &told.submissions[checked..];
        let found = check(
            &h,
            &server.url,
            &told,
            fresh,
            &mut unacked_seen,
            &mut verified_checkpoint,
        )
        .await;
        checked = told.submissions.len();
        lost.extend(found.lost.into_iter().map(|l| format!("round {round}: {l}")));
        audit_failures.extend(found.audit.into_iter().map(|l| format!("round {round}: {l}")));
        drop(server);
    }

    // At the end, every acknowledged submission once more, byte for byte.
    let server = h.serve();
    let told = told.lock().unwrap().clone();
    let found = check(
        &h,
        &server.url,
        &told,
        &told.submissions,
        &mut unacked_seen,
        &mut verified_checkpoint,
    )
    .await;
    lost.extend(found.lost.into_iter().map(|l| format!("final: {l}")));
    audit_failures.extend(found.audit.into_iter().map(|l| format!("final: {l}")));
    Outcome {
        told,
        lost,
        audit_failures,
        unacked_seen: unacked_seen.len(),
        rounds,
    }
}

/// sled recovers its log up to the first message whose checksum fails and
/// drops the rest without a word. Damage anywhere in its files must make
/// the vault refuse to start (sled's own check, or the high-water mark),
/// never serve a log shorter than the one it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_store_files_are_refused_never_served_short() {
    let tmp = tempfile::tempdir().unwrap();
    let h = Arc::new(setup(tmp.path().to_path_buf(), Vec::new()).await);
    let server = start(&h.data());
    let told = Mutex::new(Told::default());
    let client = Client::new(&server.url).unwrap();
    let trust = TrustStore::new(h.dir.join("trust"));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for step in 0..6 {
        submit(&h, &client, &trust, &told, (0, 0, step), &mut rng)
            .await
            .unwrap();
    }
    let full = h.log.verify(&client.checkpoint().await.unwrap()).unwrap();
    drop(server); // SIGKILL: sled's last snapshot is older than its log.

    let log = std::fs::read(h.data().join("db").join("db")).unwrap();
    let used = log.iter().rposition(|&b| b != 0).unwrap() + 1;
    let (mut sled_refused, mut mark_refused, mut intact) = (0, 0, 0);
    for trial in 0..40u64 {
        let copy = h.dir.join(format!("damaged-{trial}"));
        util::copy_dir(&h.data(), &copy);
        let mut damaged = log.clone();
        let at = rng.gen_range(0..used - 4);
        damaged[at..at + 4].copy_from_slice(&[0xff, 0x00, 0xff, 0x00]);
        std::fs::write(copy.join("db").join("db"), &damaged).unwrap();
        match custos::vault::open(&copy) {
            Err(e) if e.to_string().contains("a checkpoint of") => mark_refused += 1,
            Err(e) if e.to_string().contains("sled found damaged data") => sled_refused += 1,
            Err(e) => panic!("byte {at}: refused with an unclear message: {e}"),
            Ok(vault) => {
                let size = vault.store.log_size().unwrap();
                let note = vault.store.checkpoint().unwrap().unwrap();
                assert_eq!(
                    (size, h.log.verify(&note).unwrap().root),
                    (full.size, full.root),
                    "byte {at}: damage rolled the log back and the vault opened it"
                );
                intact += 1;
            }
        }
        std::fs::remove_dir_all(&copy).unwrap();
    }
    eprintln!(
        "damaged store: 40 trials, refused by sled {sled_refused}, refused by the high-water mark {mark_refused}, \
         opened whole (damage in unused bytes) {intact}"
    );
    assert!(sled_refused + mark_refused > 0, "no damage was noticed at all");
}

/// The high-water mark on its own: a store put back to an older copy of
/// sled's files (a rollback the operator or an intruder made) is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_older_than_its_high_water_mark_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let h = Arc::new(setup(tmp.path().to_path_buf(), Vec::new()).await);
    let old = h.dir.join("old");
    util::copy_dir(&h.data(), &old);
    let server = start(&h.data());
    let client = Client::new(&server.url).unwrap();
    let told = Mutex::new(Told::default());
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    submit(
        &h,
        &client,
        &TrustStore::new(h.dir.join("trust")),
        &told,
        (0, 0, 0),
        &mut rng,
    )
    .await
    .unwrap();
    drop(server);
    // Put the whole old store back, under the new mark.
    let db = h.data().join("db");
    let mark = std::fs::read(db.join("high-water")).unwrap();
    util::restore_dir(&old.join("db"), &db);
    std::fs::write(db.join("high-water"), mark).unwrap();
    let err = custos::vault::open(&h.data()).unwrap_err().to_string();
    assert!(err.contains("but a checkpoint of"), "{err}");

    // The command line says the same, in one line, and exits 1.
    let out = Command::new(BIN)
        .args(["serve", "--data", h.data().to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: integrity failure: the store holds")
            && stderr.contains("restore the vault from a backup"),
        "{stderr}"
    );
}
