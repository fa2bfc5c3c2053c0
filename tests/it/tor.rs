//! The CLI over a SOCKS5 proxy, as over Tor: a real proxy (Debian's
//! microsocks, installed by tests/tor/ensure-tools.sh and started here)
//! between the `custos` binary and the vault. The proxy's own connections
//! leave from 127.0.0.2 (`-b`), and the vault sits behind a relay that
//! notes where each connection came from, so a test can tell whether the
//! CLI went through the proxy or around it. An onion address without a
//! proxy is refused before any lookup or connection, watched by strace.

use crate::proxy::CutProxy;
use crate::util::{self, TestVault};
use crate::web::{cli, file_of, lawyer_file};

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_custos");

/// Where the proxy's connections to the vault come from.
const PROXY_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A 56-character v3 onion address (any such name; nothing is reached).
const ONION: &str = "http://custosvaultaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion";

/// Install the tools once per run; microsocks's path.
fn microsocks() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tor/ensure-tools.sh");
        let out = Command::new("bash").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "tests/tor/ensure-tools.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// A running microsocks on loopback; stopped when dropped.
struct Socks {
    child: Child,
    url: String,
}

impl Socks {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(microsocks())
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-b",
                &PROXY_SOURCE.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut socks = Socks {
            child,
            url: format!("socks5h://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return socks;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = socks.child.kill();
        let _ = socks.child.wait();
        panic!("microsocks did not start on port {port}");
    }
}

impl Drop for Socks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A vault reached only at a relay's address (the vault signs for it),
/// the relay cutting once `cut_at` bytes went through it.
async fn vault_behind_relay(cut_at: u64) -> (TestVault, CutProxy) {
    vault_behind(CutProxy::ahead(cut_at).await).await
}

/// A vault reached only at `relay`'s address.
async fn vault_behind(relay: CutProxy) -> (TestVault, CutProxy) {
    let mut v = TestVault::start().await;
    v.stop().await;
    v.settings.public_urls = vec![relay.url.clone()];
    v.serve().await;
    relay.forward_to(v.url.trim_start_matches("http://"));
    v.url = relay.url.clone();
    (v, relay)
}

/// `custos submit` of a statement and `evidence` (as `name`) through
/// `socks`; its JSON.
fn submit_through(v: &TestVault, socks: &Socks, name: &str, evidence: &[u8]) -> serde_json::Value {
    let statement = v.file("statement.txt", b"Taken from home at night; beaten in the car.");
    let file = v.file(name, evidence);
    let receipt = v.tmp.path().join(format!("receipt-{name}.json"));
    cli(
        v,
        &[("CUSTOS_PROXY", socks.url.as_str())],
        &[
            "submit",
            "--statement",
            statement.to_str().unwrap(),
            "--evidence",
            file.to_str().unwrap(),
            "--receipt",
            receipt.to_str().unwrap(),
        ],
    )
}

/// The lawyer's `custos get` of `case` through `socks`; the evidence
/// file `name` it decrypted.
fn get_through(v: &TestVault, socks: &Socks, case: &str, name: &str) -> Vec<u8> {
    let lawyer = lawyer_file(v);
    let out = v.tmp.path().join(format!("got-{case}"));
    let env = [("CUSTOS_PROXY", socks.url.as_str())];
    let id = ["--identity", lawyer.to_str().unwrap()];
    let got = cli(
        v,
        &env,
        &[&id[..], &["get", case, "--out", out.to_str().unwrap()]].concat(),
    );
    file_of(&got, "evidence", name)
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_get_audit_and_export_go_through_the_proxy_and_never_around_it() {
    let (v, relay) = vault_behind_relay(u64::MAX).await;
    let socks = Socks::start();
    let env = [("CUSTOS_PROXY", socks.url.as_str())];
    let evidence = util::bytes(31, 6_000_000);
    let sent = submit_through(&v, &socks, "photo.bin", &evidence);
    let case = sent["case_id"].as_str().unwrap();

    assert_eq!(get_through(&v, &socks, case, "photo.bin"), evidence);
    let lawyer = lawyer_file(&v);

    let auditor = v.tmp.path().join("auditor.identity");
    v.auditor.save(&auditor, None).unwrap();
    let state = v.tmp.path().join("audit-state.json");
    cli(
        &v,
        &env,
        &[
            "--identity",
            auditor.to_str().unwrap(),
            "audit",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    let bundle = v.tmp.path().join("bundle");
    cli(
        &v,
        &env,
        &[
            "--identity",
            auditor.to_str().unwrap(),
            "export",
            case,
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    // The bundle came whole through the proxy: it verifies offline.
    let verified = cli(&v, &[], &["verify", bundle.to_str().unwrap(), "--vkey", &v.log.vkey()]);
    assert_eq!(
        (&verified["passed"], &verified["case_id"]),
        (&true.into(), &case.into()),
        "{verified}"
    );

    // Every connection the vault's address saw came from the proxy.
    let peers = relay.peers();
    assert!(peers.len() >= 4, "{peers:?}");
    assert!(
        peers.iter().all(|p| *p == PROXY_SOURCE),
        "some went around the proxy: {peers:?}"
    );

    // The same command without the proxy reaches the vault directly: the
    // relay can tell the two apart.
    cli(&v, &[], &["--identity", lawyer.to_str().unwrap(), "cases"]);
    assert_eq!(relay.peers().last(), Some(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
}

/// A proxy that cuts the connection in the middle of an upload: the run
/// waits, asks the vault where the upload stands and sends the rest, and
/// the case arrives whole from one `custos submit`.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_cut_through_the_proxy_resumes_in_the_same_run() {
    const SIZE: usize = 12 * 1024 * 1024;
    let (v, relay) = vault_behind_relay(5 * 1024 * 1024).await;
    let socks = Socks::start();
    let evidence = util::bytes(32, SIZE);
    let sent = submit_through(&v, &socks, "video.bin", &evidence);
    assert!(relay.was_cut(), "the connection was cut during the upload");
    let after: Vec<u64> = relay.offsets().iter().filter(|(_, a)| *a).map(|(o, _)| *o).collect();
    assert!(
        !after.is_empty() && after.iter().all(|&o| o > 0),
        "after the cut the upload went on from the vault's offset, never from 0: {:?}",
        relay.offsets()
    );
    assert!(relay.peers().iter().all(|p| *p == PROXY_SOURCE));
    assert_eq!(
        get_through(&v, &socks, sent["case_id"].as_str().unwrap(), "video.bin"),
        evidence
    );
}

/// A proxy that cuts the connection in the middle of a download: `custos
/// get` waits, asks again from the byte it stopped at (checking that
/// access's receipt too) and decrypts the whole file, in one run.
#[tokio::test(flavor = "multi_thread")]
async fn a_download_cut_through_the_proxy_resumes_in_the_same_run() {
    const SIZE: usize = 12 * 1024 * 1024;
    let (v, relay) = vault_behind(CutProxy::ahead_cutting(u64::MAX, 5 * 1024 * 1024).await).await;
    let socks = Socks::start();
    let evidence = util::bytes(33, SIZE);
    // Sent directly: only the download goes through the proxy and the cut.
    let sent = v.submit(b"statement", &[("video.bin", evidence.clone())]).await;
    assert!(!relay.was_cut());
    assert_eq!(get_through(&v, &socks, &sent.case_id, "video.bin"), evidence);
    assert!(relay.was_cut(), "the connection was cut during the download");
    assert!(
        relay.received() < SIZE as u64 * 2,
        "the download went on, not over again"
    );
}

/// The network system calls and file opens `custos ARGS` makes, as
/// strace sees them (`-f`: every thread), with its exit status and stderr.
fn traced(dir: &Path, args: &[&str]) -> (bool, String, String) {
    microsocks();
    let trace = dir.join(format!("trace-{}", args.len()));
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=network,openat", "-o"])
        .arg(&trace)
        .arg(BIN)
        .args(args)
        .env("CUSTOS_CONFIG_DIR", dir.join("config"))
        .env_remove("CUSTOS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        std::fs::read_to_string(&trace).unwrap(),
    )
}

#[test]
fn an_onion_address_without_a_proxy_is_refused_before_any_lookup_or_connection() {
    let dir = tempfile::tempdir().unwrap();
    let statement = dir.path().join("statement.txt");
    std::fs::write(&statement, "what happened").unwrap();
    let (ok, said, trace) = traced(
        dir.path(),
        &["--server", ONION, "submit", "--statement", statement.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(
        said.contains("onion address") && said.contains("socks5h://127.0.0.1:9050"),
        "{said}"
    );
    for call in ["socket(", "connect(", "sendto(", "sendmsg("] {
        assert!(!trace.contains(call), "{call} made:\n{trace}");
    }
    // The same watch sees a connection where one is made: a vault at a
    // loopback port where nothing listens.
    let (ok, _, trace) = traced(
        dir.path(),
        &[
            "--server",
            "http://127.0.0.1:9",
            "submit",
            "--statement",
            statement.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(trace.contains("connect("), "{trace}");
}

/// Through socks5h the proxy resolves the vault's name: custos itself
/// reads no resolver file and connects to the proxy alone.
#[tokio::test(flavor = "multi_thread")]
async fn the_vaults_name_goes_to_the_proxy_unresolved() {
    let (_v, relay) = vault_behind_relay(u64::MAX).await;
    let socks = Socks::start();
    let by_name = relay.url.replace("127.0.0.1", "localhost");
    let proxy_port = socks.url.rsplit(':').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (ok, said, trace) = tokio::task::spawn_blocking(move || {
        let args = ["--proxy", &socks.url, "--server", &by_name, "log", "checkpoint"];
        traced(dir.path(), &args)
    })
    .await
    .unwrap();
    assert!(ok, "{said}");
    for file in ["/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf"] {
        assert!(!trace.contains(file), "custos read {file}:\n{trace}");
    }
    let connects: Vec<&str> = trace.lines().filter(|l| l.contains("connect(")).collect();
    assert!(!connects.is_empty(), "{trace}");
    let to_proxy = format!("htons({proxy_port})");
    assert!(connects.iter().all(|l| l.contains(&to_proxy)), "{connects:#?}");
    let peers = relay.peers();
    assert!(
        !peers.is_empty() && peers.iter().all(|p| *p == PROXY_SOURCE),
        "{peers:?}"
    );
}

#[test]
fn a_proxy_that_would_look_names_up_locally_is_refused() {
    let out = Command::new(BIN)
        .args([
            "--server",
            ONION,
            "--proxy",
            "socks5://127.0.0.1:9050",
            "log",
            "checkpoint",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("use socks5h://"), "{said}");
}
