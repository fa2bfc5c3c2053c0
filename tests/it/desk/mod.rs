//! The desk (`custos desk`): the real binary, started against a real vault,
//! driven with plain HTTP (`security`) and in real Chromium (`lawyer`,
//! `roles`). `DeskProcess` runs the CLI with its home, config and temp
//! folders inside the test's own, so a test can look at every file the desk
//! could have written.

mod lawyer;
mod roles;
mod security;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::util::TestVault;
use custos::identity::Identity;

const BIN: &str = env!("CARGO_BIN_EXE_custos");

/// A running `custos desk`, killed when dropped.
pub struct DeskProcess {
    child: Child,
    /// The first URL, one-time token included.
    pub url: String,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    /// `http://127.0.0.1:PORT/SECRET`: where the pages are, once logged
    /// in (by a browser or a [`Session`]).
    base: std::sync::OnceLock<String>,
}

impl Drop for DeskProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DeskProcess {
    /// Start the desk as `identity` (saved without a passphrase) against
    /// the vault, with `home` as its HOME, XDG config and TMPDIR.
    pub fn start(v: &TestVault, identity: &Identity, home: &Path) -> DeskProcess {
        let file = home.join(format!("{}.identity", identity.key_id()));
        if !file.exists() {
            std::fs::create_dir_all(home).unwrap();
            identity.save(&file, None).unwrap();
        }
        Self::start_file(v, &file, home, &[])
    }

    /// Start the desk with an identity file and extra environment.
    pub fn start_file(v: &TestVault, file: &Path, home: &Path, env: &[(&str, &str)]) -> DeskProcess {
        for d in ["config", "tmp"] {
            std::fs::create_dir_all(home.join(d)).unwrap();
        }
        let mut child = Command::new(BIN)
            .args([
                "--server",
                &v.url,
                "--identity",
                file.to_str().unwrap(),
                "desk",
                "--no-open",
            ])
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("TMPDIR", home.join("tmp"))
            .env("CUSTOS_CONFIG_DIR", home.join("config").join("custos"))
            .env_remove("CUSTOS_PASSPHRASE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .strip_prefix("desk: ")
            .unwrap_or_else(|| panic!("the desk's first line is its address, got {line:?}"))
            .trim()
            .to_owned();
        let origin = url.split("/login").next().unwrap().to_owned();
        DeskProcess {
            child,
            url,
            origin,
            base: std::sync::OnceLock::new(),
        }
    }

    /// A page's address: the desk's, its session's secret segment, `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base.get().expect("logged in first"))
    }

    /// Where a login was sent (`/SECRET/`): the pages' base from now on.
    fn logged_in_at(&self, location: &str) {
        let secret = location.trim_start_matches('/').split('/').next().unwrap();
        let _ = self.base.set(format!("{}/{secret}", self.origin));
    }

    /// Log `b` in with the one-time address.
    pub async fn open_in(&self, b: &crate::browser::Browser) {
        b.goto(&self.url).await;
        let path = b.eval("return location.pathname").await;
        self.logged_in_at(path.as_str().unwrap());
    }
}

/// A session with the desk over plain HTTP: the cookie its one-time
/// address was exchanged for.
pub struct Session {
    pub http: reqwest::Client,
    pub cookie: String,
}

impl Session {
    /// Log in with the desk's one-time address.
    pub async fn start(desk: &DeskProcess) -> Session {
        let http = plain_client();
        let resp = http.get(&desk.url).send().await.unwrap();
        assert_eq!(resp.status(), 303, "the token is exchanged for a session");
        desk.logged_in_at(resp.headers()["location"].to_str().unwrap());
        let cookie = resp
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Session { http, cookie }
    }

    /// GET with the session's cookie.
    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).header("cookie", &self.cookie).send().await.unwrap()
    }

    /// POST a form with the session's cookie and `origin`.
    pub async fn post(&self, url: &str, origin: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(url)
            .header("cookie", &self.cookie)
            .header("origin", origin)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

/// A reqwest client that follows no redirects.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
