//! Every way a request signature can be wrong is refused with its own code,
//! and none of the refused requests changes the log.

use crate::util;

use custos::client::{Client, RequestParts};
use custos::identity::Identity;
use reqwest::{Method, StatusCode};
use util::TestVault;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Send `method path` with the given headers and body, without any client
/// help, and return the status and error code.
async fn raw(
    url: &str,
    method: Method,
    path: &str,
    headers: &[(&'static str, String)],
    body: Option<Vec<u8>>,
) -> (StatusCode, String) {
    let mut rb = reqwest::Client::new().request(method, format!("{url}{path}"));
    for (n, v) in headers {
        rb = rb.header(*n, v);
    }
    if let Some(b) = body {
        rb = rb.body(b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

fn signed(
    key: &Identity,
    method: &Method,
    url: &str,
    body: Option<Vec<u8>>,
    created: i64,
) -> Vec<(&'static str, String)> {
    let parts = RequestParts {
        body,
        ..Default::default()
    };
    Client::signature_headers(key.signing_key(), method, url, &parts, created)
}

#[tokio::test]
async fn bad_signatures_are_refused_each_with_its_own_code() {
    let v = TestVault::start().await;
    let size_before = v.client().checkpoint().await.unwrap();
    let url = format!("{}/v1/cases", v.url);
    let get = Method::GET;

    // No signature at all.
    assert_eq!(
        raw(&v.url, get.clone(), "/v1/cases", &[], None).await,
        (StatusCode::UNAUTHORIZED, "signature_missing".into())
    );

    // Garbage in the headers.
    let garbage = [
        ("signature-input", "sig1=(\"@method\";created=oops".to_owned()),
        ("signature", "sig1=:AAAA:".to_owned()),
    ];
    assert_eq!(
        raw(&v.url, get.clone(), "/v1/cases", &garbage, None).await,
        (StatusCode::BAD_REQUEST, "signature_malformed".into())
    );

    // Stale: made ten minutes ago, long expired.
    let stale = signed(&v.lawyer, &get, &url, None, now() - 600);
    assert_eq!(
        raw(&v.url, get.clone(), "/v1/cases", &stale, None).await,
        (StatusCode::UNAUTHORIZED, "signature_expired".into())
    );

    // From the future, beyond the allowed clock skew.
    let future = signed(&v.lawyer, &get, &url, None, now() + 120);
    assert_eq!(
        raw(&v.url, get.clone(), "/v1/cases", &future, None).await,
        (StatusCode::UNAUTHORIZED, "signature_future".into())
    );

    // Replayed: the same signed request twice.
    let once = signed(&v.lawyer, &get, &url, None, now());
    assert_eq!(
        raw(&v.url, get.clone(), "/v1/cases", &once, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        raw(&v.url, get.clone(), "/v1/cases", &once, None).await,
        (StatusCode::UNAUTHORIZED, "signature_replayed".into())
    );

    // Unknown key.
    let stranger = Identity::generate("Stranger").unwrap();
    let unknown = signed(&stranger, &get, &url, None, now());
    assert_eq!(
        raw(&v.url, get.clone(), "/v1/cases", &unknown, None).await,
        (StatusCode::UNAUTHORIZED, "unknown_key".into())
    );

    // Altered target: signed for one endpoint, sent to another (a
    // cross-endpoint replay).
    let for_cases = signed(&v.lawyer, &get, &url, None, now());
    assert_eq!(
        raw(&v.url, get.clone(), "/v1/principals", &for_cases, None).await,
        (StatusCode::UNAUTHORIZED, "signature_invalid".into())
    );

    // Altered method.
    let mut for_get = signed(&v.admin, &get, &format!("{}/v1/principals", v.url), None, now());
    for_get.push(("content-type", "application/json".into()));
    let (status, code) = raw(&v.url, Method::POST, "/v1/principals", &for_get, Some(b"{}".to_vec())).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "signature_incomplete"),
        "a POST must cover its digest"
    );

    // Altered body: the digest no longer matches.
    let post = Method::POST;
    let purl = format!("{}/v1/principals", v.url);
    let card = Identity::generate("Intruder").unwrap().card();
    let good_body = serde_json::to_vec(&serde_json::json!({ "card": card, "role": "auditor" })).unwrap();
    let evil_body = serde_json::to_vec(&serde_json::json!({ "card": card, "role": "admin" })).unwrap();
    let mut headers = signed(&v.admin, &post, &purl, Some(good_body.clone()), now());
    headers.push(("content-type", "application/json".into()));
    assert_eq!(
        raw(
            &v.url,
            post.clone(),
            "/v1/principals",
            &headers,
            Some(evil_body.clone())
        )
        .await,
        (StatusCode::BAD_REQUEST, "digest_mismatch".into())
    );

    // Altered body with a recomputed digest header: the signature breaks.
    let forged: Vec<_> = headers
        .iter()
        .map(|(n, val)| {
            if *n == "content-digest" {
                (*n, custos::httpsig::content_digest(&evil_body))
            } else {
                (*n, val.clone())
            }
        })
        .collect();
    assert_eq!(
        raw(&v.url, post.clone(), "/v1/principals", &forged, Some(evil_body)).await,
        (StatusCode::UNAUTHORIZED, "signature_invalid".into())
    );

    // Signed by another key under the admin's key id.
    let mut wrong = signed(&stranger, &get, &purl, None, now());
    for (n, val) in wrong.iter_mut() {
        if *n == "signature-input" {
            *val = val.replace(stranger.key_id().as_str(), v.admin.key_id().as_str());
        }
    }
    assert_eq!(
        raw(&v.url, get.clone(), "/v1/principals", &wrong, None).await,
        (StatusCode::UNAUTHORIZED, "signature_invalid".into())
    );

    // None of this changed the log.
    assert_eq!(v.client().checkpoint().await.unwrap(), size_before);
    // And a correctly signed request still works.
    assert!(v.client().principals(v.admin.signing_key()).await.is_ok());
}

#[tokio::test]
async fn a_refused_nonce_is_not_spent() {
    let v = TestVault::start().await;
    let url = format!("{}/v1/cases", v.url);
    let mut headers = signed(&v.lawyer, &Method::GET, &url, None, now());
    let good_sig = headers.iter().find(|(n, _)| *n == "signature").unwrap().1.clone();
    // Break the signature but keep the nonce: the server must not record it.
    for (n, val) in headers.iter_mut() {
        if *n == "signature" {
            *val = format!(
                "sig1=:{}:",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0u8; 64])
            );
        }
    }
    assert_eq!(
        raw(&v.url, Method::GET, "/v1/cases", &headers, None).await.1,
        "signature_invalid"
    );
    for (n, val) in headers.iter_mut() {
        if *n == "signature" {
            *val = good_sig.clone();
        }
    }
    assert_eq!(
        raw(&v.url, Method::GET, "/v1/cases", &headers, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn behind_a_proxy_signatures_are_checked_against_the_public_urls() {
    let mut v = TestVault::start().await;
    v.stop().await;
    // Serve the same vault as if behind a TLS proxy at a public name.
    let vault = custos::vault::open(&v.data_dir()).unwrap();
    let public = "https://vault.example.org";
    let onion = "http://custosexampleonionaddressxxxxxxxxxxxxxxxxxxxxxxxxxx.onion";
    let settings = custos::config::Settings {
        public_urls: vec![public.into(), onion.into()],
        stamp_bits: 0,
        ..Default::default()
    };
    let state = std::sync::Arc::new(custos::api::AppState::new(vault, &settings));
    let (listener, addr) = custos::api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(custos::api::serve(state, listener, std::future::pending()));
    let local = format!("http://{addr}");

    // Signed for the public URL, delivered by the proxy to the local port.
    let for_public = signed(&v.lawyer, &Method::GET, &format!("{public}/v1/cases"), None, now());
    assert_eq!(
        raw(&local, Method::GET, "/v1/cases", &for_public, None).await.0,
        StatusCode::OK
    );
    // The same vault reached as an onion service: signed for that address.
    let for_onion = signed(&v.lawyer, &Method::GET, &format!("{onion}/v1/cases"), None, now());
    assert_eq!(
        raw(&local, Method::GET, "/v1/cases", &for_onion, None).await.0,
        StatusCode::OK
    );
    // Signed for the local address: not what clients of this vault sign.
    let for_local = signed(&v.lawyer, &Method::GET, &format!("{local}/v1/cases"), None, now());
    assert_eq!(
        raw(&local, Method::GET, "/v1/cases", &for_local, None).await,
        (StatusCode::UNAUTHORIZED, "signature_invalid".into())
    );
}
