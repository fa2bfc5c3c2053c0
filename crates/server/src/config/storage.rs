//! The chunk storage settings: where ciphertext chunks over 64 KiB go
//! (`local` files in the data directory, or an `s3` bucket), the bucket's
//! address and the file holding its key; and, at start, the bucket's
//! location for the store (`S3Location`), its key read from that file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use super::values::Printed;
use crate::secret_file::SecretFileError;
use crate::store::{ChunkBackend, S3Location};

/// Where chunks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageKind {
    /// Files under the data directory.
    #[default]
    Local,
    /// An S3 bucket (a Garage cluster, or any S3 service).
    S3,
}

impl std::str::FromStr for StorageKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "local" => Ok(StorageKind::Local),
            "s3" => Ok(StorageKind::S3),
            other => Err(format!("{other:?} is not local or s3")),
        }
    }
}

impl Printed for StorageKind {
    fn printed(&self) -> Option<toml::Value> {
        Some(toml::Value::String(
            match self {
                StorageKind::Local => "local",
                StorageKind::S3 => "s3",
            }
            .into(),
        ))
    }
}

/// The S3 API's URL: http(s), a host, no path, query or user. Plain
/// http:// only to this machine or an address of a private network (a
/// WireGuard mesh between the sites): requests are signed, not encrypted,
/// and a signed request seen on the way could be sent again for minutes
/// (a DELETE of a chunk stored again since, say).
pub(super) fn endpoint(url: String) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/').to_owned();
    let (plain, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return Err("must start with https:// (or http:// in a private network)".into()),
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) || rest.contains(char::is_whitespace) {
        return Err(format!(
            "{url:?} must be scheme://host[:port] with no path, query or user"
        ));
    }
    if plain && !is_private_host(rest) {
        return Err(format!(
            "{url:?}: plain http:// only to this machine or a private network address (10.x, 172.16-31.x, \
             192.168.x, 100.64-127.x, fc00::/7, as in a WireGuard mesh); use https://"
        ));
    }
    Ok(url)
}

/// Whether `authority` (host[:port]) is this machine or an IP address of
/// a private network.
fn is_private_host(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if super::mail::is_loopback_host(host) {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            let [a, b, ..] = ip.octets();
            ip.is_private() || (a == 100 && (64..128).contains(&b))
        }
        Ok(std::net::IpAddr::V6(ip)) => (ip.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => false,
    }
}

/// An S3 bucket name: 3 to 63 lower-case letters, digits, dots and dashes.
pub(super) fn bucket(name: String) -> Result<String, String> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !ok {
        return Err(format!(
            "{name:?} is not an S3 bucket name (3 to 63 of a-z, 0-9, . and -)"
        ));
    }
    Ok(name)
}

/// A region name: not empty, no white space.
pub(super) fn region(name: String) -> Result<String, String> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("{name:?} is not a region name"));
    }
    Ok(name)
}

/// A file's path: not empty.
pub(super) fn file_path(path: String) -> Result<PathBuf, String> {
    if path.trim().is_empty() {
        return Err("is empty".into());
    }
    Ok(PathBuf::from(path))
}

/// The check across the storage keys: `storage = "s3"` needs all four of
/// its settings; which one is missing.
pub(super) fn check(s: &super::Settings) -> Result<(), (&'static str, String)> {
    if s.storage != StorageKind::S3 {
        return Ok(());
    }
    let missing = [
        ("s3_endpoint", s.s3_endpoint.is_none()),
        ("s3_bucket", s.s3_bucket.is_none()),
        ("s3_region", s.s3_region.is_none()),
        ("s3_credentials_file", s.s3_credentials_file.is_none()),
    ];
    match missing.iter().find(|(_, absent)| *absent) {
        Some((key, _)) => Err((key, "must be set when storage = \"s3\"".into())),
        None => Ok(()),
    }
}

/// The bucket's access key, as its file holds it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct S3Credentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
}

/// Read the S3 credentials file: `access_key_id = "..."` and
/// `secret_access_key = "..."`, readable by its owner only.
fn read_credentials(path: &Path) -> Result<S3Credentials, SecretFileError> {
    crate::secret_file::read(
        "s3_credentials_file",
        path,
        "access_key_id = \"...\" and secret_access_key = \"...\"",
        |c: &S3Credentials| !c.access_key_id.is_empty() && !c.secret_access_key.is_empty(),
    )
}

impl super::Settings {
    /// Where the store keeps its large chunks, by these settings; with
    /// S3, the credentials file is read now (the only time).
    pub fn chunk_backend(&self) -> Result<ChunkBackend, SecretFileError> {
        let (StorageKind::S3, Some(endpoint), Some(bucket), Some(region), Some(file)) = (
            self.storage,
            &self.s3_endpoint,
            &self.s3_bucket,
            &self.s3_region,
            &self.s3_credentials_file,
        ) else {
            return Ok(ChunkBackend::Local);
        };
        let key = read_credentials(file)?;
        Ok(ChunkBackend::S3(S3Location {
            endpoint: endpoint.clone(),
            bucket: bucket.clone(),
            region: region.clone(),
            access_key_id: key.access_key_id,
            secret_access_key: key.secret_access_key,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_buckets_and_regions_are_checked() {
        assert_eq!(
            endpoint("http://127.0.0.1:3900/".into()).unwrap(),
            "http://127.0.0.1:3900"
        );
        assert_eq!(
            endpoint("https://s3.example.org".into()).unwrap(),
            "https://s3.example.org"
        );
        for bad in [
            "s3.example.org",
            "ftp://x",
            "https://",
            "https://a/b",
            "https://u:p@h",
            "https://h?x",
        ] {
            assert!(endpoint(bad.into()).is_err(), "{bad}");
        }
        for private in [
            "http://localhost:3900",
            "http://10.0.0.2:3900",
            "http://192.168.1.5",
            "http://[fd00::2]:3900",
        ] {
            assert!(endpoint(private.into()).is_ok(), "{private}");
        }
        for public in [
            "http://s3.example.org",
            "http://8.8.8.8:3900",
            "http://[2001:db8::1]:3900",
        ] {
            let e = endpoint(public.into()).unwrap_err();
            assert!(e.contains("use https://"), "{public}: {e}");
        }
        assert!(bucket("custos-chunks".into()).is_ok());
        for bad in ["ab", "Custos", "a_b", &"x".repeat(64)] {
            assert!(bucket(bad.into()).is_err(), "{bad}");
        }
        assert!(region("garage".into()).is_ok());
        assert!(region("".into()).is_err() && region("a b".into()).is_err());
    }

    #[test]
    fn s3_storage_needs_all_four_of_its_settings() {
        let file = |skip: &str| {
            let mut text = String::from("storage = \"s3\"\n");
            for (key, value) in [
                ("s3_endpoint", "http://127.0.0.1:3900"),
                ("s3_bucket", "custos-chunks"),
                ("s3_region", "garage"),
                ("s3_credentials_file", "/etc/custos/s3"),
            ] {
                if key != skip {
                    text.push_str(&format!("{key} = \"{value}\"\n"));
                }
            }
            super::super::Layer::from_toml("custos.toml", &text).unwrap()
        };
        let resolve = |layer| super::super::Settings::resolve(layer, Default::default(), Default::default());
        let (s, _) = resolve(file("none")).unwrap();
        assert_eq!(s.storage, StorageKind::S3);
        for key in ["s3_endpoint", "s3_bucket", "s3_region", "s3_credentials_file"] {
            let e = resolve(file(key)).unwrap_err();
            assert!(e.to_string().starts_with(key), "{key}: {e}");
        }
        let e = super::super::Layer::from_toml("custos.toml", "storage = \"ceph\"\n")
            .map(resolve)
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("not local or s3"), "{e}");
    }

    #[test]
    fn the_key_file_is_private_and_exact_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s3");
        std::fs::write(&path, "access_key_id = \"GK1\"\nsecret_access_key = \"hush-hush\"\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                read_credentials(&path),
                Err(SecretFileError::NotPrivate { .. })
            ));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let key = read_credentials(&path).unwrap();
        assert_eq!(
            (key.access_key_id.as_str(), key.secret_access_key.as_str()),
            ("GK1", "hush-hush")
        );
        let location = S3Location {
            endpoint: "http://127.0.0.1:1".into(),
            bucket: "b".into(),
            region: "r".into(),
            access_key_id: key.access_key_id,
            secret_access_key: key.secret_access_key,
        };
        assert!(!format!("{location:?}").contains("hush"));
        for bad in [
            "access_key_id = \"GK1\"\n",
            "access_key_id = \"GK1\"\nsecret_access_key = \"\"\n",
            "access_key_id = \"GK1\"\nsecret_access_key = \"s\"\nendpoint = \"x\"\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = read_credentials(&path).err().expect("refused");
            assert!(matches!(e, SecretFileError::Malformed { .. }), "{bad}: {e}");
        }
    }
}
