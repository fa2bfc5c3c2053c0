//! Browser-test helpers: Debian's headless Chromium driven through
//! ChromeDriver's W3C WebDriver endpoints (plain JSON over HTTP, so the only
//! client needed is reqwest).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Install Chromium and ChromeDriver with the project's script if they are
/// missing (once per test binary), or fail saying what to run.
pub fn ensure_chromium() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/ensure-chromium.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} could not install Chromium: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// A ChromeDriver process, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// End the WebDriver session at `session` (`http://127.0.0.1:PORT/session/ID`)
/// so that ChromeDriver quits its Chromium: killing ChromeDriver alone
/// leaves Chromium and its helpers running, one set per test, for as long
/// as the machine runs. Plain HTTP on a std socket, as `Drop` cannot wait
/// on the async client.
fn end_session(session: &str) {
    use std::io::{Read, Write};
    let Some(rest) = session.strip_prefix("http://") else {
        return;
    };
    let Some((addr, path)) = rest.split_once('/') else {
        return;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let request = format!("DELETE /{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        end_session(&self.session);
    }
}

/// One headless Chromium session.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
    _driver: Driver,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Start ChromeDriver and a headless Chromium with a fresh profile.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// The same, with extra Chromium flags.
    pub async fn start_with(extra: &[&str]) -> Self {
        ensure_chromium();
        let port = free_port();
        let driver = Driver(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        // The flags keep Chromium off the network it has no business with
        // (updates, sync, safe browsing): this machine's network is closed.
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let args: Vec<String> = args.into_iter().chain(extra.iter().map(|a| (*a).to_owned())).collect();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {resp}"))
            .to_owned();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            _profile: profile,
            _driver: driver,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut rb = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp: Value = rb.send().await.unwrap().json().await.unwrap();
        if let Some(err) = resp["value"].get("error") {
            panic!("WebDriver {path}: {err}: {}", resp["value"]["message"]);
        }
        resp["value"].clone()
    }

    /// The browser's profile folder (its cache, cookies and storage).
    pub fn profile(&self) -> &Path {
        self._profile.path()
    }

    /// The browser console's messages since the last call.
    pub async fn console(&self) -> Value {
        self.call(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"})))
            .await
    }

    /// Open a URL.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Run a script in the page and return its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    /// Type into an element (for a file input: the file's path).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Click an element.
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({})))
            .await;
    }

    /// An element's visible text.
    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Wait until `script` returns true, failing early with the page's error
    /// text if one of the page's error boxes shows.
    pub async fn wait_for(&self, script: &str, what: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.eval(script).await == Value::Bool(true) {
                return;
            }
            let err = self
                .eval(
                    "return [...document.querySelectorAll('.error')].filter(e => !e.hidden).map(e => e.textContent).join(' ')",
                )
                .await;
            assert_eq!(
                err.as_str(),
                Some(""),
                "the page shows an error while waiting for {what}"
            );
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Send a Chrome DevTools Protocol command.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await
    }

    /// Let downloads land in `dir`.
    pub async fn download_to(&self, dir: &Path) {
        self.cdp(
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": dir.to_str().unwrap()}),
        )
        .await;
    }

    /// The bytes of the download that lands in `dir` as `name`, once
    /// Chromium has finished it. Chromium first reserves the name with an
    /// empty file and writes into a `.crdownload` beside it, then renames
    /// that over the name: the name existing says nothing yet.
    pub async fn downloaded(&self, dir: &Path, name: &str) -> Vec<u8> {
        let path = dir.join(name);
        for _ in 0..200 {
            let busy = std::fs::read_dir(dir)
                .unwrap()
                .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".crdownload"));
            match std::fs::read(&path) {
                Ok(bytes) if !bytes.is_empty() && !busy => return bytes,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("{name} was not downloaded whole within 20 s");
    }

    /// A screenshot of the whole page as it lays out at `width` CSS pixels
    /// (a phone at 360, a laptop at 1280), written to `path`.
    pub async fn screenshot(&self, width: u32, path: &Path) {
        self.capture(width, path, true).await;
    }

    /// What one screen shows at `width` CSS pixels (900 high): for the
    /// README, where a whole long page would be a strip.
    pub async fn screenshot_screen(&self, width: u32, path: &Path) {
        self.capture(width, path, false).await;
    }

    async fn capture(&self, width: u32, path: &Path, whole_page: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}),
        )
        .await;
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": whole_page}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({})).await;
    }
}

/// Where screenshots go: under the target folder, never committed.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("web-screenshots")
}
