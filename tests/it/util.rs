//! Test helpers: a real vault (real sled in a temp dir, real keys) served on
//! 127.0.0.1:0, stopped when the test ends, and clients for each role.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use custos::api::{self, AppState};
use custos::client::flows::{self, SubmitFile, Submitted};
use custos::client::trust::TrustStore;
use custos::client::Client;
use custos::config::WitnessConfig;
use custos::custody::checkpoint::LogVerifier;
use custos::envelope::ObjectKind;
use custos::identity::{Identity, Role};
use custos::wire::PrincipalBody;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ORIGIN: &str = "test.custos.example/log";

/// Proof-of-work difficulty in tests: enough that a stamp is real work, low
/// enough that dozens of submissions stay quick.
pub const TEST_STAMP_BITS: u8 = 10;

/// A running vault and its principals.
pub struct TestVault {
    pub tmp: tempfile::TempDir,
    pub url: String,
    pub admin: Identity,
    pub lawyer: Identity,
    pub auditor: Identity,
    pub log: LogVerifier,
    /// Witnesses the server pushes checkpoints to (set before `serve`).
    pub witnesses: Vec<WitnessConfig>,
    /// Proof-of-work difficulty (low in tests, so they stay fast; the
    /// default is tested on its own).
    pub stamp_bits: u8,
    /// How long a client may stall (short in the abuse tests).
    pub client_timeout: std::time::Duration,
    /// Every other setting `serve` runs with (limits, public URLs).
    pub settings: custos::config::Settings,
    /// The running server's state, to look at its store.
    pub state: Option<Arc<AppState>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestVault {
    /// Create a vault with an admin, an intake lawyer and an auditor, and
    /// serve it.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`TestVault::start`], after `prepare` has run on the temp dir (to
    /// mount a file system where the data will go, say).
    pub async fn start_with(prepare: impl FnOnce(&Path)) -> Self {
        Self::start_configured(prepare, Default::default()).await
    }

    /// [`TestVault::start_with`], served with `settings` from the first
    /// start (the chunk storage, say).
    pub async fn start_configured(prepare: impl FnOnce(&Path), settings: custos::config::Settings) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        prepare(tmp.path());
        let admin = Identity::generate("Admin").unwrap();
        let lawyer = Identity::generate("Lawyer One").unwrap();
        let auditor = Identity::generate("Auditor").unwrap();
        let log = custos::vault::init(&tmp.path().join("data"), ORIGIN, &[admin.card()])
            .await
            .unwrap();
        let mut v = TestVault {
            tmp,
            url: String::new(),
            admin,
            lawyer,
            auditor,
            log,
            witnesses: Vec::new(),
            stamp_bits: TEST_STAMP_BITS,
            client_timeout: custos::config::CLIENT_TIMEOUT,
            settings,
            state: None,
            stop: None,
            server: None,
        };
        v.serve().await;
        let c = v.client();
        c.add_principal(
            v.admin.signing_key(),
            &PrincipalBody {
                card: v.lawyer.card(),
                role: Role::Lawyer,
                intake: true,
            },
        )
        .await
        .unwrap();
        c.add_principal(
            v.admin.signing_key(),
            &PrincipalBody {
                card: v.auditor.card(),
                role: Role::Auditor,
                intake: false,
            },
        )
        .await
        .unwrap();
        v
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// Serve the vault in the data dir (again).
    pub async fn serve(&mut self) {
        let chunks = self.settings.chunk_backend().unwrap();
        let vault = custos::vault::open_async_on(&self.data_dir(), chunks).await.unwrap();
        let settings = custos::config::Settings {
            witnesses: self.witnesses.clone(),
            stamp_bits: self.stamp_bits,
            client_timeout: self.client_timeout,
            ..self.settings.clone()
        };
        let state = Arc::new(AppState::new(vault, &settings));
        let (listener, addr) = api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (tx, rx) = oneshot::channel();
        self.state = Some(state.clone());
        self.server = Some(tokio::spawn(api::serve(state, listener, async move {
            let _ = rx.await;
        })));
        self.stop = Some(tx);
        self.url = format!("http://{addr}");
    }

    /// Stop the server and release the store.
    pub async fn stop(&mut self) {
        self.state = None;
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url).unwrap()
    }

    /// The served vault's metrics, as its metrics listener (on a port of
    /// its own, started here) answers them.
    pub async fn metrics(&self) -> String {
        let state = self.state.clone().expect("the vault is served");
        let (listener, addr) = api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(api::serve_metrics(state, listener, async move {
            let _ = rx.await;
        }));
        let resp = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        let _ = tx.send(());
        server.await.unwrap().unwrap();
        text
    }

    /// Every event of the log (up to 1,000), read as the auditor reads them.
    pub async fn events(&self) -> Vec<custos::custody::Event> {
        use base64::Engine;
        let page = self
            .client()
            .entries(self.auditor.signing_key(), 0, 1000)
            .await
            .unwrap();
        page.entries
            .iter()
            .map(|e| {
                let bytes = base64::engine::general_purpose::STANDARD.decode(e).unwrap();
                serde_json::from_slice(&bytes).unwrap()
            })
            .collect()
    }

    /// Register `who` as a lawyer, signed by the admin.
    pub async fn add_lawyer(&self, who: &Identity, intake: bool) {
        self.client()
            .add_principal(
                self.admin.signing_key(),
                &PrincipalBody {
                    card: who.card(),
                    role: Role::Lawyer,
                    intake,
                },
            )
            .await
            .unwrap();
    }

    /// A trust store private to this test.
    pub fn trust(&self) -> TrustStore {
        TrustStore::new(self.tmp.path().join("trust"))
    }

    /// Write a file under the temp dir.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.tmp.path().join("in").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Submit a statement and the given evidence files.
    pub async fn submit(&self, statement: &[u8], evidence: &[(&str, Vec<u8>)]) -> Submitted {
        let mut files = vec![SubmitFile {
            path: self.file("statement.txt", statement),
            kind: ObjectKind::Statement,
        }];
        for (name, bytes) in evidence {
            files.push(SubmitFile {
                path: self.file(name, bytes),
                kind: ObjectKind::Evidence,
            });
        }
        flows::submit(&self.client(), &self.trust(), &[], &files, false)
            .await
            .unwrap()
    }
}

/// Set in a test run again by [`in_mount_namespace`].
const NAMESPACE_VAR: &str = "CUSTOS_TEST_IN_MOUNT_NAMESPACE";

/// Run the named test of this binary again in a private mount namespace
/// (`unshare --mount --map-root-user`, util-linux), where it is root of its
/// own mounts and they vanish with it; true if the caller is already in
/// one and should do the work.
pub fn in_mount_namespace(test: &str) -> bool {
    if std::env::var_os(NAMESPACE_VAR).is_some() {
        return true;
    }
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--map-root-user", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(NAMESPACE_VAR, "1")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("unshare (util-linux) runs this test in its own mount namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    assert!(out.status.success(), "{test} failed in its mount namespace");
    // `--exact` with a name that is not the test's whole path runs nothing
    // and passes.
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test} did not run in its mount namespace"
    );
    false
}

/// Deterministic pseudo-random bytes (so failures reproduce).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Copy a folder tree (a stopped vault's data, say).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Replace a folder tree with a copy of another.
pub fn restore_dir(from: &Path, to: &Path) {
    std::fs::remove_dir_all(to).unwrap();
    copy_dir(from, to);
}

/// A real `custos serve` process on 127.0.0.1:0 (proof of work at 4 bits,
/// log at info), its log lines arriving on a channel; killed when dropped,
/// however the test ends.
pub struct ServerProcess {
    pub child: std::process::Child,
    /// `IP:PORT` it listens on.
    pub addr: String,
    /// `http://IP:PORT`.
    pub url: String,
    /// What it printed before it served.
    early: Vec<String>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawn `custos serve --data DATA` on a loopback port with `extra` flags;
/// its log lines reach the receiver as it prints them, which ends when
/// the server does.
pub fn spawn_serve(data: &Path, extra: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(["serve", "--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--stamp-bits", "4"])
        .args(extra)
        .env("CUSTOS_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, lines)
}

impl ServerProcess {
    /// Start `custos serve --data DATA` with `extra` flags, and wait until
    /// it serves. A server that does not start fails the test with what it
    /// printed.
    pub fn start(data: &Path, extra: &[&str]) -> ServerProcess {
        let (child, lines) = spawn_serve(data, extra);
        let mut seen = Vec::new();
        let addr = loop {
            match lines.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(line) if line.contains("custos is serving") => {
                    break line
                        .split("addr=")
                        .nth(1)
                        .unwrap()
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .to_owned();
                }
                Ok(line) => seen.push(line),
                Err(_) => panic!("the server did not start:\n{}", seen.join("\n")),
            }
        };
        ServerProcess {
            child,
            url: format!("http://{addr}"),
            addr,
            early: seen,
            lines,
        }
    }

    /// Stop it with SIGTERM, wait for it to exit, and return every line it
    /// printed but those a [`ServerProcess::wait_for`] took.
    pub fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let term = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        assert!(term.unwrap().success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the server exited with {status}");
        let mut lines = std::mem::take(&mut self.early);
        // The reader ends, and the channel with it, once stderr closes.
        lines.extend(self.lines.iter());
        lines
    }

    /// The first log line from now on that contains `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("the server never logged {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }
}
