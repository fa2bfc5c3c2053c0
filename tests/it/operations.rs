//! Running a vault for real: health checks, metrics that name no case,
//! person or key, a SIGTERM that finishes the upload in flight and takes no
//! new work, and `custos config check` over the file, the environment and
//! the flags.

use crate::util;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use custos::client::{Client, RequestParts};
use reqwest::Method;
use util::TestVault;

const BIN: &str = env!("CARGO_BIN_EXE_custos");

/// GET `url`; the status and the body.
async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Every label value in a Prometheus text exposition, as (name, value).
fn label_values(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, rest)) = line.split_once('{') else {
            continue;
        };
        let labels = rest.split_once('}').expect("labels close").0;
        for pair in labels.split("\",") {
            let (name, value) = pair.split_once("=\"").expect("name=\"value\"");
            out.push((name.to_owned(), value.trim_end_matches('"').to_owned()));
        }
    }
    out
}

/// The longest run of hex digits in `s`.
fn longest_hex_run(s: &str) -> usize {
    s.split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn metrics_count_the_work_and_name_no_case_person_or_key() {
    let v = TestVault::start().await;
    let state = v.state.clone().unwrap();
    let (listener, maddr) = custos::api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(custos::api::serve_metrics(
        state.clone(),
        listener,
        std::future::pending(),
    ));
    let metrics_url = format!("http://{maddr}");

    // Real work: a submission with a file, the lawyer reading it, a probe
    // of a path that names the case but matches no route.
    let evidence = util::bytes(8, 300_000);
    let sub = v.submit(b"what happened", &[("photo.jpg", evidence)]).await;
    let out = v.tmp.path().join("got");
    custos::client::flows::get_case(&v.client(), &v.lawyer, &v.log, &sub.case_id, &out)
        .await
        .unwrap();
    let (probe, _) = get(&format!("{}/v1/nothing/{}", v.url, sub.case_id)).await;
    assert_eq!(probe, 404);

    let (status, text) = get(&format!("{metrics_url}/metrics")).await;
    assert_eq!(status, 200);

    // What it must count.
    let count = |needle: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        count("custos_http_requests_total{route=\"/v1/cases\",method=\"POST\",status=\"201\"}"),
        1
    );
    assert!(
        count(
            "custos_http_requests_total{route=\"/v1/cases/{case}/uploads/{upload}\",method=\"PATCH\",status=\"204\"}"
        ) >= 2
    );
    assert!(
        count("custos_http_requests_total{route=\"/v1/cases/{case}/objects/{object}\",method=\"GET\",status=\"200\"}")
            >= 2
    );
    assert_eq!(
        count("custos_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"),
        1
    );
    assert!(count("custos_upload_bytes_total") > 300_000);
    // The CLI pays with SHA-256 tries (v1); the page, with PBKDF2 (v2).
    assert_eq!(count("custos_stamps_total{kind=\"v1\"}"), 1);
    assert_eq!(count("custos_log_entries"), state.vault.store.log_size().unwrap());
    assert!(count("custos_flush_seconds_count") > 0);
    assert!(count("custos_flushes_total") > 0);

    // What it must never show: the case, the codename, any key id, any
    // object; and no label value that could hold one.
    let submitter = sub.codename.derive(util::ORIGIN).key_id().to_string();
    let mut secret = vec![
        sub.case_id.clone(),
        sub.codename.expose().to_owned(),
        submitter,
        v.admin.key_id().to_string(),
        v.lawyer.key_id().to_string(),
        v.auditor.key_id().to_string(),
    ];
    for r in &sub.receipt.receipts {
        let event = custos::client::flows::check_receipt(r, &v.log, custos::custody::Action::CaseCreated)
            .or_else(|_| custos::client::flows::check_receipt(r, &v.log, custos::custody::Action::ObjectStored));
        if let Ok(event) = event {
            secret.extend(event.objects.clone());
        }
    }
    assert!(secret.len() > 6, "the receipts name the stored objects");
    for s in &secret {
        assert!(!text.contains(s.as_str()), "/metrics shows {s:?}:\n{text}");
    }
    let labels = label_values(&text);
    assert!(labels.len() > 20, "{text}");
    for (name, value) in labels {
        let fine = match name.as_str() {
            "route" => value == "unmatched" || (value.starts_with('/') && longest_hex_run(&value) < 8),
            "method" => ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "other"].contains(&value.as_str()),
            "status" => value.len() == 3 && value.bytes().all(|b| b.is_ascii_digit()),
            "le" => value == "+Inf" || value.parse::<f64>().is_ok(),
            "kind" => ["v1", "v2"].contains(&value.as_str()),
            _ => false,
        };
        assert!(fine, "label {name}={value:?} could carry something it must not");
    }

    // Metrics are not on the public address; health checks are on both.
    assert_eq!(get(&format!("{}/metrics", v.url)).await.0, 404);
    for base in [&v.url, &metrics_url] {
        let (s, body) = get(&format!("{base}/healthz")).await;
        assert_eq!((s, body.as_str()), (200, "{\"status\":\"ok\"}"));
        let (s, body) = get(&format!("{base}/readyz")).await;
        assert_eq!(s, 200, "{body}");
        assert!(body.contains("\"ready\""), "{body}");
    }

    // A stopping server: not ready, refuses new work with a precise code,
    // still says it is alive.
    state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    let resp = reqwest::get(format!("{}/v1/log/checkpoint", v.url)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["custos-error"], "shutting_down");
    assert_eq!(resp.headers()["connection"], "close");
    assert_eq!(get(&format!("{}/readyz", v.url)).await.0, 503);
    assert_eq!(get(&format!("{}/healthz", v.url)).await.0, 200);
    state.draining.store(false, std::sync::atomic::Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_upload_in_flight_and_takes_no_new_work() {
    let mut v = TestVault::start().await;
    let sub = v.submit(b"statement", &[]).await;
    v.stop().await;
    let server = util::ServerProcess::start(&v.data_dir(), &["--shutdown-grace-secs", "20"]);
    let url = server.url.clone();
    let client = Client::new(&url).unwrap();
    let lawyer = v.lawyer.signing_key().clone();
    let key = &lawyer;

    const LEN: usize = 1024 * 1024;
    let data = util::bytes(21, LEN);
    let upload = client.create_upload(key, &sub.case_id, LEN as u64).await.unwrap();

    // A PATCH whose body is half sent when the signal arrives.
    let sha = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&data))
    };
    let covered = vec![("upload-offset", "0".to_owned())];
    let parts = RequestParts {
        headers: covered.clone(),
        covered: vec!["upload-offset"],
        body: Some(data.clone()),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut head = format!("PATCH {upload} HTTP/1.1\r\nhost: {}\r\n", server.addr);
    for (n, val) in Client::signature_headers(key, &Method::PATCH, &format!("{url}{upload}"), &parts, now)
        .into_iter()
        .chain(covered)
    {
        head.push_str(&format!("{n}: {val}\r\n"));
    }
    head.push_str(&format!(
        "tus-resumable: 1.0.0\r\nupload-checksum: sha256 {sha}\r\n\
         content-type: application/offset+octet-stream\r\ncontent-length: {LEN}\r\n\r\n"
    ));
    let mut conn = std::net::TcpStream::connect(&server.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&data[..LEN / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    server.wait_for("stopping: refusing new requests");

    // New connections are refused once the listener is closed.
    let started = Instant::now();
    loop {
        match std::net::TcpStream::connect(&server.addr) {
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
                break;
            }
            Ok(_) if started.elapsed() < Duration::from_secs(5) => std::thread::sleep(Duration::from_millis(20)),
            Ok(_) => panic!("a stopping server still accepts connections after 5 s"),
        }
    }

    // The upload in flight is finished and acknowledged.
    conn.write_all(&data[LEN / 2..]).unwrap();
    let mut answer = Vec::new();
    let mut piece = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut piece).unwrap();
        assert!(n > 0, "the server closed the upload in flight");
        answer.extend_from_slice(&piece[..n]);
    }
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 204"), "{answer}");
    assert!(answer.contains(&format!("upload-offset: {LEN}\r\n")), "{answer}");
    drop(conn);

    // And the process ends cleanly, well inside the grace period.
    let mut server = server;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    server.wait_for("custos stopped");

    // What was acknowledged is there after a restart.
    v.serve().await;
    assert_eq!(v.client().upload_offset(key, &upload).await.unwrap(), LEN as u64);
}

fn custos(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.args(args);
    for (_, var) in custos::config::KEYS {
        c.env_remove(var);
    }
    c.env_remove("CUSTOS_DATA");
    for (n, val) in env {
        c.env(n, val);
    }
    c.output().unwrap()
}

#[test]
fn config_check_layers_the_file_the_environment_and_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    std::fs::write(
        dir.path().join("custos.toml"),
        "listen = \"127.0.0.1:9001\"\nstamp_bits = 12\nlog = \"debug\"\nmax_upload_bytes = 1000000\n",
    )
    .unwrap();
    let out = custos(
        &["--json", "config", "check", "--data", data, "--stamp-bits", "16"],
        &[
            ("CUSTOS_LOG", "warn"),
            ("CUSTOS_PUBLIC_URL", "https://vault.example.org"),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["settings"];
    assert_eq!(s["listen"], "127.0.0.1:9001");
    assert_eq!(v["sources"]["listen"], "file");
    assert_eq!(
        (&s["stamp_bits"], &v["sources"]["stamp_bits"]),
        (&16.into(), &"flag".into())
    );
    assert_eq!((&s["log"], &v["sources"]["log"]), (&"warn".into(), &"env".into()));
    assert_eq!(s["public_url"][0], "https://vault.example.org");
    assert_eq!(s["max_upload_bytes"], 1_000_000);
    assert_eq!(v["sources"]["shutdown_grace_secs"], "default");

    // Human output is the file format, each value with its source.
    let out = custos(&["config", "check", "--data", data], &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("stamp_bits = 12    # custos.toml"), "{text}");
    assert!(text.contains("shutdown_grace_secs = 30    # default"), "{text}");

    // A misspelt key or a bad value stops it, and names the culprit.
    std::fs::write(dir.path().join("custos.toml"), "stamp_bit = 12\n").unwrap();
    let out = custos(&["config", "check", "--data", data], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("custos.toml") && err.contains("stamp_bit"), "{err}");
    std::fs::remove_file(dir.path().join("custos.toml")).unwrap();
    let out = custos(&["config", "check", "--data", data], &[("CUSTOS_LISTEN", "somewhere")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen (from environment)"), "{err}");

    // serve refuses to start on a bad setting, before it opens anything.
    let out = custos(&["serve", "--data", data], &[("CUSTOS_STAMP_BITS", "60")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stamp_bits"));

    // The example the deployment guide gives is valid as it stands.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/custos.toml.example");
    std::fs::copy(&example, dir.path().join("custos.toml")).unwrap();
    let out = custos(&["--json", "config", "check", "--data", data], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sources"]["public_url"], "file", "the example sets the public URLs");
}
