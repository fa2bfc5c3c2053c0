//! A real three-node Garage cluster on loopback for the S3 tests, started
//! by `tests/garage/cluster.sh` (Garage itself installed, when missing, by
//! `tests/garage/ensure-garage.sh`), and stopped when dropped.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster: its folder, and what `cluster.sh` wrote in its `env`.
pub struct GarageCluster {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/garage").join(name)
}

fn run(args: &[&str]) -> String {
    let out = Command::new("bash")
        .args(args)
        // The cluster goes when this test process does, even if it dies
        // before the cluster is dropped.
        .env("GARAGE_CLUSTER_OWNER_PID", std::process::id().to_string())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl GarageCluster {
    /// Install Garage if needed, start three nodes, lay out the cluster
    /// and create the bucket and a key. Blocking (seconds).
    pub fn start() -> Self {
        run(&[script("ensure-garage.sh").to_str().unwrap()]);
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = GarageCluster {
            dir,
            env: HashMap::new(),
        };
        run(&[script("cluster.sh").to_str().unwrap(), "start", cluster.path()]);
        cluster.read_env();
        cluster
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn read_env(&mut self) {
        let text = std::fs::read_to_string(self.dir.path().join("env")).unwrap();
        self.env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
    }

    /// A value `cluster.sh` wrote (S3_ENDPOINT, S3_BUCKET, ...).
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not in the cluster's env"))
    }

    /// The file holding the bucket's key.
    pub fn credentials_file(&self) -> PathBuf {
        self.dir.path().join("credentials.toml")
    }

    /// Vault settings that keep chunks in this cluster's bucket, through
    /// node 1's S3 API.
    pub fn settings(&self) -> custos::config::Settings {
        custos::config::Settings {
            storage: custos::config::StorageKind::S3,
            s3_endpoint: Some(self.var("S3_ENDPOINT").to_owned()),
            s3_bucket: Some(self.var("S3_BUCKET").to_owned()),
            s3_region: Some(self.var("S3_REGION").to_owned()),
            s3_credentials_file: Some(self.credentials_file()),
            ..Default::default()
        }
    }

    /// The same settings as `custos serve` flags.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--storage".into(),
            "s3".into(),
            "--s3-endpoint".into(),
            self.var("S3_ENDPOINT").into(),
            "--s3-bucket".into(),
            self.var("S3_BUCKET").into(),
            "--s3-region".into(),
            self.var("S3_REGION").into(),
            "--s3-credentials-file".into(),
            self.credentials_file().display().to_string(),
        ]
    }

    /// SIGKILL node `n` (1 to 3), as a crash or a lost site would.
    pub fn kill(&mut self, n: u8) {
        run(&[
            script("cluster.sh").to_str().unwrap(),
            "kill",
            self.path(),
            &n.to_string(),
        ]);
    }

    /// Start node `n` again and wait until the cluster sees it.
    pub fn restart(&mut self, n: u8) {
        run(&[
            script("cluster.sh").to_str().unwrap(),
            "restart",
            self.path(),
            &n.to_string(),
        ]);
        self.read_env();
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([script("cluster.sh").to_str().unwrap(), "stop", self.path()])
            .status();
    }
}
