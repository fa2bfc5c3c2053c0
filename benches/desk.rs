//! The desk at scale: how long its inbox index takes to fill from a vault
//! of many cases (each case proven from the log), then how long the
//! inbox's first page and the page of a case with 50 files take, from
//! request to the whole HTML (over HTTP) and from navigation to the load
//! event (in headless Chromium, the same harness as the browser tests).
//!
//! Usage: `CUSTOS_SERVER=http://ADDR CUSTOS_IDENTITY=FILE cargo bench
//! --bench desk -- CASE` where FILE is a lawyer holding the vault's cases
//! (saved without a passphrase) and CASE a case with 50 files. Prints
//! lines beginning `desk `, which `bench/desk.sh` puts beside the CLI's
//! own times for the same work.

#[path = "../tests/it/browser.rs"]
mod browser;

use std::time::{Duration, Instant};

use custos::client::trust::TrustStore;
use custos::desk::{start, DeskOptions};
use custos::identity::Identity;

/// Timed requests per page, after one untimed.
const ROUNDS: usize = 20;
/// Timed Chromium loads per page.
const LOADS: usize = 5;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Milliseconds for each of `ROUNDS` GETs of `url`, whole body read,
/// sorted; the body of the last.
async fn http_times(http: &reqwest::Client, cookie: &str, url: &str) -> (Vec<f64>, String) {
    let mut times = Vec::new();
    let mut body = String::new();
    for round in 0..=ROUNDS {
        let t = Instant::now();
        let resp = http.get(url).header("cookie", cookie).send().await.expect("GET");
        assert_eq!(resp.status(), 200, "{url}");
        body = resp.text().await.expect("body");
        if round > 0 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    (times, body)
}

/// Median milliseconds from navigation start to the load event in
/// Chromium, over `LOADS` loads.
async fn chromium_ms(b: &browser::Browser, url: &str) -> f64 {
    let mut times = Vec::new();
    for _ in 0..LOADS {
        b.goto(url).await;
        let ms = b
            .eval("const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime")
            .await;
        times.push(ms.as_f64().expect("a time"));
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    let case = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .expect("CASE: a case with 50 files");
    let server = std::env::var("CUSTOS_SERVER").expect("CUSTOS_SERVER");
    let identity_path = std::path::PathBuf::from(std::env::var("CUSTOS_IDENTITY").expect("CUSTOS_IDENTITY"));
    let identity = Identity::load(&identity_path, || unreachable!("saved without a passphrase")).expect("identity");
    let trust = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    eprintln!("desk bench: starting the desk");
    let running = start(DeskOptions {
        server,
        proxy: None,
        identity_path,
        identity: Some(identity),
        listen: "127.0.0.1:0".parse().expect("addr"),
        trust: TrustStore::new(trust.path().to_path_buf()),
    })
    .await
    .expect("the desk starts");
    let origin = format!("http://{}", running.addr);
    eprintln!("desk bench: the desk listens; starting Chromium");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // The browser logs in with the one-time address; the HTTP client uses
    // the same session, read from the browser.
    let b = browser::Browser::start().await;
    b.goto(&running.url).await;
    // Pages live under the session's secret first path segment.
    let path = b.eval("return location.pathname").await;
    let secret = path
        .as_str()
        .expect("a path")
        .trim_start_matches('/')
        .split('/')
        .next()
        .expect("a segment")
        .to_owned();
    let origin = format!("{origin}/{secret}");
    let cookies = b.cdp("Network.getAllCookies", serde_json::json!({})).await;
    let c = &cookies["cookies"][0];
    let cookie = format!(
        "{}={}",
        c["name"].as_str().expect("name"),
        c["value"].as_str().expect("value")
    );

    // Wait for the index: the page stops saying it is filling.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let body = http
            .get(format!("{origin}/inbox"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("body");
        if !body.contains("class=\"progress\"") && body.contains("id=\"inbox-count\"") {
            let count = body
                .split("id=\"inbox-count\">")
                .nth(1)
                .and_then(|s| s.split('<').next())
                .unwrap_or("");
            println!(
                "desk index fill_s={:.2} shown=\"{count}\"",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(Instant::now() < deadline, "the inbox did not fill: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let inbox = format!("{origin}/inbox");
    let (t, body) = http_times(&http, &cookie, &inbox).await;
    assert_eq!(body.matches("<tr").count(), 51, "a page of 50 rows and the header");
    let chromium = chromium_ms(&b, &inbox).await;
    println!(
        "desk inbox http_p50_ms={:.2} http_p95_ms={:.2} chromium_load_ms={chromium:.1}",
        percentile(&t, 0.5),
        percentile(&t, 0.95)
    );
    let deep = format!("{origin}/inbox?sort=activity&page=150");
    let (t, _) = http_times(&http, &cookie, &deep).await;
    println!("desk inbox_page150_by_activity http_p50_ms={:.2}", percentile(&t, 0.5));
    let search = format!("{origin}/inbox?q={}", &case[..6]);
    let (t, _) = http_times(&http, &cookie, &search).await;
    println!("desk inbox_search http_p50_ms={:.2}", percentile(&t, 0.5));

    let page = format!("{origin}/cases/{case}");
    let t = Instant::now();
    let resp = http.get(&page).header("cookie", &cookie).send().await.expect("GET");
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.expect("body");
    let first = t.elapsed().as_secs_f64() * 1000.0;
    let files = body.matches("<li class=\"file\"").count();
    let (t, _) = http_times(&http, &cookie, &page).await;
    let chromium = chromium_ms(&b, &page).await;
    println!(
        "desk case files={files} first_ms={first:.1} http_p50_ms={:.2} http_p95_ms={:.2} chromium_load_ms={chromium:.1}",
        percentile(&t, 0.5),
        percentile(&t, 0.95)
    );
    running.stop().await;
}
