//! Submitters coming back with only a codename: follow-up evidence, replies,
//! withdrawal (and who may not withdraw), duress codenames that look exactly
//! like real ones to everyone but the lawyers, and the proof-of-work stamp
//! that stands in for IP-based rate limits.

use crate::util;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::client::flows::{self, SubmitFile, Submitted};
use custos::client::submitter::{self, Session};
use custos::client::RequestParts;
use custos::envelope::{CaseKey, ObjectKind};
use custos::identity::codename::Codename;
use custos::wire::{CreateCase, EnvelopeBody, NewSubmitterKey, WithdrawBody};
use reqwest::Method;
use serde_json::Value;
use util::{bytes, TestVault, ORIGIN};

async fn submit(v: &TestVault, statement: &[u8], duress: bool) -> Submitted {
    let files = [SubmitFile {
        path: v.file("statement.txt", statement),
        kind: ObjectKind::Statement,
    }];
    flows::submit(&v.client(), &v.trust(), &[], &files, duress)
        .await
        .unwrap()
}

async fn session(v: &TestVault, codename: &Codename, case_id: &str) -> Session {
    let codename = Codename::parse(codename.expose()).unwrap();
    submitter::open(&v.client(), &v.trust(), codename, case_id)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_follow_up_by_codename_reaches_the_lawyer_and_a_reply_comes_back() {
    let v = TestVault::start().await;
    let s = submit(&v, b"They beat me on the 3rd of May.", false).await;
    let me = session(&v, &s.codename, &s.case_id).await;
    let status = me.status().unwrap();
    assert_eq!(status.status, "open");
    assert_eq!(status.objects.len(), 1);
    assert_eq!(status.objects[0].name, "statement.txt");

    // Weeks later the medical report arrives.
    let report = bytes(21, 40_000);
    let receipts = me
        .add(
            &[SubmitFile {
                path: v.file("medical-report.pdf", &report),
                kind: ObjectKind::Medical,
            }],
            &v.tmp.path().join("trust"),
        )
        .await
        .unwrap();
    let (event, _) = custos::audit::verify_receipt(&receipts[0], &v.log).unwrap();
    assert_eq!(event.action, custos::custody::Action::ObjectStored);
    let codename_key = s.codename.derive(ORIGIN).key_id();
    assert_eq!(
        event.actor,
        codename_key.as_str(),
        "logged as signed by the codename key"
    );
    let out = v.tmp.path().join("lawyer-copy");
    let got = flows::get_case(&v.client(), &v.lawyer, &v.log, &s.case_id, &out)
        .await
        .unwrap();
    assert_eq!(got.files.len(), 2);
    assert_eq!(std::fs::read(out.join("medical-report.pdf")).unwrap(), report);

    // The lawyer replies; the submitter reads it with the codename.
    let text = "We received the report. Can you tell us the officer's badge number?\n";
    flows::reply(
        &v.client(),
        &v.lawyer,
        &v.log,
        &s.case_id,
        &v.file("reply.txt", text.as_bytes()),
    )
    .await
    .unwrap();
    let me = session(&v, &s.codename, &s.case_id).await;
    // A message labelled a reply that no lawyer signed: anyone who can
    // encrypt to the case (a coercer holding a codename, or the host) could
    // plant one. It is not shown, and the submitter is told so.
    let planted = SubmitFile {
        path: v.file("planted.txt", b"Withdraw your complaint. -- your lawyer"),
        kind: ObjectKind::Reply,
    };
    me.add(&[planted], &v.tmp.path().join("journal")).await.unwrap();
    let me = session(&v, &s.codename, &s.case_id).await;
    let replies = me.replies().await.unwrap();
    assert_eq!(replies.unproven.len(), 1, "{replies:?}");
    assert!(!replies.replies.iter().any(|r| r.text.contains("Withdraw")));
    let replies = replies.replies;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].text, text);
    // The log proves who wrote it: the intake lawyer, by name and key.
    assert_eq!(
        replies[0].from,
        format!("{} ({})", v.lawyer.card().name, v.lawyer.key_id())
    );
    // A reply is not readable by an outsider holding only the ciphertext.
    let outsider = custos::identity::Identity::generate("outsider").unwrap();
    let mut raw = Vec::new();
    v.client()
        .download(
            s.codename.derive(ORIGIN).signing_key(),
            &s.case_id,
            &replies[0].object_id,
            &mut raw,
        )
        .await
        .unwrap();
    assert!(custos::envelope::decrypt_bytes(&raw, outsider.age_identity()).is_err());
    assert!(!String::from_utf8_lossy(&raw).contains("badge"));
}

#[tokio::test]
async fn a_wrong_codename_gets_the_same_answer_as_an_unknown_case() {
    let v = TestVault::start().await;
    let s = submit(&v, b"statement", false).await;
    let wrong = submitter::open(&v.client(), &v.trust(), Codename::generate(), &s.case_id)
        .await
        .unwrap_err()
        .to_string();
    let other_case = "0123456789abcdef01234567";
    let unknown = submitter::open(
        &v.client(),
        &v.trust(),
        Codename::parse(s.codename.expose()).unwrap(),
        other_case,
    )
    .await
    .unwrap_err()
    .to_string();
    assert_eq!(wrong.replace(&s.case_id, "CASE"), unknown.replace(other_case, "CASE"));
    assert!(wrong.contains("no case"), "{wrong}");
}

#[tokio::test]
async fn only_a_codename_key_of_the_case_can_withdraw_it() {
    let v = TestVault::start().await;
    let s = submit(&v, b"statement", false).await;
    let other = submit(&v, b"another case", false).await;
    let body = WithdrawBody::default();
    // A lawyer of the case, an admin, another case's codename: refused.
    let err = v
        .client()
        .withdraw(v.lawyer.signing_key(), &s.case_id, &body)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("forbidden"));
    let err = v
        .client()
        .withdraw(v.admin.signing_key(), &s.case_id, &body)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("not_found"), "admins do not see cases");
    let stranger = other.codename.derive(ORIGIN);
    let err = v
        .client()
        .withdraw(stranger.signing_key(), &s.case_id, &body)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("not_found"));
    let unregistered = Codename::generate().derive(ORIGIN);
    let err = v
        .client()
        .withdraw(unregistered.signing_key(), &s.case_id, &body)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("unknown_key"));
    assert_eq!(
        session(&v, &s.codename, &s.case_id).await.status().unwrap().status,
        "open"
    );

    // The codename can, once; nothing is deleted.
    let me = session(&v, &s.codename, &s.case_id).await;
    me.withdraw(Some("I want to move on.")).await.unwrap();
    let err = me.withdraw(None).await.unwrap_err();
    assert_eq!(err.code(), Some("already_withdrawn"));
    let after = session(&v, &s.codename, &s.case_id).await.status().unwrap();
    assert_eq!((after.status.as_str(), after.objects.len()), ("withdrawn", 1));
    let cases = flows::cases(&v.client(), &v.lawyer, &v.log, &Default::default())
        .await
        .unwrap();
    let c = cases.iter().find(|c| c.summary.case_id == s.case_id).unwrap();
    assert_eq!(c.summary.status, "withdrawn");
    // The whole log, withdrawal included, audits.
    let audit = flows::audit(&v.client(), &v.auditor, &v.log, None).await.unwrap();
    assert_eq!(audit.failure, None);
}

/// Same shape: the same JSON types, keys and array lengths, and strings of
/// the same length (ids, keys, ciphertexts and times are random or
/// fixed-width; anything meaningful would have to differ in content).
fn assert_same_shape(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let (kx, ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
            assert_eq!(kx, ky, "fields at {path}");
            for k in x.keys() {
                assert_same_shape(&x[k], &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "length of {path}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_same_shape(p, q, &format!("{path}[{i}]"));
            }
        }
        (Value::String(x), Value::String(y)) => {
            // Base64 of JSON (a signed request body): compare what is inside.
            let json = |s: &str| {
                B64.decode(s)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            };
            if let (Some(p), Some(q)) = (json(x), json(y)) {
                return assert_same_shape(&p, &q, &format!("{path}(body)"));
            }
            // age ciphertexts carry a random-length grease stanza, so their
            // length is itself random.
            let age = |s: &str| B64.decode(s).is_ok_and(|b| b.starts_with(b"age-encryption.org/v1\n"));
            if age(x) && age(y) {
                return;
            }
            assert_eq!(x.len(), y.len(), "{path}: {x:?} vs {y:?}")
        }
        (Value::Number(_), Value::Number(_)) | (Value::Null, Value::Null) => {}
        (Value::Bool(x), Value::Bool(y)) => assert_eq!(x, y, "{path}"),
        _ => panic!("{path}: {a} vs {b}"),
    }
}

#[tokio::test]
async fn a_duress_withdrawal_is_flagged_to_lawyers_and_looks_like_any_other_to_everyone_else() {
    let mut v = TestVault::start().await;
    let real = submit(&v, b"statement of case one", true).await;
    let forced = submit(&v, b"statement of case two", true).await;
    let duress = forced.duress_codename.as_ref().expect("a duress codename");
    assert_ne!(duress.expose(), forced.codename.expose());

    // The duress codename works exactly like the real one.
    let coerced = session(&v, duress, &forced.case_id).await;
    assert_eq!(coerced.status().unwrap().objects.len(), 1);
    let free = session(&v, &real.codename, &real.case_id).await;
    let r1 = free.withdraw(Some("reason one")).await.unwrap();
    let r2 = coerced.withdraw(Some("reason two")).await.unwrap();

    // Lawyers see the difference.
    let cases = flows::cases(&v.client(), &v.lawyer, &v.log, &Default::default())
        .await
        .unwrap();
    let status = |id: &str| {
        cases
            .iter()
            .find(|c| c.summary.case_id == id)
            .unwrap()
            .summary
            .status
            .clone()
    };
    assert_eq!(status(&real.case_id), "withdrawn");
    assert_eq!(status(&forced.case_id), "withdrawn_under_duress");
    let got = flows::get_case(&v.client(), &v.lawyer, &v.log, &forced.case_id, &v.tmp.path().join("g"))
        .await
        .unwrap();
    assert_eq!(got.status, "withdrawn_under_duress");

    // Nobody else does. What the server returns: the withdrawal receipts,
    // the case as each submitter key sees it, and as the lawyer's raw API
    // response and the auditor's listing show it.
    let event =
        |r: &custos::custody::Receipt| -> Value { serde_json::from_slice(&B64.decode(&r.event).unwrap()).unwrap() };
    assert_same_shape(&event(&r1), &event(&r2), "withdraw event");
    let detail = |key: &ed25519_dalek::SigningKey, id: &str| {
        let client = v.client();
        let (key, id) = (key.clone(), id.to_owned());
        async move { serde_json::to_value(client.case(&key, &id).await.unwrap()).unwrap() }
    };
    let real_keys = real.codename.derive(ORIGIN);
    let duress_keys = duress.derive(ORIGIN);
    let (a, b) = (
        detail(real_keys.signing_key(), &real.case_id).await,
        detail(duress_keys.signing_key(), &forced.case_id).await,
    );
    assert_same_shape(&a, &b, "submitter's view");
    assert_eq!(a["status"], "withdrawn");
    assert_eq!(b["status"], "withdrawn");
    // A submitter is not told which key withdrew: a coercer holding one
    // codename must not learn whether the other withdrew. The lawyers are.
    for view in [&a, &b] {
        assert!(view["withdrawal"]["time"].is_string(), "{view}");
        assert!(view["withdrawal"].get("key_id").is_none(), "{view}");
    }
    let lawyers = detail(v.lawyer.signing_key(), &forced.case_id).await;
    assert!(lawyers["withdrawal"]["key_id"].is_string(), "{lawyers}");
    assert_same_shape(
        &detail(v.lawyer.signing_key(), &real.case_id).await,
        &detail(v.lawyer.signing_key(), &forced.case_id).await,
        "lawyer's raw view",
    );
    let listing = serde_json::to_value(v.client().cases(v.auditor.signing_key()).await.unwrap()).unwrap();
    let find = |id: &str| {
        listing
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["case_id"] == id)
            .unwrap()
            .clone()
    };
    assert_same_shape(&find(&real.case_id), &find(&forced.case_id), "listing");
    assert_eq!(find(&forced.case_id)["status"], "withdrawn");

    // And what the server stores.
    v.stop().await;
    let store = custos::store::Store::open(&custos::vault::db_path(&v.data_dir())).unwrap();
    let stored = |id: &str| -> Value {
        serde_json::from_slice(&store.danger_raw_tree(custos::store::T::Cases).get(id).unwrap().unwrap()).unwrap()
    };
    let (sa, sb) = (stored(&real.case_id), stored(&forced.case_id));
    assert_same_shape(&sa, &sb, "stored case");
    for s in [&sa, &sb] {
        let keys: Vec<&str> = s["submitter_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["key_id"].as_str().unwrap())
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "keys are stored in key id order, not the client's"
        );
        assert!(keys.contains(&s["withdrawal"]["key_id"].as_str().unwrap()));
    }
    drop(store);
    v.serve().await;
}

/// A valid case-creation body for the test vault (one submitter key, no note).
fn creation_body(v: &TestVault) -> (custos::identity::codename::SubmitterKeys, Vec<u8>) {
    let keys = Codename::generate().derive(ORIGIN);
    let body = creation_body_for(v, &keys);
    (keys, body)
}

/// A valid case-creation body with the submitter key `keys`.
fn creation_body_for(v: &TestVault, keys: &custos::identity::codename::SubmitterKeys) -> Vec<u8> {
    let case_key = CaseKey::generate();
    let me = keys.age_identity().to_public();
    let req = CreateCase {
        submitter_keys: vec![NewSubmitterKey {
            verifying_key: B64.encode(keys.signing_key().verifying_key().as_bytes()),
            recipient: me.to_string(),
        }],
        case_recipient: case_key.recipient().to_string(),
        envelopes: vec![
            EnvelopeBody {
                key_id: keys.key_id(),
                envelope: B64.encode(case_key.wrap(&me).unwrap()),
            },
            EnvelopeBody {
                key_id: v.lawyer.key_id(),
                envelope: B64.encode(case_key.wrap(&v.lawyer.card().age_recipient()).unwrap()),
            },
        ],
        note: None,
        note_envelopes: vec![],
    };
    serde_json::to_vec(&req).unwrap()
}

async fn post_case(
    v: &TestVault,
    key: &ed25519_dalek::SigningKey,
    body: &[u8],
    stamp: Option<String>,
) -> Result<(), String> {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if let Some(s) = stamp {
        headers.push((custos::stamp::HEADER, s));
    }
    let parts = RequestParts {
        headers,
        body: Some(body.to_vec()),
        ..Default::default()
    };
    match v.client().send(Some(key), Method::POST, "/v1/cases", parts).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.code().unwrap_or("none").to_owned()),
    }
}

#[tokio::test]
async fn a_missing_weak_stale_or_reused_stamp_is_refused() {
    let mut v = TestVault::start().await;
    let params = v.client().intake().await.unwrap();
    assert_eq!(params.stamp_bits, v.stamp_bits);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (keys, body) = creation_body(&v);
    let key = keys.signing_key();

    assert_eq!(post_case(&v, key, &body, None).await, Err("stamp_missing".into()));
    assert_eq!(
        post_case(&v, key, &body, Some("v1 nonsense".into())).await,
        Err("stamp_invalid".into())
    );
    // Too weak: the first counter that falls short of the difficulty.
    let weak = (0u64..)
        .map(|c| format!("v1 {now} {c}"))
        .find(|s| custos::stamp::check(s, ORIGIN, &body, v.stamp_bits, now).is_err())
        .unwrap();
    assert_eq!(post_case(&v, key, &body, Some(weak)).await, Err("stamp_invalid".into()));
    // Paid for another body, or long ago, or for another vault. A stamp
    // for something else passes for this body by chance once in 2^bits
    // tries; the test takes one that does not, so it cannot pass by luck.
    let fails_here = |stamp: &String| custos::stamp::check(stamp, ORIGIN, &body, v.stamp_bits, now).is_err();
    let elsewhere = (0..)
        .map(|_| custos::stamp::mint(ORIGIN, &creation_body(&v).1, v.stamp_bits, now))
        .find(fails_here)
        .unwrap();
    assert_eq!(
        post_case(&v, key, &body, Some(elsewhere)).await,
        Err("stamp_invalid".into())
    );
    let stale = custos::stamp::mint(ORIGIN, &body, v.stamp_bits, now - 3600);
    assert_eq!(
        post_case(&v, key, &body, Some(stale)).await,
        Err("stamp_invalid".into())
    );
    let other_vault = (0..)
        .map(|i| custos::stamp::mint(&format!("other{i}.example/log"), &body, v.stamp_bits, now))
        .find(fails_here)
        .unwrap();
    assert_eq!(
        post_case(&v, key, &body, Some(other_vault)).await,
        Err("stamp_invalid".into())
    );
    // None of that opened a case.
    assert!(v.client().cases(v.lawyer.signing_key()).await.unwrap().is_empty());

    // A good stamp opens one case, once.
    let good = custos::stamp::mint(ORIGIN, &body, v.stamp_bits, now);
    post_case(&v, key, &body, Some(good.clone())).await.unwrap();
    assert_eq!(post_case(&v, key, &body, Some(good)).await, Err("stamp_reused".into()));
    assert_eq!(v.client().cases(v.lawyer.signing_key()).await.unwrap().len(), 1);

    // The page's kind (v2, PBKDF2 tries) is judged the same way: the
    // first counter short of its difficulty is refused, a good one opens
    // a case once. v2 asks 7 bits fewer, so the vault asks for more here.
    v.stop().await;
    v.stamp_bits = 13;
    v.serve().await;
    let (keys, body) = creation_body(&v);
    let key = keys.signing_key();
    let bits = custos::stamp::v2_bits(v.stamp_bits);
    assert!(bits > 0, "the test vault's difficulty leaves v2 something to check");
    let weak = (0u64..)
        .map(|c| format!("v2 {now} {c}"))
        .find(|s| custos::stamp::check(s, ORIGIN, &body, v.stamp_bits, now).is_err())
        .unwrap();
    assert_eq!(post_case(&v, key, &body, Some(weak)).await, Err("stamp_invalid".into()));
    let good = custos::stamp::mint_v2(ORIGIN, &body, v.stamp_bits, now);
    post_case(&v, key, &body, Some(good.clone())).await.unwrap();
    assert_eq!(post_case(&v, key, &body, Some(good)).await, Err("stamp_reused".into()));
    assert_eq!(v.client().cases(v.lawyer.signing_key()).await.unwrap().len(), 2);
}

/// A codename made before the v2 KDF (scrypt, what every client used
/// until the page had to run without a JIT) still opens its case: the
/// client tries each KDF version, newest first.
#[tokio::test]
async fn a_codename_made_with_the_first_kdf_still_opens_its_case() {
    use custos::identity::codename::KdfVersion;
    let v = TestVault::start().await;
    let codename = Codename::generate();
    let keys = codename.derive_version(KdfVersion::V1, ORIGIN);
    assert!(!keys.same_as(&codename.derive(ORIGIN)), "v1 and the current KDF differ");
    let body = creation_body_for(&v, &keys);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let stamp = custos::stamp::mint(ORIGIN, &body, v.stamp_bits, now);
    post_case(&v, keys.signing_key(), &body, Some(stamp)).await.unwrap();
    let case_id = v.client().cases(v.lawyer.signing_key()).await.unwrap()[0]
        .case_id
        .clone();

    let status = session(&v, &codename, &case_id).await.status().unwrap();
    assert_eq!(
        (status.case_id.as_str(), status.status.as_str()),
        (case_id.as_str(), "open")
    );
    // Another codename opens nothing, under any version.
    let wrong = submitter::open(&v.client(), &v.trust(), Codename::generate(), &case_id).await;
    assert!(wrong.unwrap_err().to_string().contains("no case"));
}
