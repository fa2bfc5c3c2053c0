//! The command-line contract, run as users and scripts run it: the real
//! binary, a real server process on 127.0.0.1:0, real files.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use custos::custody::checkpoint::LogVerifier;

use crate::proxy;

const BIN: &str = env!("CARGO_BIN_EXE_custos");

/// A server process that is killed when the test ends, however it ends.
pub(crate) struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) server: String,
}

impl Env {
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .env("CUSTOS_CONFIG_DIR", self.path("config"))
            .env("CUSTOS_SERVER", &self.server)
            .env_remove("CUSTOS_IDENTITY")
            .env_remove("CUSTOS_PASSPHRASE")
            .stdin(Stdio::null());
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Run, require success, return stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "custos {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A fresh folder with no server yet.
    pub(crate) fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
            server: String::new(),
        }
    }

    /// Unencrypted identities named after their roles, an initialised vault
    /// in `vault` with `admin` as its anchor; returns the log's vkey.
    pub(crate) fn identities_and_vault(&self, whos: &[&str]) -> String {
        for who in whos {
            self.ok(&["keygen", "--name", who, "--out", who, "--no-passphrase"]);
        }
        let out = self.ok(&[
            "init",
            "--data",
            "vault",
            "--origin",
            "cli.test/log",
            "--admin",
            "admin.pub",
        ]);
        out.lines().find_map(|l| l.strip_prefix("vkey: ")).unwrap().to_owned()
    }

    /// Register `who.pub` (admin-signed); lawyers are intake principals.
    /// Returns what the command said on stderr.
    pub(crate) fn register(&self, who: &str) -> String {
        let card = format!("{who}.pub");
        let mut args = vec!["--identity", "admin", "principal", "add", &card, "--role", who];
        if who == "lawyer" {
            args.push("--intake");
        }
        let out = self.run(&args);
        let said = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "custos {args:?} failed: {said}");
        said
    }

    /// Run under a pseudo-terminal (util-linux `script`), as a person at a
    /// terminal would; returns everything the terminal showed.
    fn in_terminal(&self, args: &[&str]) -> String {
        let line = std::iter::once(BIN)
            .chain(args.iter().copied())
            .map(|a| {
                assert!(!a.contains('\''), "plain arguments only");
                format!("'{a}'")
            })
            .collect::<Vec<_>>()
            .join(" ");
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .current_dir(self.dir.path())
            .env("CUSTOS_CONFIG_DIR", self.path("config"))
            .env("CUSTOS_SERVER", &self.server)
            .env_remove("CUSTOS_IDENTITY")
            .env_remove("CUSTOS_PASSPHRASE")
            .env_remove("CUSTOS_QUIET")
            .stdin(Stdio::null())
            .output()
            .expect("util-linux script runs");
        let shown = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "custos {args:?} on a terminal failed: {shown}");
        shown
    }

    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

pub(crate) type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Start `custos serve` on port 0; returns the process, its URL and its log
/// lines (at debug level, collected as they come).
pub(crate) fn start_server(env: &Env, data: &Path) -> (ServerProcess, String, Log) {
    start_server_with(env, data, &[])
}

/// Run `custos ARGS` (a server) in `env`'s folder; returns it and the
/// lines of its stderr, to be read (and drained) by the caller.
fn spawn_server(
    env: &Env,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (ServerProcess, std::io::Lines<BufReader<std::process::ChildStderr>>) {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(vars.iter().copied())
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    (ServerProcess(child), BufReader::new(stderr).lines())
}

fn start_server_with(env: &Env, data: &Path, extra: &[&str]) -> (ServerProcess, String, Log) {
    let listen = if extra.contains(&"--listen") {
        &[][..]
    } else {
        &["--listen", "127.0.0.1:0"][..]
    };
    let mut args = vec!["serve", "--data", data.to_str().unwrap()];
    args.extend(listen);
    args.extend(extra);
    let (guard, mut lines) = spawn_server(env, &args, &[("CUSTOS_LOG", "debug")]);
    let log = Log::default();
    let addr = loop {
        let line = lines.next().expect("server exited before serving").unwrap();
        log.lock().unwrap().push(line.clone());
        if line.contains("custos is serving") {
            let rest = line.split("addr=").nth(1).unwrap();
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    let sink = log.clone();
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| sink.lock().unwrap().push(l)));
    (guard, format!("http://{addr}"), log)
}

#[test]
fn the_documented_command_line_contract_holds() {
    let mut env = Env {
        dir: tempfile::tempdir().unwrap(),
        server: String::new(),
    };

    // keygen prints the new key id, which is the card's.
    let mut ids = Vec::new();
    for who in ["admin", "lawyer", "auditor"] {
        let out = env.ok(&[
            "keygen",
            "--name",
            &format!("Test {who}"),
            "--out",
            who,
            "--no-passphrase",
        ]);
        let key_id = out.trim().to_owned();
        let card = custos::identity::read_card(&env.path(&format!("{who}.pub"))).unwrap();
        assert_eq!(key_id, card.key_id().as_str());
        ids.push(key_id);
    }
    let again = env.run(&["keygen", "--name", "x", "--out", "admin", "--no-passphrase"]);
    assert!(!again.status.success(), "keygen never overwrites a key");

    // init prints the vkey on a line beginning "vkey: ".
    let out = env.ok(&[
        "init",
        "--data",
        "vault",
        "--origin",
        "cli.test/log",
        "--admin",
        "admin.pub",
    ]);
    let vkey = out
        .lines()
        .find_map(|l| l.strip_prefix("vkey: "))
        .expect("a vkey line")
        .to_owned();
    let verifier = LogVerifier::parse(&vkey).unwrap();
    assert!(!env
        .run(&[
            "init",
            "--data",
            "vault",
            "--origin",
            "cli.test/log",
            "--admin",
            "admin.pub"
        ])
        .status
        .success());

    let (server, url, server_log) = start_server(&env, &env.path("vault"));
    env.server = url;

    env.ok(&[
        "--identity",
        "admin",
        "principal",
        "add",
        "lawyer.pub",
        "--role",
        "lawyer",
        "--intake",
    ]);
    env.ok(&[
        "--identity",
        "admin",
        "principal",
        "add",
        "auditor.pub",
        "--role",
        "auditor",
    ]);
    let list = env.json(&["--identity", "admin", "principal", "list"]);
    let roles: Vec<(String, String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["key_id"].as_str().unwrap().into(),
                p["name"].as_str().unwrap().into(),
                p["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        roles.contains(&(ids[1].clone(), "Test lawyer".into(), "lawyer".into())),
        "{roles:?}"
    );
    assert!(roles.contains(&(ids[2].clone(), "Test auditor".into(), "auditor".into())));

    // submit prints case_id, codename and receipt.
    std::fs::write(env.path("statement.txt"), "They beat me at the station. MARKER-7f3a\n").unwrap();
    std::fs::write(env.path("scan.pdf"), vec![7u8; 70_000]).unwrap();
    let sub = env.json(&[
        "submit",
        "--statement",
        "statement.txt",
        "--medical",
        "scan.pdf",
        "--receipt",
        "receipt.json",
    ]);
    let case_id = sub["case_id"].as_str().unwrap().to_owned();
    assert_eq!(sub["codename"].as_str().unwrap().split(' ').count(), 8);
    assert_eq!(sub["receipt"], "receipt.json");
    let receipt: custos::client::flows::ReceiptFile =
        serde_json::from_slice(&std::fs::read(env.path("receipt.json")).unwrap()).unwrap();
    for r in &receipt.receipts {
        custos::audit::verify_receipt(r, &verifier).unwrap();
    }

    // cases lists it for the lawyer.
    let cases = env.json(&["--identity", "lawyer", "cases"]);
    assert!(cases
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["case_id"] == case_id.as_str()));

    // get writes the original file names, byte for byte.
    env.ok(&["--identity", "lawyer", "get", &case_id, "--out", "retrieved"]);
    assert_eq!(
        std::fs::read(env.path("retrieved/statement.txt")).unwrap(),
        b"They beat me at the station. MARKER-7f3a\n"
    );
    assert_eq!(
        std::fs::read(env.path("retrieved/scan.pdf")).unwrap(),
        vec![7u8; 70_000]
    );

    // get exits non-zero and writes nothing without an envelope.
    let denied = env.run(&["--identity", "auditor", "get", &case_id, "--out", "denied"]);
    assert!(!denied.status.success());
    assert!(!env.path("denied").exists());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    assert!(stderr.starts_with("error: "));

    // audit passes and says what it checked.
    let audit = env.ok(&["--identity", "auditor", "audit", "--state", "audit.json"]);
    assert!(
        audit.contains("audit passed") && audit.contains("signatures"),
        "{audit}"
    );

    // log checkpoint prints the signed note exactly as signed.
    let note = env.ok(&["log", "checkpoint"]);
    let cp = verifier.verify(&note).unwrap();
    assert!(cp.size >= 7);

    // A world-readable identity file is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(env.path("lawyer"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = env.run(&["--identity", "lawyer", "cases"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    }

    // The server's own log, at debug level, names no client address and no
    // content: only its own listening address appears, on the line that
    // announces it.
    let port = env.server.rsplit(':').next().unwrap().to_owned();
    let lines = server_log.lock().unwrap().clone();
    assert!(lines.len() > 5, "the server logged: {lines:?}");
    for line in &lines {
        assert!(
            !line.contains("MARKER-7f3a") && !line.contains("beat me"),
            "content in the log: {line}"
        );
        assert!(!line.contains("user-agent") && !line.contains("user_agent"), "{line}");
        if line.contains("127.0.0.1") {
            assert!(
                line.contains(&format!("127.0.0.1:{port}")) && line.contains("custos is serving"),
                "a client address in the log: {line}"
            );
        }
    }

    // An insider rewrites an event in the store: audit exits non-zero and
    // prints what it checked and the first failure.
    drop(server);
    {
        let store = custos::store::Store::open(&custos::vault::db_path(&env.path("vault"))).unwrap();
        let text = String::from_utf8(store.entry(3).unwrap().unwrap()).unwrap();
        let altered = text.replacen("\"time\":\"20", "\"time\":\"19", 1);
        assert_ne!(altered, text);
        store
            .danger_raw_tree(custos::store::T::Log)
            .insert(3u64.to_be_bytes(), altered.as_bytes())
            .unwrap();
        store.flush_blocking().unwrap();
    }
    let (_server, url, _) = start_server(&env, &env.path("vault"));
    env.server = url;
    let out = env.run(&["--identity", "auditor", "audit", "--vkey", &vkey]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("checkpoint: size")
            && stdout.contains("FAILED:")
            && (stdout.contains("chain link") || stdout.contains("Merkle root") || stdout.contains("is dated")),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: audit failed"), "{stderr}");
}

/// Start `custos witness serve` for a log; returns the process, its URL and
/// its vkey, read from the one line it prints on stdout.
fn start_witness(env: &Env, log_vkey: &str) -> (ServerProcess, String, String) {
    let mut child = Command::new(BIN)
        .args(["witness", "serve", "--data", "witness", "--name", "witness.cli.test/w1"])
        .args(["--log", log_vkey, "--listen", "127.0.0.1:0"])
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = ServerProcess(child);
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("the witness printed its address")
        .unwrap();
    let rest = line.strip_prefix("witness listening on ").expect(&line);
    let (url, vkey) = rest.split_once(" with vkey ").unwrap();
    (guard, url.to_owned(), vkey.to_owned())
}

#[test]
fn export_verify_and_witness_serve_work_from_the_command_line() {
    let mut env = Env::new();
    let vkey = env.identities_and_vault(&["admin", "lawyer", "auditor"]);
    std::fs::write(env.path("log.vkey"), format!("{vkey}\n")).unwrap();
    let (_witness, witness_url, witness_vkey) = start_witness(&env, &vkey);
    let (_server, url, _) = start_server_with(
        &env,
        &env.path("vault"),
        &["--witness", &format!("{witness_url},{witness_vkey}")],
    );
    env.server = url;
    env.register("lawyer");
    env.register("auditor");
    std::fs::write(env.path("statement.txt"), "They took my phone.\n").unwrap();
    std::fs::write(env.path("xray.png"), vec![3u8; 50_000]).unwrap();
    let sub = env.json(&["submit", "--statement", "statement.txt", "--medical", "xray.png"]);
    let case_id = sub["case_id"].as_str().unwrap().to_owned();

    // export: a folder with the report, and an archive.
    let done = env.json(&[
        "--identity",
        "auditor",
        "export",
        &case_id,
        "--out",
        "bundle",
        "--report",
    ]);
    assert_eq!(done["objects"], 2);
    assert_eq!(done["verification"]["passed"], true);
    assert!(env.path("bundle/report.html").is_file());
    env.ok(&[
        "--identity",
        "lawyer",
        "export",
        &case_id,
        "--out",
        "case.tar",
        "--archive",
    ]);
    assert!(env.path("case.tar").is_file());
    let again = env.run(&["--identity", "auditor", "export", &case_id, "--out", "bundle"]);
    assert!(!again.status.success(), "export never overwrites");

    // verify: one line per check and a verdict; --witness and --quorum.
    let out = env.ok(&[
        "verify",
        "bundle",
        "--vkey",
        "log.vkey",
        "--witness",
        &witness_vkey,
        "--quorum",
        "1",
    ]);
    assert!(out.contains("witnesses") && out.contains("VERIFIED"), "{out}");
    let json = env.json(&["verify", "case.tar", "--vkey", &vkey]);
    assert_eq!(json["passed"], true);
    let other = custos::custody::cosignature::WitnessSigner::new(
        "witness.elsewhere/w",
        ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
    )
    .unwrap()
    .verifier()
    .vkey();
    let out = env.run(&[
        "verify",
        "bundle",
        "--vkey",
        &vkey,
        "--witness",
        &witness_vkey,
        "--witness",
        &other,
    ]);
    assert_eq!(out.status.code(), Some(1), "the default quorum is every witness given");
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT VERIFIED: check witnesses failed"));

    // verify with an identity decrypts.
    env.ok(&[
        "--identity",
        "lawyer",
        "verify",
        "case.tar",
        "--vkey",
        &vkey,
        "--out",
        "decrypted",
    ]);
    assert_eq!(
        std::fs::read(env.path("decrypted/xray.png")).unwrap(),
        vec![3u8; 50_000]
    );

    // A changed ciphertext: exit 1, and the failing check is named.
    let object = std::fs::read_dir(env.path("bundle/objects"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut data = std::fs::read(&object).unwrap();
    data[100] ^= 0xff;
    std::fs::write(&object, data).unwrap();
    let out = env.run(&["verify", "bundle", "--vkey", &vkey]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("objects     FAIL") && stdout.contains("NOT VERIFIED"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: verification failed at check objects"));
}

#[test]
fn submitters_come_back_by_codename_and_duress_shows_only_to_lawyers() {
    let mut env = Env::new();
    env.identities_and_vault(&["admin", "lawyer"]);
    // The default difficulty: every submission below pays a real stamp.
    let (_server, url, _) = start_server(&env, &env.path("vault"));
    env.server = url;
    env.register("lawyer");
    std::fs::write(env.path("statement.txt"), "They held me for three days.\n").unwrap();

    let plain = env.json(&["submit", "--statement", "statement.txt"]);
    assert!(plain["duress_codename"].is_null());
    let sub = env.json(&["submit", "--statement", "statement.txt", "--duress"]);
    let case_id = sub["case_id"].as_str().unwrap().to_owned();
    let (codename, duress) = (
        sub["codename"].as_str().unwrap().to_owned(),
        sub["duress_codename"].as_str().unwrap().to_owned(),
    );
    assert_eq!(duress.split(' ').count(), 8);
    assert_ne!(codename, duress);

    // With the codename in CUSTOS_CODENAME: add, status, replies.
    let as_submitter = |code: &str, args: &[&str]| {
        let out = env.cmd().env("CUSTOS_CODENAME", code).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    std::fs::write(env.path("later.pdf"), vec![5u8; 30_000]).unwrap();
    let (code, _, err) = as_submitter(
        &codename,
        &["submitter", "add", "--case", &case_id, "--medical", "later.pdf"],
    );
    assert_eq!(code, Some(0), "{err}");
    let (_, status, _) = as_submitter(&duress, &["--json", "submitter", "status", "--case", &case_id]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["status"], "open");
    // The sizes a person is shown are said to be the encrypted ones.
    let (_, shown, _) = as_submitter(&codename, &["submitter", "status", "--case", &case_id]);
    let later = shown.lines().find(|l| l.contains("later.pdf")).expect(&shown);
    assert!(
        later.starts_with("medical") && later.contains(" bytes encrypted)"),
        "{later}"
    );
    assert_eq!(
        status["objects"].as_array().unwrap().len(),
        2,
        "the duress codename sees the case like the real one"
    );
    std::fs::write(env.path("reply.txt"), "We have your report. Stay safe.\n").unwrap();
    env.ok(&["--identity", "lawyer", "reply", &case_id, "--message", "reply.txt"]);
    let (code, replies, _) = as_submitter(&codename, &["submitter", "replies", "--case", &case_id]);
    assert_eq!(code, Some(0));
    assert!(replies.contains("We have your report. Stay safe."), "{replies}");

    // A wrong codename: the same one line as an unknown case.
    let (code, _, wrong) = as_submitter(
        plain["codename"].as_str().unwrap(),
        &["submitter", "status", "--case", &case_id],
    );
    assert_eq!(code, Some(1));
    assert!(
        wrong.starts_with("error: no case") && wrong.trim().lines().count() == 1,
        "{wrong}"
    );

    // Withdrawn with the duress codename: lawyers see it, nobody else.
    let (code, _, err) = as_submitter(
        &duress,
        &[
            "submitter",
            "withdraw",
            "--case",
            &case_id,
            "--reason",
            "I changed my mind",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (_, status, _) = as_submitter(&duress, &["--json", "submitter", "status", "--case", &case_id]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&status).unwrap()["status"],
        "withdrawn"
    );
    let cases = env.json(&["--identity", "lawyer", "cases"]);
    let status_of = |id: &str| cases.as_array().unwrap().iter().find(|c| c["case_id"] == id).unwrap()["status"].clone();
    assert_eq!(status_of(&case_id), "withdrawn_under_duress");
    assert_eq!(status_of(plain["case_id"].as_str().unwrap()), "open");
    let got = env.ok(&["--identity", "lawyer", "get", &case_id, "--out", "got"]);
    assert!(got.contains("withdrawn under duress"), "{got}");
    assert_eq!(
        std::fs::read(env.path("got/later.pdf")).unwrap(),
        vec![5u8; 30_000],
        "nothing was deleted"
    );
}

#[test]
fn an_encrypted_identity_needs_its_passphrase() {
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
        server: "http://127.0.0.1:9".into(),
    };
    let out = env
        .cmd()
        .args(["keygen", "--name", "P", "--out", "id"])
        .env("CUSTOS_PASSPHRASE", "correct horse battery")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = std::fs::read(env.path("id")).unwrap();
    assert!(
        file.starts_with(b"age-encryption.org/v1"),
        "the identity is an age passphrase file"
    );
    // Without a passphrase and without a terminal: a clear error.
    let out = env.run(&["--identity", "id", "cases"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("CUSTOS_PASSPHRASE"));
    // With the wrong one: refused before any network use.
    let out = env
        .cmd()
        .args(["--identity", "id", "cases"])
        .env("CUSTOS_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot decrypt the identity file"));
}

#[test]
fn init_reads_admin_cards_from_keys_admins_when_none_are_given() {
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
        server: "http://127.0.0.1:9".into(),
    };
    std::fs::create_dir_all(env.path("keys/admins")).unwrap();
    let mut ids = Vec::new();
    for who in ["a1", "a2"] {
        ids.push(
            env.ok(&[
                "keygen",
                "--name",
                who,
                "--out",
                &format!("keys/{who}"),
                "--no-passphrase",
            ])
            .trim()
            .to_owned(),
        );
        std::fs::rename(
            env.path(&format!("keys/{who}.pub")),
            env.path(&format!("keys/admins/{who}.pub")),
        )
        .unwrap();
    }
    let out = env.json(&["init", "--data", "vault", "--origin", "cards.test/log"]);
    let mut admins: Vec<String> = out["admins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    admins.sort();
    ids.sort();
    assert_eq!(admins, ids);

    // With no cards anywhere, init refuses rather than making a vault nobody administers.
    let empty = Env {
        dir: tempfile::tempdir().unwrap(),
        server: "http://127.0.0.1:9".into(),
    };
    let out = empty.run(&["init", "--data", "vault", "--origin", "none.test/log"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no admin cards"));
    assert!(!empty.path("vault").exists());
}

#[test]
fn long_transfers_show_a_progress_bar_on_a_terminal_only() {
    let mut env = Env::new();
    let _served = served_vault_with_lawyer(&mut env);
    std::fs::write(env.path("statement.txt"), "what happened").unwrap();
    let video: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(env.path("video.mp4"), &video).unwrap();
    let submit = ["submit", "--statement", "statement.txt", "--evidence", "video.mp4"];

    // Not a terminal: no bar, whatever the size.
    let mut args = vec!["--json"];
    args.extend_from_slice(&submit);
    let out = env.run(&args);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('%') && !stderr.contains('\r'), "{stderr}");
    let case: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let case = case["case_id"].as_str().unwrap().to_owned();

    // On a terminal: one bar, for the 6 MiB upload and not the tiny
    // statement, ending at 100%.
    let shown = env.in_terminal(&submit);
    assert!(shown.contains("upload   ["), "{shown}");
    assert_eq!(shown.matches("100%").count(), 1, "{shown}");
    assert!(shown.contains("6.00 MiB of 6.00 MiB"), "{shown}");
    // --quiet: none.
    let mut quiet = vec!["--quiet"];
    quiet.extend_from_slice(&submit);
    assert!(!env.in_terminal(&quiet).contains('%'));

    // Downloads too.
    let shown = env.in_terminal(&["--identity", "lawyer", "get", &case, "--out", "got"]);
    assert!(shown.contains("download [") && shown.contains("100%"), "{shown}");
    assert_eq!(std::fs::read(env.path("got/video.mp4")).unwrap(), video);
}

/// `custos submit` killed in the middle of a 100 MiB upload, then run
/// again with the same arguments, finishes the same case from the vault's
/// offset. No copy of the ciphertext is on disk at any time (it is made as
/// it is sent, and made again on resume from the journal's encryption):
/// when the process is killed, nothing but the plaintext and the vault's
/// own store holds more than a few KiB. The second run's commit, which the
/// vault accepts only if the SHA-256 of everything it holds matches, proves
/// that the part made again is the part first sent.
#[test]
fn a_killed_submission_resumes_from_the_vaults_offset_when_run_again() {
    const VIDEO: usize = 100 << 20;
    let mut env = Env::new();
    // The client talks to the vault through a proxy that counts its bytes.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(proxy::CutProxy::ahead(u64::MAX));
    let _server = served_vault_behind(&mut env, &proxy);
    std::fs::write(env.path("statement.txt"), "They filmed it.").unwrap();
    let video: Vec<u8> = (0..VIDEO as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(env.path("video.mp4"), &video).unwrap();
    // Its temporary files, if it made any, would be here.
    std::fs::create_dir(env.path("tmp")).unwrap();
    let args = [
        "--json",
        "submit",
        "--statement",
        "statement.txt",
        "--evidence",
        "video.mp4",
    ];
    let mut first = env.cmd();
    first.env("TMPDIR", env.path("tmp")).args(args);
    kill_after_checking(
        first,
        40 << 20,
        || proxy.sent(),
        || {
            let copies = files_larger_than(env.dir.path(), 64 << 10, &[env.path("vault"), env.path("video.mp4")]);
            assert!(copies.is_empty(), "a copy of the upload on disk: {copies:?}");
        },
    );
    let before = proxy.sent();
    let journals: Vec<_> = std::fs::read_dir(env.path("config/resume"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    assert_eq!(journals.len(), 1, "the killed submission left its journal");
    // It holds secrets (the codenames, the case key, the file key): its
    // owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&journals[0]), 0o700);
    assert_eq!(mode(&journals[0].join("state.json")), 0o600);
    assert!(std::fs::read_to_string(journals[0].join("state.json"))
        .unwrap()
        .contains("file_key"));

    // The same command again: it resumes, it does not start over.
    let mut second = env.cmd();
    let out = second.env("TMPDIR", env.path("tmp")).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sub: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let again = proxy.sent() - before;
    assert!(
        again < (VIDEO - (32 << 20)) as u64,
        "the second run sent {again} bytes for a {VIDEO}-byte file: it restarted"
    );
    assert!(
        std::fs::read_dir(env.path("config/resume")).unwrap().next().is_none(),
        "a finished submission keeps no journal"
    );

    // One case, holding the whole file; the codename from the first run
    // opens it.
    let case = sub["case_id"].as_str().unwrap();
    let cases = env.json(&["--identity", "lawyer", "cases"]);
    assert_eq!(cases.as_array().unwrap().len(), 1, "{cases}");
    env.ok(&["--identity", "lawyer", "get", case, "--out", "got"]);
    assert!(std::fs::read(env.path("got/video.mp4")).unwrap() == video);
    let mut status = env.cmd();
    status.env("CUSTOS_CODENAME", sub["codename"].as_str().unwrap()).args([
        "--json",
        "submitter",
        "status",
        "--case",
        case,
    ]);
    let out = status.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("killed after {before} bytes sent; the second run sent {again}");
}

/// The files under `dir` larger than `limit` bytes, but for those under
/// `except`, skipping any that vanish while they are looked at.
fn files_larger_than(dir: &Path, limit: u64, except: &[PathBuf]) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for p in entries.filter_map(|e| Some(e.ok()?.path())) {
            if except.iter().any(|x| p.starts_with(x)) {
                continue;
            }
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) if m.len() > limit => found.push((p, m.len())),
                _ => {}
            }
        }
    }
    found
}

/// A vault with a registered intake lawyer, served; `env.server` points at it.
pub(crate) fn served_vault_with_lawyer(env: &mut Env) -> (ServerProcess, String) {
    env.identities_and_vault(&["admin", "lawyer"]);
    let (server, url, _log) = start_server(env, &env.path("vault"));
    env.server = url.clone();
    env.register("lawyer");
    (server, url)
}

/// [`served_vault_with_lawyer`], reached only through `proxy`: the vault
/// is told that its clients sign for the proxy's address.
fn served_vault_behind(env: &mut Env, proxy: &proxy::CutProxy) -> ServerProcess {
    env.identities_and_vault(&["admin", "lawyer"]);
    let (server, url, _log) = start_server_with(env, &env.path("vault"), &["--public-url", &proxy.url]);
    proxy.forward_to(url.trim_start_matches("http://"));
    env.server = proxy.url.clone();
    env.register("lawyer");
    server
}

/// Start `custos ARGS` quietly, let it run until `moved()` passes `bytes`,
/// then kill it.
fn kill_after(env: &Env, args: &[&str], bytes: u64, moved: impl Fn() -> u64) {
    let mut cmd = env.cmd();
    cmd.args(args);
    kill_after_checking(cmd, bytes, moved, || {});
}

/// Start `cmd` quietly, let it run until `moved()` passes `bytes`, call
/// `check` while it still runs, then kill it.
fn kill_after_checking(mut cmd: Command, bytes: u64, moved: impl Fn() -> u64, check: impl FnOnce()) {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while moved() < bytes {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the command ended before it was killed"
        );
        assert!(std::time::Instant::now() < deadline, "the transfer did not get going");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    check();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the command ended before it was killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `custos get` killed in the middle of a large download, then run again,
/// asks the vault only for the rest (an HTTP range request).
#[test]
fn a_killed_download_resumes_where_it_stopped_when_run_again() {
    const VIDEO: usize = 40 << 20;
    let mut env = Env::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(proxy::CutProxy::ahead(u64::MAX));
    let _server = served_vault_behind(&mut env, &proxy);
    std::fs::write(env.path("statement.txt"), "They filmed it.").unwrap();
    let video: Vec<u8> = (0..VIDEO as u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 9) as u8)
        .collect();
    std::fs::write(env.path("video.mp4"), &video).unwrap();
    let sub = env.json(&["submit", "--statement", "statement.txt", "--evidence", "video.mp4"]);
    let case = sub["case_id"].as_str().unwrap().to_owned();
    let args = ["--identity", "lawyer", "get", &case, "--out", "got"];
    // Killed once 16 MiB of ciphertext are staged on disk: counted there,
    // not at the proxy, whose count runs ahead of what a busy client has
    // written by as much as the socket buffers hold.
    let staging = env.path(&format!(".custos-get-{case}"));
    let staged = || {
        std::fs::read_dir(&staging)
            .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    };
    kill_after(&env, &args, 16 << 20, staged);
    let before = proxy.received();
    assert!(
        !env.path("got").exists(),
        "nothing reaches --out before every object is whole"
    );

    env.ok(&args);
    let again = proxy.received() - before;
    assert!(
        again < (VIDEO - (8 << 20)) as u64,
        "the second run received {again} bytes for a {VIDEO}-byte file: it started over"
    );
    assert_eq!(std::fs::read(env.path("got/video.mp4")).unwrap(), video);
    assert!(
        !env.path(&format!(".custos-get-{case}")).exists(),
        "the staging folder is gone once the files are in place"
    );
    eprintln!("killed after {before} bytes received; the second run received {again}");
}

/// What `serve --dev` prints when it is up: its URL and the steps it
/// suggests (the indented lines).
fn start_dev_vault(env: &Env) -> (ServerProcess, String, Vec<String>) {
    // Cheap stamps: the walkthrough is about the steps, not the cost.
    let (guard, mut lines) = spawn_server(
        env,
        &["serve", "--dev", "--listen", "127.0.0.1:0"],
        &[("CUSTOS_STAMP_BITS", "4"), ("CUSTOS_LOG", "info")],
    );
    let mut url = None;
    let mut steps = Vec::new();
    loop {
        let line = lines.next().expect("the demo exited before it was ready").unwrap();
        if let Some(rest) = line.split("custos is serving addr=").nth(1) {
            url = Some(format!("http://{}", rest.split_whitespace().next().unwrap()));
        }
        if let Some(step) = line.strip_prefix("  ") {
            steps.push(step.to_owned());
            if step.ends_with("principal list") {
                break;
            }
        }
    }
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    (guard, url.expect("the demo logged its address"), steps)
}

/// Whether this repository's .gitignore keeps `name` (in its root) out.
fn git_ignores(name: &str) -> bool {
    Command::new("git")
        .args(["check-ignore", "-q", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("git runs")
        .success()
}

#[test]
fn the_readme_walkthrough_runs_as_written_and_the_demo_prints_the_same_steps() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("\n## Try it\n").nth(1).expect("README has Try it");
    let block = section.split("```\n").nth(1).expect("Try it has a command block");
    let example = block
        .lines()
        .find_map(|l| l.strip_prefix("#   case:"))
        .expect("the block shows a case id")
        .trim();
    let steps: Vec<&str> = block.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    assert!(steps.len() >= 6, "{block}");

    let mut env = Env::new();
    let (_demo, url, printed) = start_dev_vault(&env);
    env.server = url.clone();
    // The demo prints the README's steps, for the address it listens on.
    for step in &steps {
        let expected = step
            .replace(
                "cargo run --release --",
                &format!("cargo run --release -- --server {url}"),
            )
            .replace(example, "CASE");
        assert!(
            printed.contains(&expected),
            "the demo does not print {expected:?}:\n{printed:#?}"
        );
    }

    // Run as written: `cargo run --release --` is this build of custos, and
    // the case id is the one submit printed.
    let mut case = None::<String>;
    let mut outputs = Vec::new();
    for step in &steps {
        let mut line = step.replace("cargo run --release --", BIN);
        if let Some(id) = &case {
            line = line.replace(example, id);
        }
        let out = Command::new("sh")
            .args(["-c", &line])
            .current_dir(env.dir.path())
            .env("CUSTOS_CONFIG_DIR", env.path("config"))
            .env("CUSTOS_SERVER", &env.server)
            .env_remove("CUSTOS_IDENTITY")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        assert!(out.status.success(), "{step} failed: {stderr}");
        if line.contains(" submit ") {
            case = stdout
                .lines()
                .find_map(|l| l.strip_prefix("case:"))
                .map(|c| c.trim().to_owned());
            // The first contact is said once, in plain words, not as a log line.
            assert_eq!(stderr.matches("first contact").count(), 1, "{stderr}");
            assert!(stderr.starts_with("note: first contact"), "{stderr}");
            let receipt = stdout.lines().find_map(|l| l.strip_prefix("receipt:")).unwrap().trim();
            assert!(env.path(receipt).is_file(), "{receipt}");
            assert!(git_ignores(receipt), ".gitignore lets {receipt} in");
        } else if line.starts_with(BIN) {
            assert!(!stderr.contains("first contact"), "said twice: {stderr}");
        }
        outputs.push(stdout);
    }
    let case = case.expect("submit printed a case id");
    let all = outputs.join("\n");
    // `cases` has a header row; `get` lists by kind and ends with a verdict.
    let cases = outputs
        .iter()
        .find(|o| o.trim_start().starts_with("CASE "))
        .expect(&all);
    // A case not looked at yet is marked new.
    assert!(
        cases.lines().nth(1).unwrap().starts_with(&format!("* {case}")),
        "{cases}"
    );
    let got = outputs.iter().find(|o| o.contains("verified:")).expect(&all);
    let listed: Vec<&str> = got
        .lines()
        .skip(1)
        .take(2)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(listed, ["statement", "medical"], "{got}");
    assert!(got.contains("verified: 2 files match"), "{got}");
    assert_eq!(
        std::fs::read(env.path("case/report.txt")).unwrap(),
        std::fs::read(env.path("report.txt")).unwrap()
    );
    // The audit checks the demo witness's cosignature.
    assert!(
        all.contains("witnesses:  cosigned by 1 (quorum 1): localhost/custos-dev-witness"),
        "{all}"
    );
    assert!(all.contains("audit passed"), "{all}");
    for name in [
        "statement.txt",
        "report.txt",
        "case/report.txt",
        "audit-state.json",
        "custos-dev",
    ] {
        assert!(git_ignores(name), ".gitignore lets the walkthrough's {name} in");
    }
}

#[test]
fn every_failure_is_one_error_line_and_exit_1() {
    let mut env = Env::new();
    // Nothing listens on port 1.
    env.server = "http://127.0.0.1:1".into();
    let one_line = |args: &[&str], vars: &[(&str, &str)]| {
        let out = env.cmd().args(args).envs(vars.iter().copied()).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "custos {args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "custos {args:?}: {err}"
        );
        err
    };
    // Usage errors, which clap would print over several lines with exit 2.
    let e = one_line(&["verify", "bundle"], &[]);
    assert!(e.contains("--vkey"), "{e}");
    let e = one_line(&["principal"], &[]);
    assert!(e.contains("custos principal") && e.contains("add, list, remove"), "{e}");
    let e = one_line(&["get"], &[]);
    assert!(e.contains("<CASE>"), "{e}");
    let e = one_line(&[], &[]);
    assert!(e.contains("'custos' requires a subcommand"), "{e}");
    // With no argument at all (nor CUSTOS_SERVER), clap would print the
    // whole help as an error: one line instead, naming the command.
    let out = Command::new(BIN)
        .arg("principal")
        .env_remove("CUSTOS_SERVER")
        .env_remove("CUSTOS_IDENTITY")
        .env_remove("CUSTOS_QUIET")
        .output()
        .unwrap();
    let e = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert_eq!(e, "error: custos principal needs a command (add --help to see them)\n");
    one_line(&["cases", "--no-such-flag"], &[]);
    one_line(&["no-such-command"], &[]);
    // A vault that cannot be reached: said once, with where and why.
    let e = one_line(&["log", "checkpoint"], &[]);
    assert_eq!(e.matches("cannot reach").count(), 1, "{e}");
    assert!(e.contains("at http://127.0.0.1:1: ") && e.contains("refused"), "{e}");
    assert!(!e.contains("error sending request"), "{e}");
    // A message that spans lines is still said on one.
    let e = one_line(&["backup", "--data", "no-vault-here", "--out", "x.tar"], &[]);
    assert!(e.contains("is its server running?"), "{e}");
    // Booleans in the environment take the usual spellings.
    for v in ["1", "0", "true", "false", "yes", "no", "on", "off"] {
        let e = one_line(&["log", "checkpoint"], &[("CUSTOS_QUIET", v)]);
        assert!(e.contains("cannot reach"), "CUSTOS_QUIET={v}: {e}");
    }
    let e = one_line(&["log", "checkpoint"], &[("CUSTOS_QUIET", "maybe")]);
    assert!(e.contains("'maybe'"), "{e}");
    // Help is not a failure.
    let help = env.run(&["get", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--out"));
}

#[test]
fn a_new_vault_at_a_pinned_address_is_refused_until_the_named_files_are_removed() {
    let mut env = Env::new();
    env.identities_and_vault(&["admin", "lawyer"]);
    let (first, url, _) = start_server_with(&env, &env.path("vault"), &["--stamp-bits", "4"]);
    env.server = url.clone();
    env.register("lawyer");
    std::fs::write(env.path("statement.txt"), "They held me for three days.\n").unwrap();
    env.ok(&["submit", "--statement", "statement.txt"]);
    drop(first);
    // Another vault (a new demo vault, say) at the same address.
    std::fs::rename(env.path("vault"), env.path("old-vault")).unwrap();
    env.identities_and_vault(&[]);
    let addr = url.strip_prefix("http://").unwrap();
    let (_second, _, _) = start_server_with(&env, &env.path("vault"), &["--stamp-bits", "4", "--listen", addr]);
    // Every command says what happened: the admin's, the submitter's.
    for args in [
        &["--identity", "admin", "principal", "list"][..],
        &["submit", "--statement", "statement.txt"],
    ] {
        let out = env.run(args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("log key changed") && err.contains("a new demo vault"),
            "{args:?}: {err}"
        );
    }
    let out = env.run(&["submit", "--statement", "statement.txt"]);
    let err = String::from_utf8(out.stderr).unwrap();
    // The error names what to remove; once removed, the new vault is pinned.
    let named: Vec<&str> = err
        .trim_end()
        .rsplit_once(" remove ")
        .unwrap()
        .1
        .split(" and ")
        .collect();
    assert_eq!(named.len(), 2, "{err}");
    for file in named {
        std::fs::remove_file(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    assert!(env.register("lawyer").starts_with("note: first contact"));
    env.ok(&["submit", "--statement", "statement.txt"]);
}
