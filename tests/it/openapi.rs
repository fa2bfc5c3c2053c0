//! The OpenAPI description served at /v1/openapi.json matches the router:
//! every documented operation reaches a real handler.

use crate::util;

use reqwest::Method;
use util::TestVault;

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let v = TestVault::start().await;
    let doc: serde_json::Value = reqwest::get(format!("{}/v1/openapi.json", v.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{} paths", paths.len());
    let http = reqwest::Client::new();
    let mut checked = 0;
    for (path, ops) in paths {
        let concrete = path
            .replace("{case}", &"a".repeat(24))
            .replace("{upload}", &"b".repeat(32))
            .replace("{object}", &"c".repeat(64))
            .replace("{key}", &"d".repeat(16));
        for (method, op) in ops.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let resp = http
                .request(method.clone(), format!("{}{concrete}", v.url))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let code = resp
                .headers()
                .get("custos-error")
                .map(|c| c.to_str().unwrap().to_owned());
            let signed = op.get("security").is_some();
            // 404 would be the fallback, 405 a route without this method.
            assert!(
                !matches!(status.as_u16(), 404 | 405),
                "{method} {path} is documented but not routed: {status}"
            );
            if signed {
                // Unsigned requests to signed operations are refused for want
                // of a signature (case creation reads its body first).
                assert!(
                    matches!(
                        code.as_deref(),
                        Some("signature_missing") | Some("bad_request") | Some("stamp_missing")
                    ),
                    "{method} {path}: {status} {code:?}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 22, "{checked} operations checked");
    // And an undocumented path is not routed.
    let resp = http.get(format!("{}/v1/nothing-here", v.url)).send().await.unwrap();
    assert_eq!(resp.headers().get("custos-error").unwrap(), "not_found");
}
