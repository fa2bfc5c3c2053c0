//! Known answers that the Rust client and the page's script must both give
//! (tests/vectors/web-client.json; web/test/protocol.test.mjs walks the same
//! file in Node): codename key derivation, proof-of-work stamps and request
//! signatures. If either side drifts, codenames made in a browser stop
//! opening cases from the CLI, or the reverse.

use base64::Engine;
use custos::httpsig::{self, SignatureParams};
use custos::identity::codename::{Codename, KdfVersion};
use custos::identity::KeyId;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/web-client.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn codenames_derive_the_committed_keys() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let v = vectors();
    let all = v["codenames"].as_array().unwrap();
    for version in ["v1", "v2"] {
        assert!(all.iter().filter(|c| c["kdf"] == version).count() >= 3, "{version}");
    }
    for c in all {
        let version = match c["kdf"].as_str().unwrap() {
            "v1" => KdfVersion::V1,
            "v2" => KdfVersion::V2,
            other => panic!("unknown KDF {other}"),
        };
        let keys = Codename::parse(c["codename"].as_str().unwrap())
            .unwrap()
            .derive_version(version, c["origin"].as_str().unwrap());
        assert_eq!(keys.key_id().as_str(), c["key_id"], "{c}");
        assert_eq!(
            b64.encode(keys.signing_key().verifying_key().as_bytes()),
            c["verifying_key"],
            "{c}"
        );
        assert_eq!(keys.age_identity().to_public().to_string(), c["recipient"], "{c}");
    }
}

#[test]
fn stamps_are_the_first_counter_that_meets_the_difficulty() {
    let all = vectors()["stamps"].as_array().unwrap().clone();
    for version in ["v1 ", "v2 "] {
        assert!(
            all.iter()
                .filter(|s| s["stamp"].as_str().unwrap().starts_with(version))
                .count()
                >= 2
        );
    }
    for s in all {
        let (origin, body) = (s["origin"].as_str().unwrap(), s["body"].as_str().unwrap().as_bytes());
        let (bits, time) = (s["bits"].as_u64().unwrap() as u8, s["time"].as_i64().unwrap());
        let mint = if s["stamp"].as_str().unwrap().starts_with("v2 ") {
            custos::stamp::mint_v2
        } else {
            custos::stamp::mint
        };
        assert_eq!(mint(origin, body, bits, time), s["stamp"], "{s}");
        assert!(custos::stamp::check(s["stamp"].as_str().unwrap(), origin, body, bits, time).is_ok());
    }
}

#[test]
fn request_signatures_match_byte_for_byte() {
    for s in vectors()["signatures"].as_array().unwrap() {
        let seed: [u8; 32] = hex::decode(s["seed"].as_str().unwrap()).unwrap().try_into().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        assert_eq!(KeyId::of(&key.verifying_key()).as_str(), s["key_id"]);
        let body = s["body"].as_str().unwrap().as_bytes();
        assert_eq!(httpsig::content_digest(body), s["content_digest"]);
        let mut components = vec![
            "@method".to_owned(),
            "@target-uri".to_owned(),
            "content-digest".to_owned(),
        ];
        let mut values = vec![
            s["method"].as_str().unwrap().to_owned(),
            s["url"].as_str().unwrap().to_owned(),
            httpsig::content_digest(body),
        ];
        for (name, value) in s["covered"].as_object().unwrap() {
            components.push(name.clone());
            values.push(value.as_str().unwrap().to_owned());
        }
        let created = s["created"].as_i64().unwrap();
        let params = SignatureParams {
            components,
            created,
            expires: created + 60,
            nonce: s["nonce"].as_str().unwrap().to_owned(),
            keyid: s["key_id"].as_str().unwrap().to_owned(),
        };
        let (input, sig) = httpsig::sign(&key, &params, &values);
        assert_eq!(input, s["signature_input"]);
        assert_eq!(sig, s["signature"]);
    }
}
