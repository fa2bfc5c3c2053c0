//! The whole HTTP API in-process, on a real vault in a temporary folder:
//! any method, path, query, headers and body, unsigned or signed by the
//! vault's admin or by a key it does not know, so that the parsers behind
//! authentication (tus headers, ranges, JSON bodies, ids in paths) are
//! reached too. No request may make the server panic or answer 5xx, and no
//! request whose target was made non-canonical (a query, an escape, a dot
//! or empty segment, a trailing slash) may reach the custody log.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use custos::api::{self, AppState};
use custos::client::{Client, RequestParts};
use custos::identity::Identity;
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const BASE: &str = "http://fuzz.example";

struct World {
    rt: tokio::runtime::Runtime,
    app: Router,
    state: Arc<AppState>,
    admin: SigningKey,
    stranger: SigningKey,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let admin = Identity::generate("Fuzz Admin").unwrap();
        let data = dir.path().join("data");
        rt.block_on(custos::vault::init(&data, "fuzz.example/log", &[admin.card()]))
            .unwrap();
        let settings = custos::config::Settings {
            public_urls: vec![BASE.into()],
            stamp_bits: 0,
            ..Default::default()
        };
        let state = Arc::new(AppState::new(custos::vault::open(&data).unwrap(), &settings));
        World {
            rt,
            app: api::router(state.clone()),
            state,
            admin: admin.signing_key().clone(),
            stranger: SigningKey::from_bytes(&[3; 32]),
            _dir: dir,
        }
    })
}

/// Header names the API reads; the fuzzer may also bring its own.
const NAMES: [&str; 16] = [
    "content-type",
    "tus-resumable",
    "upload-offset",
    "upload-length",
    "upload-checksum",
    "upload-metadata",
    "content-digest",
    "range",
    "custos-stamp",
    "signature",
    "signature-input",
    "accept-language",
    "host",
    "x-forwarded-proto",
    "content-length",
    "if-none-match",
];

/// Path shapes of the API's routes, with `{}` filled from the input.
const ROUTES: [&str; 19] = [
    "/v1/intake",
    "/v1/cases",
    "/v1/cases/{}",
    "/v1/cases/{}/uploads",
    "/v1/cases/{}/uploads/{}",
    "/v1/cases/{}/uploads/{}/commit",
    "/v1/cases/{}/objects/{}",
    "/v1/cases/{}/export",
    "/v1/cases/{}/withdraw",
    "/v1/cases/{}/export/objects/{}",
    "/v1/cases/{}/grants",
    "/v1/cases/{}/grants/{}",
    "/v1/principals",
    "/v1/principals/{}",
    "/v1/log/checkpoint",
    "/v1/log/entries",
    "/v1/log/inclusion",
    "/v1/log/consistency",
    "/v1/vault/backup",
];

#[derive(Arbitrary, Debug)]
struct Input {
    method: u8,
    route: u8,
    ids: Vec<String>,
    raw_path: Option<String>,
    query: Option<String>,
    headers: Vec<(u8, String)>,
    extra: Vec<(String, String)>,
    body: Vec<u8>,
    /// 0: unsigned; 1: the admin; 2: an unknown key.
    signer: u8,
    created_skew: i16,
    /// 0: the target as built; otherwise one way to make it non-canonical.
    mangle: u8,
}

const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::PUT,
];

fn path(input: &Input) -> String {
    if let Some(raw) = &input.raw_path {
        return raw.clone();
    }
    let mut ids = input.ids.iter();
    let shape = ROUTES[input.route as usize % ROUTES.len()];
    let mut out = String::new();
    for (i, part) in shape.split("{}").enumerate() {
        if i > 0 {
            out.push_str(ids.next().map(String::as_str).unwrap_or("0"));
        }
        out.push_str(part);
    }
    match &input.query {
        Some(q) => format!("{out}?{q}"),
        None => out,
    }
}

/// `path` made non-canonical in the `how`th way (0: left as it is), if
/// that way applies to it.
fn mangle(path: String, how: u8) -> Option<String> {
    let segment = path.rfind('/').map(|i| i + 1)?;
    Some(match how % 6 {
        0 => return None,
        1 if path.contains('?') => format!("{path}&x=1"),
        1 => format!("{path}?x=1"),
        2 => {
            let first = *path.as_bytes().get(segment).filter(|b| b.is_ascii_alphanumeric())?;
            format!("{}%{first:02X}{}", &path[..segment], &path[segment + 1..])
        }
        3 => path.replacen("/v1/", "/v1/./", 1),
        4 => path.replacen("/v1/", "/v1//", 1),
        _ => format!("{path}/"),
    })
}

fuzz_target!(|input: Input| {
    let w = world();
    let method = METHODS[input.method as usize % METHODS.len()].clone();
    let mangled = mangle(path(&input), input.mangle);
    let path = mangled.clone().unwrap_or_else(|| path(&input));
    let Ok(mut req) = Request::builder().method(method.clone()).uri(&path).body(()) else {
        return;
    };
    let headers = req.headers_mut();
    for (name, value) in &input.headers {
        if let Ok(v) = value.parse() {
            headers.append(NAMES[*name as usize % NAMES.len()], v);
        }
    }
    for (name, value) in &input.extra {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    let key = match input.signer % 3 {
        1 => Some(&w.admin),
        2 => Some(&w.stranger),
        _ => None,
    };
    if let Some(key) = key {
        let parts = RequestParts {
            body: Some(input.body.clone()),
            ..Default::default()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let url = format!("{BASE}{path}");
        for (n, v) in Client::signature_headers(key, &method, &url, &parts, now + input.created_skew as i64) {
            if let Ok(v) = v.parse() {
                headers.insert(n, v);
            }
        }
    }
    let (parts, ()) = req.into_parts();
    let req = Request::from_parts(parts, Body::from(input.body.clone()));
    let logged = w.state.vault.store.log_size().unwrap();
    w.rt.block_on(async {
        let resp = w.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await;
        let body = body.map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned());
        assert!(!status.is_server_error(), "{method} {path} answered {status}: {body:?}");
        // A request the router would read otherwise than it was signed
        // must never reach the custody log, where it would fail every audit.
        assert!(
            mangled.is_none() || w.state.vault.store.log_size().unwrap() == logged,
            "a non-canonical target was logged: {method} {path} answered {status}: {body:?}"
        );
    });
});
