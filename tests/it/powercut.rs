//! Power-cut harness: the crash harness's rounds (`crash.rs`: concurrent
//! submissions with two-chunk uploads, grants, checkpoint reads, a kill at
//! a random moment, then every check) with the vault's data directory and
//! its witness's state on a file system that forgets (`crates/powercut`).
//! After each kill the power is cut: the server and the witness die, and
//! whatever they wrote but never fsynced is thrown away, every unsynced
//! change at one cut, a random part of each file's unsynced writes (a disk
//! that reorders) at the next. Both restart on what stayed, and the crash
//! harness's checks run, with one more: what the witness remembers having
//! cosigned is a prefix of the log (it never sees a fork).
//!
//! `cargo test` runs the short form (20 cuts). The long form, by hand:
//! `CUSTOS_POWERCUT_CUTS=300 cargo test --test it powercut:: -- --nocapture`
//! (and `CUSTOS_POWERCUT_SEED` to replay a run). Either prints its figures.
//!
//! Mounting needs privilege, so each test runs itself again in its own
//! mount namespace (`util::in_mount_namespace`).

use crate::crash::{self, AfterKill};
use crate::util;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use custos_powercut::{Cut, CutReport, Disk, Mounted};
use rand::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_custos");
/// Power cuts in the short form that `cargo test` runs.
const SHORT_CUTS: u64 = 20;

/// The forgetful disk, mounted at `at` between cuts, and what the cuts
/// threw away.
struct Power {
    /// The witness, restarted after each cut (and stopped before the
    /// disk is unmounted).
    witness: Option<WitnessProcess>,
    at: PathBuf,
    mounted: Option<Mounted>,
    cuts: u64,
    lost: CutReport,
    /// Whether every other cut reorders (else every cut drops all).
    reorder: bool,
}

impl Power {
    fn on(at: &Path, disk: Disk) -> Power {
        std::fs::create_dir_all(at).unwrap();
        Power {
            at: at.to_path_buf(),
            mounted: Some(Mounted::mount(disk, at).expect("mount the forgetful disk (FUSE)")),
            witness: None,
            cuts: 0,
            lost: CutReport::default(),
            reorder: true,
        }
    }

    /// Cut the power (the server is dead and reaped; the witness dies
    /// now) and mount what stayed.
    fn cut(&mut self, how: Cut) {
        let witness = self.witness.take().map(WitnessProcess::kill);
        let mounted = self.mounted.take().expect("mounted between cuts");
        let (disk, report) = tokio::task::block_in_place(|| mounted.cut(how)).expect("unmount at the cut");
        self.cuts += 1;
        self.lost.changes_lost += report.changes_lost;
        self.lost.changes_kept += report.changes_kept;
        self.lost.folders_rolled_back += report.folders_rolled_back;
        self.mounted = Some(Mounted::mount(disk, &self.at).expect("mount what stayed"));
        self.witness = witness.map(|w| {
            let back = WitnessProcess::start(w.args.clone());
            assert_eq!(
                back.vkey, w.vkey,
                "the witness came back with another key after {how:?}"
            );
            back
        });
    }

    fn figures(&self) -> String {
        let stats = self.mounted.as_ref().map(Mounted::stats).unwrap_or_default();
        format!(
            "power cuts {}, unsynced writes lost {}, unsynced writes that reached the disk anyway {}, \
             folders whose names went back {}; writes {}, file syncs {}, folder syncs {}",
            self.cuts,
            self.lost.changes_lost,
            self.lost.changes_kept,
            self.lost.folders_rolled_back,
            stats.writes,
            stats.file_syncs,
            stats.folder_syncs
        )
    }
}

impl AfterKill for Power {
    fn after_kill(&mut self, rng: &mut rand::rngs::StdRng) {
        // Every other cut drops everything unsynced; the others keep a
        // random part of it.
        let how = if !self.reorder || self.cuts.is_multiple_of(2) {
            Cut::DropAll
        } else {
            Cut::Reorder(rng.gen())
        };
        self.cut(how);
    }
}

/// `custos witness serve` on a fixed loopback port (the vault is told its
/// address once), killed when dropped.
struct WitnessProcess {
    child: Child,
    args: Vec<String>,
    vkey: String,
}

impl WitnessProcess {
    fn start(args: Vec<String>) -> WitnessProcess {
        let mut child = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let vkey = line
            .trim()
            .split_once(" with vkey ")
            .unwrap_or_else(|| panic!("the witness did not start: {line:?}"))
            .1
            .to_owned();
        WitnessProcess { child, args, vkey }
    }

    fn kill(mut self) -> WitnessProcess {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The harness with its disk mounted at `tmp/disk`: the vault in
/// `disk/data`, the clients' files beside the mount.
async fn harness_on(tmp: &Path, disk: Disk) -> (crash::Harness, Power) {
    let power = Power::on(&tmp.join("disk"), disk);
    let h = crash::setup_at(tmp.to_path_buf(), tmp.join("disk").join("data"), Vec::new()).await;
    (h, power)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_the_power_is_cut_at_random_moments() {
    if !util::in_mount_namespace("powercut::nothing_acknowledged_is_lost_when_the_power_is_cut_at_random_moments") {
        return;
    }
    let cuts = crash::from_env("CUSTOS_POWERCUT_CUTS", SHORT_CUTS);
    let seed = crash::from_env("CUSTOS_POWERCUT_SEED", rand::random());
    eprintln!("power-cut harness: {cuts} cuts, seed {seed}");
    let tmp = tempfile::tempdir().unwrap();
    let (mut h, mut power) = harness_on(tmp.path(), Disk::new()).await;

    // The witness keeps its state on the same disk and loses power with
    // the vault.
    // A fixed port below the kernel's ephemeral range (32768 and up): the
    // vault is told it once, and no other test's bind(0) or connection
    // can take it between the witness's restarts.
    let port = loop {
        let port = rand::thread_rng().gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            break port;
        }
    };
    let witness_dir = power.at.join("witness");
    let witness = WitnessProcess::start(
        [
            "witness",
            "serve",
            "--data",
            witness_dir.to_str().unwrap(),
            "--name",
            "powercut.custos.example/w1",
            "--log",
            &h.log.vkey(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]
        .map(String::from)
        .to_vec(),
    );
    h.flags = vec!["--witness".into(), format!("http://127.0.0.1:{port},{}", witness.vkey)];
    h.witness_state = Some(witness_dir.join("witness-state.json"));
    power.witness = Some(witness);

    // What `custos init`, the first start and the witness's first run
    // wrote must survive a cut too.
    power.after_kill(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed));
    let blobs = h.data().join("db").join("blobs");
    let outcome = crash::run_rounds(Arc::new(h), cuts, seed, &mut power, Default::default()).await;
    let blob_files = std::fs::read_dir(&blobs).unwrap().count();
    eprintln!(
        "power-cut harness: {}; {}; sled blob files {blob_files}",
        outcome.figures(),
        power.figures()
    );
    outcome.assert_whole();
    // A new store's segments are large enough that no page becomes a
    // blob file (see the next test for stores made before).
    assert_eq!(blob_files, 0, "a new store wrote sled blob files");
}

/// A store made before custos chose sled's segment size (512 KiB, sled's
/// default) writes pages larger than 128 KiB to blob files, which sled
/// never fsyncs and removes on its own schedule. Regression (CI, stop 39):
/// each group flush synced the blob files it had not synced yet, but could
/// list one half-written, and its folder sync could make a blob's removal
/// durable before the log entry that replaced it; after a cut 13
/// acknowledged cases no longer downloaded. Such a store is now rewritten
/// with the new size when it is first opened (`store/resize.rs`). Here:
/// one made from a vault's own records, its rewrite at the first round's
/// start, then the rounds and their cuts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_store_is_rewritten_and_then_survives_power_cuts() {
    if !util::in_mount_namespace("powercut::an_older_store_is_rewritten_and_then_survives_power_cuts") {
        return;
    }
    let seed = crash::from_env("CUSTOS_POWERCUT_SEED", rand::random());
    let tmp = tempfile::tempdir().unwrap();
    let (h, mut power) = harness_on(tmp.path(), Disk::new()).await;
    let told = older_store_of(&h).await;
    let db = h.data().join("db");
    let outcome = crash::run_rounds(Arc::new(h), 8, seed, &mut power, told).await;
    eprintln!(
        "power-cut harness, older store (seed {seed}): {}; {}",
        outcome.figures(),
        power.figures()
    );
    outcome.assert_whole();
    assert_eq!(blob_files(&db), 0, "the rewritten store wrote sled blob files");
    let conf = String::from_utf8_lossy(&std::fs::read(db.join("conf")).unwrap()).into_owned();
    assert!(
        conf.contains("segment_size: 8388608"),
        "the store was not rewritten: {conf}"
    );
}

/// The rewrite of an older store killed at random moments within it (as
/// long as one uncut rewrite took), the power cut after each kill: the old
/// store or the new one is there whole, and every case it held downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_stores_rewrite_cut_off_midway_loses_nothing() {
    if !util::in_mount_namespace("powercut::an_older_stores_rewrite_cut_off_midway_loses_nothing") {
        return;
    }
    const KILLS: u32 = 6;
    let seed = crash::from_env("CUSTOS_POWERCUT_SEED", rand::random());
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let (h, mut power) = harness_on(tmp.path(), Disk::new()).await;
    let told = older_store_of(&h).await;
    let kept = tmp.path().join("older-data");
    copy_synced(&h.data(), &kept);
    let h = Arc::new(h);
    // How long one rewrite takes here; the kill and a cut (dropping all
    // that is unsynced) follow it at once.
    let whole = {
        let mut server = Rewriting::start(&h.data());
        let took = server.finished().expect("the rewrite of the older store finished");
        server.stop();
        took
    };
    power.after_kill(&mut rng);
    crash::run_rounds(h.clone(), 0, seed, &mut power, told.clone())
        .await
        .assert_whole();
    let mut cut_midway = 0;
    for _ in 0..KILLS {
        std::fs::remove_dir_all(h.data()).unwrap();
        copy_synced(&kept, &h.data());
        h.forget_audit();
        let server = Rewriting::start(&h.data());
        std::thread::sleep(whole.mul_f64(rng.gen_range(0.0..0.9)));
        cut_midway += !server.stop() as u32;
        power.after_kill(&mut rng);
        let outcome = crash::run_rounds(h.clone(), 0, seed, &mut power, told.clone()).await;
        outcome.assert_whole();
    }
    eprintln!(
        "older store's rewrite (seed {seed}): one took {whole:?}; {KILLS} kills, {cut_midway} of them in it; {}",
        power.figures()
    );
    assert!(cut_midway > 0, "no kill fell inside a rewrite: the test proved nothing");
}

/// `custos serve` on an older store, from the moment it starts rewriting.
struct Rewriting {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    began: std::time::Instant,
}

impl Rewriting {
    fn start(data: &Path) -> Rewriting {
        let (child, lines) = util::spawn_serve(data, &[]);
        let began = Self::seen(&lines, "rewriting the store");
        assert!(began, "the server did not rewrite the older store");
        Rewriting {
            child,
            lines,
            began: std::time::Instant::now(),
        }
    }

    /// How long the rewrite took, once it has finished.
    fn finished(&mut self) -> Option<std::time::Duration> {
        let done = Self::seen(&self.lines, "the store is rewritten");
        done.then(|| self.began.elapsed())
    }

    /// Whether the server prints a line with `words` before it ends, or
    /// before a minute passes.
    fn seen(lines: &std::sync::mpsc::Receiver<String>, words: &str) -> bool {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(words) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Kill the server; whether it had finished the rewrite.
    fn stop(mut self) -> bool {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader ends at the pipe's end, now that the server is dead.
        self.lines.iter().any(|l| l.contains("the store is rewritten"))
    }
}

/// Make `h`'s vault hold 24 cases with 60 KiB files, then turn its store
/// into one as custos made them before it chose sled's segment size: the
/// same trees and pairs in a store of sled's default segment size, whose
/// large leaves are blob files, with custos's own files moved over, all
/// of it synced. What the clients were told.
async fn older_store_of(h: &crash::Harness) -> crash::Told {
    let server = h.serve();
    let told = crash::medium_submissions(h, &server.url, 24).await;
    drop(server);
    let db = h.data().join("db");
    let older = h.data().join("db.older");
    {
        wait_unlocked(&db.join("db"));
        let new = sled::Config::new().path(&db).segment_size(8 << 20).open().unwrap();
        let old = sled::Config::new().path(&older).segment_size(512 << 10).open().unwrap();
        for name in new.tree_names() {
            let (from, to) = (new.open_tree(&name).unwrap(), old.open_tree(&name).unwrap());
            for pair in from.iter() {
                let (key, value) = pair.unwrap();
                to.insert(key, value).unwrap();
            }
        }
        old.flush().unwrap();
    }
    wait_unlocked(&db.join("db"));
    wait_unlocked(&older.join("db"));
    for entry in std::fs::read_dir(&db).unwrap() {
        let name = entry.unwrap().file_name();
        let sleds = ["db", "conf", "blobs"].iter().any(|s| name == *s) || name.to_string_lossy().starts_with("snap.");
        if !sleds {
            std::fs::rename(db.join(&name), older.join(&name)).unwrap();
        }
    }
    std::fs::remove_dir_all(&db).unwrap();
    std::fs::rename(&older, &db).unwrap();
    sync_all_under(&h.data());
    assert!(
        blob_files(&db) > 0,
        "the older store has no blob file: the test proves nothing"
    );
    told
}

/// Wait until no sled holds the lock on the log file `log`.
fn wait_unlocked(log: &Path) {
    let file = std::fs::File::open(log).unwrap();
    for _ in 0..500 {
        if file.try_lock().is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("sled kept {} locked", log.display());
}

fn blob_files(db: &Path) -> usize {
    std::fs::read_dir(db.join("blobs")).map(|d| d.count()).unwrap_or(0)
}

/// fsync every file and folder under `dir`, and `dir`'s name.
fn sync_all_under(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            sync_all_under(&entry.path());
        } else {
            std::fs::File::open(entry.path()).unwrap().sync_all().unwrap();
        }
    }
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
    std::fs::File::open(dir.parent().unwrap()).unwrap().sync_all().unwrap();
}

/// Copy the folder `from` to `to`, every file and name synced.
fn copy_synced(from: &Path, to: &Path) {
    util::copy_dir(from, to);
    sync_all_under(to);
}

/// The mutation check: the same harness with the chunk files' fsyncs
/// ignored (as if `FileChunks::put` in crates/server/src/store/chunks.rs
/// did not call `sync_data`) must find an acknowledged file lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_fails_when_the_chunk_files_are_not_fsynced() {
    if !util::in_mount_namespace("powercut::the_harness_fails_when_the_chunk_files_are_not_fsynced") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut disk = Disk::new();
    disk.ignore_syncs_under("data/db/chunks");
    let (h, mut power) = harness_on(tmp.path(), disk).await;
    let server = h.serve();
    let told = crash::a_large_submission(&h, &server.url).await;
    drop(server);
    let outcome = crash::run_rounds(Arc::new(h), 1, 1, &mut power, told).await;
    eprintln!(
        "power-cut harness, chunk fsyncs ignored: {}; {}",
        outcome.figures(),
        power.figures()
    );
    assert!(
        outcome.lost().iter().any(|l| l.contains("does not download")),
        "the harness did not notice chunks that were never durable: {:?}",
        outcome.lost()
    );
    assert!(power.mounted.as_ref().unwrap().stats().syncs_ignored > 0);
}

/// The cuts a stopped disk is put through, one after the other from the
/// same state: all unsynced changes lost, then reordering disks.
fn every_cut() -> impl Iterator<Item = Cut> {
    std::iter::once(Cut::DropAll).chain((1..=12).map(Cut::Reorder))
}

/// Regression (found by the harness): `custos init` wrote the file that
/// says a vault is there without an fsync, and sled 0.34.7 writes its
/// `conf` in place without one; a cut right after init left "holds no
/// vault", or a torn `conf` that sled refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_opens_after_a_power_cut_right_after_init() {
    if !util::in_mount_namespace("powercut::a_vault_opens_after_a_power_cut_right_after_init") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let at = tmp.path().join("disk");
    std::fs::create_dir_all(&at).unwrap();
    let mounted = Mounted::mount(Disk::new(), &at).unwrap();
    let admin = custos::identity::Identity::generate("Admin").unwrap();
    custos::vault::init(&at.join("data"), "powercut.custos.example/log", &[admin.card()])
        .await
        .unwrap();
    let disk = tokio::task::block_in_place(|| mounted.stop()).unwrap();
    for how in every_cut() {
        let mounted = Mounted::mount(disk.cut(how).0, &at).unwrap();
        let opened = tokio::task::block_in_place(|| custos::vault::open(&at.join("data")).map(drop));
        assert!(opened.is_ok(), "after {how:?}: {}", opened.unwrap_err());
        tokio::task::block_in_place(|| mounted.stop()).unwrap();
    }
}

/// `custos backup` to a file on the forgetful disk, named by a relative
/// path as an operator types it: once it has said done, a power cut leaves
/// the whole backup under its name, and it restores. A second backup cut
/// off midway leaves nothing under its name. Regression (found here): the
/// backup's folder was synced only when `--out` named one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_backup_survives_a_power_cut_and_a_cut_off_one_is_not_there() {
    if !util::in_mount_namespace("powercut::a_finished_backup_survives_a_power_cut_and_a_cut_off_one_is_not_there") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (h, power) = harness_on(tmp.path(), Disk::new()).await;
    let backups = power.at.join("backups");
    std::fs::create_dir(&backups).unwrap();
    custos::durable::sync_dir(&power.at).unwrap();
    let admin = tmp.path().join("admin.id");
    h.admin.save(&admin, None).unwrap();

    let server = h.serve();
    crash::a_large_submission(&h, &server.url).await;
    let backup = |out: &str| {
        let mut c = Command::new(BIN);
        c.current_dir(&backups)
            .args(["backup", "--server", &server.url, "--identity"])
            .arg(&admin)
            .args(["--out", out, "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let done = backup("backup.tar").output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    // The second is killed once it has begun writing: it still has to
    // write the rest, read it all back to verify it, and rename it.
    let mut cut_off = backup("cut-off.tar").spawn().unwrap();
    let partial = backups.join("cut-off.tar.partial");
    while std::fs::metadata(&partial).map_or(true, |m| m.len() == 0) && cut_off.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = cut_off.kill();
    // On a busy machine it may have finished first: then it must restore
    // as the first does.
    let cut_off_finished = cut_off.wait().unwrap().success();
    drop(server);

    let disk = tokio::task::block_in_place(|| power.mounted.unwrap().stop()).unwrap();
    for (i, how) in every_cut().enumerate() {
        let mounted = Mounted::mount(disk.cut(how).0, &power.at).unwrap();
        let mut whole = vec!["backup.tar"];
        if cut_off_finished {
            whole.push("cut-off.tar");
        } else {
            assert!(
                !backups.join("cut-off.tar").exists(),
                "after {how:?}: a cut-off backup has its name"
            );
        }
        for name in whole {
            let restored = tmp.path().join(format!("restored-{i}-{name}"));
            let out = restore(&backups.join(name), &restored, &h.data().join("log.key"));
            assert!(
                out.status.success(),
                "after {how:?}: {name} does not restore: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::task::block_in_place(|| mounted.stop()).unwrap();
    }

    // A restore onto the forgetful disk: once it has said done, a cut
    // leaves a vault that opens. Regression (found by review): restore
    // wrote vault.json and the settings without an fsync and never synced
    // the data directory's names.
    let mounted = Mounted::mount(disk.clone(), &power.at).unwrap();
    let restored = power.at.join("restored");
    let out = restore(&backups.join("backup.tar"), &restored, &h.data().join("log.key"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let disk = tokio::task::block_in_place(|| mounted.stop()).unwrap();
    for how in every_cut() {
        let mounted = Mounted::mount(disk.cut(how).0, &power.at).unwrap();
        let opened = tokio::task::block_in_place(|| custos::vault::open(&restored).map(drop));
        assert!(
            opened.is_ok(),
            "after {how:?}: the restored vault: {}",
            opened.unwrap_err()
        );
        tokio::task::block_in_place(|| mounted.stop()).unwrap();
    }
}

/// `custos restore BACKUP --data DIR --log-key KEY`.
fn restore(backup: &Path, data: &Path, log_key: &Path) -> std::process::Output {
    Command::new(BIN)
        .arg("restore")
        .arg(backup)
        .arg("--data")
        .arg(data)
        .arg("--log-key")
        .arg(log_key)
        .output()
        .unwrap()
}
