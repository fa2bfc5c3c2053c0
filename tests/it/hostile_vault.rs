//! A hostile vault: a proxy in front of a real one that edits what it
//! answers, as a seized or compelled host would. Each client must refuse,
//! with a message that names what was wrong, and write and send nothing:
//! the lawyer's client when the duress note is dropped or a submitter's
//! recipient is swapped or added, the submitter's when a removed intake
//! lawyer is listed again, and either when the vault shows a fork of the
//! history it showed before. A grant wraps the case key to the card the
//! log registered, whatever card the host lists, and a submitter coming
//! back refuses a case key the host put in its place. An object id that
//! is not one (`../../../../victim.txt`), in the host's record or in a
//! commit it logged itself, is refused before a file is named after it.

use crate::util;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine;
use custos::client::flows::{self, SubmitFile};
use custos::client::trust::TrustStore;
use custos::client::{Client, ClientError};
use custos::envelope::ObjectKind;
use custos::identity::{Identity, Role};
use custos::wire::PrincipalBody;
use serde_json::Value;
use util::TestVault;

/// How the host edits an answer: the request's method and path, and the
/// JSON it would have sent.
pub(crate) type Edit = Box<dyn Fn(&str, &str, &mut Value) + Send + Sync>;

pub(crate) struct Hostile {
    upstream: Mutex<String>,
    pub(crate) edit: Mutex<Option<Edit>>,
    /// Answer 503 to every request whose path holds this text.
    pub(crate) fail: Mutex<Option<String>>,
    /// A `Custos-Receipt` header to put on every object download instead
    /// of the vault's.
    receipt: Mutex<Option<String>>,
    http: reqwest::Client,
}

async fn relay(State(h): State<Arc<Hostile>>, req: Request) -> Response {
    let method = req.method().clone();
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    if h.fail
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|f| target.contains(f.as_str()))
    {
        return Response::builder()
            .status(503)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"error":"unavailable","message":"try later"}"#))
            .unwrap();
    }
    let mut out = h
        .http
        .request(method.clone(), format!("{}{target}", h.upstream.lock().unwrap()));
    for (name, value) in req.headers() {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    let body = axum::body::to_bytes(req.into_body(), 64 << 20).await.unwrap();
    let answer = out.body(body).send().await.unwrap();
    let status = answer.status();
    let headers = answer.headers().clone();
    let mut bytes = answer.bytes().await.unwrap().to_vec();
    if let (Some(edit), Ok(mut json)) = (h.edit.lock().unwrap().as_ref(), serde_json::from_slice::<Value>(&bytes)) {
        edit(method.as_str(), req_path(&target), &mut json);
        bytes = serde_json::to_vec(&json).unwrap();
    }
    let mut resp = Response::builder().status(status);
    let swapped = h
        .receipt
        .lock()
        .unwrap()
        .clone()
        .filter(|_| target.contains("/objects/"));
    for (name, value) in &headers {
        if name == "custos-receipt" {
            if let Some(other) = &swapped {
                resp = resp.header(name, other.as_str());
                continue;
            }
        }
        if name != "content-length" && name != "transfer-encoding" {
            resp = resp.header(name, value);
        }
    }
    resp.body(Body::from(bytes)).unwrap()
}

fn req_path(target: &str) -> &str {
    target.split('?').next().unwrap()
}

/// A vault reached only through a hostile host, which it must believe is
/// its public address (clients sign for it).
pub(crate) async fn behind_a_hostile_host() -> (TestVault, Arc<Hostile>, String) {
    let mut v = TestVault::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hostile = Arc::new(Hostile {
        upstream: Mutex::new(String::new()),
        edit: Mutex::new(None),
        fail: Mutex::new(None),
        receipt: Mutex::new(None),
        http: reqwest::Client::new(),
    });
    let app = axum::Router::new().fallback(relay).with_state(hostile.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    v.stop().await;
    v.settings.public_urls = vec![url.clone()];
    v.serve().await;
    *hostile.upstream.lock().unwrap() = v.url.clone();
    (v, hostile, url)
}

/// A submission through the host.
pub(crate) async fn submit(v: &TestVault, url: &str, statement: &[u8]) -> flows::Submitted {
    let files = [SubmitFile {
        path: v.file("statement.txt", statement),
        kind: ObjectKind::Statement,
    }];
    let trust = TrustStore::new(v.tmp.path().join("submitter-pins"));
    flows::submit(&Client::new(url).unwrap(), &trust, &[], &files, false)
        .await
        .unwrap()
}

fn refused(r: Result<impl std::fmt::Debug, ClientError>, what: &str) -> String {
    match r {
        Err(e @ (ClientError::Verify(_) | ClientError::Trust(_))) => e.to_string(),
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// Register `who` as a lawyer, through the host (the vault takes requests
/// signed for the host's address only).
async fn add_lawyer(c: &Client, v: &TestVault, who: &Identity, intake: bool) {
    let body = PrincipalBody {
        card: who.card(),
        role: Role::Lawyer,
        intake,
    };
    c.add_principal(v.admin.signing_key(), &body).await.unwrap();
}

/// Objects, uploads and cases in the vault: nothing may have been sent.
fn sent(v: &TestVault) -> (usize, usize, usize) {
    let store = &v.state.as_ref().unwrap().vault.store;
    (
        store.danger_raw_tree(custos::store::T::CaseObjects).len(),
        store.danger_raw_tree(custos::store::T::Uploads).len(),
        store.danger_raw_tree(custos::store::T::Cases).len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lawyer_refuses_a_record_that_differs_from_the_log() {
    let (v, hostile, url) = behind_a_hostile_host().await;
    let c = Client::new(&url).unwrap();
    // A case withdrawn with its duress codename.
    let files = [SubmitFile {
        path: v.file("statement.txt", b"they beat me"),
        kind: ObjectKind::Statement,
    }];
    let s = flows::submit(&c, &v.trust(), &[], &files, true).await.unwrap();
    let forced = custos::client::submitter::open(&c, &v.trust(), s.duress_codename.unwrap(), &s.case_id)
        .await
        .unwrap();
    forced.withdraw(None).await.unwrap();
    let status = |c: Client| {
        let (v, id) = (&v, s.case_id.clone());
        async move {
            flows::cases(&c, &v.lawyer, &v.log, &Default::default())
                .await
                .map(|cases| {
                    cases
                        .into_iter()
                        .find(|x| x.summary.case_id == id)
                        .unwrap()
                        .summary
                        .status
                })
        }
    };
    assert_eq!(status(c.clone()).await.unwrap(), "withdrawn_under_duress");

    // The host drops the duress note: the lawyer would see a plain
    // withdrawal. It is refused instead, naming the note.
    *hostile.edit.lock().unwrap() = Some(Box::new(|method, path, json| {
        if method == "GET" && path.starts_with("/v1/cases/") && path.matches('/').count() == 3 {
            json["note"] = Value::Null;
            json["note_envelope"] = Value::Null;
        }
    }));
    let e = refused(status(c.clone()).await, "a dropped note");
    assert!(e.contains("the duress note") && e.contains(&s.case_id), "{e}");
    let out = v.tmp.path().join("got");
    let e = refused(
        flows::get_case(&c, &v.lawyer, &v.log, &s.case_id, &out).await,
        "a dropped note, on get",
    );
    assert!(e.contains("differs from its signed log"), "{e}");
    assert!(!out.exists(), "nothing is written");

    // The host hides an object of the case from the lawyer.
    *hostile.edit.lock().unwrap() = Some(Box::new(|method, path, json| {
        if method == "GET" && path.starts_with("/v1/cases/") && path.matches('/').count() == 3 {
            json["objects"].as_array_mut().unwrap().clear();
        }
    }));
    let e = refused(
        flows::get_case(&c, &v.lawyer, &v.log, &s.case_id, &out).await,
        "a hidden object",
    );
    assert!(e.contains("which the log shows stored, is missing"), "{e}");
    assert!(!out.exists(), "nothing is written");

    // The host swaps a submitter's recipient for its own, or adds its own:
    // a reply would be readable by it. Refused, and nothing is sent.
    let host = custos::envelope::CaseKey::generate().recipient().to_string();
    for add in [false, true] {
        let host = host.clone();
        *hostile.edit.lock().unwrap() = Some(Box::new(move |method, path, json| {
            if method == "GET" && path.starts_with("/v1/cases/") && path.matches('/').count() == 3 {
                let list = json["submitter_recipients"].as_array_mut().unwrap();
                if add {
                    list.push(host.clone().into());
                } else {
                    list[0] = host.clone().into();
                }
            }
        }));
        let before = sent(&v);
        let e = refused(
            flows::reply(
                &c,
                &v.lawyer,
                &v.log,
                &s.case_id,
                &v.file("reply.txt", b"We are with you."),
            )
            .await,
            "another recipient",
        );
        assert!(e.contains("the submitter's recipients"), "{e}");
        assert_eq!(sent(&v), before, "nothing is sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitter_refuses_a_removed_intake_lawyer_listed_again() {
    let (v, hostile, url) = behind_a_hostile_host().await;
    let c = Client::new(&url).unwrap();
    // A second intake lawyer, whose key is later stolen, and removed.
    let stolen = Identity::generate("Stolen").unwrap();
    add_lawyer(&c, &v, &stolen, true).await;
    let before_removal = c.intake().await.unwrap();
    let entry = before_removal
        .intake
        .iter()
        .find(|ip| ip.principal.key_id == stolen.key_id())
        .unwrap()
        .clone();
    c.remove_principal(v.admin.signing_key(), &stolen.key_id())
        .await
        .unwrap();

    // The host lists it again, with its genuine registration, proven
    // against the current checkpoint as a host with the store can.
    let state = v.state.clone().unwrap();
    *hostile.edit.lock().unwrap() = Some(Box::new(move |method, path, json| {
        if method == "GET" && path == "/v1/intake" {
            let store = &state.vault.store;
            let size = store.log_size().unwrap();
            let proof: Vec<String> = store
                .inclusion_proof(entry.index, size)
                .unwrap()
                .unwrap()
                .iter()
                .map(|h| base64::engine::general_purpose::STANDARD.encode(h))
                .collect();
            let mut relisted = serde_json::to_value(&entry).unwrap();
            relisted["proof"] = proof.into();
            json["intake"].as_array_mut().unwrap().push(relisted);
        }
    }));
    let before = sent(&v);
    let files = [SubmitFile {
        path: v.file("statement.txt", b"they beat me"),
        kind: ObjectKind::Statement,
    }];
    let trust = TrustStore::new(v.tmp.path().join("submitter-trust"));
    let e = refused(flows::submit(&c, &trust, &[], &files, false).await, "a relisted lawyer");
    assert!(
        e.contains("other intake lawyers than its log names") && e.contains(stolen.key_id().as_str()),
        "{e}"
    );
    assert_eq!(sent(&v), before, "no case is opened, nothing is sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refuses_a_fork_of_the_history_it_saw() {
    // The vault keeps its address (the host's) across what follows, as a
    // real one does; the lawyer's client keeps the last checkpoint it saw.
    let (mut v, hostile, url) = behind_a_hostile_host().await;
    let pins = TrustStore::new(v.tmp.path().join("lawyer-pins"));
    let lawyer = Client::new(&url).unwrap().with_pins(pins);
    let files = [SubmitFile {
        path: v.file("statement.txt", b"the true account"),
        kind: ObjectKind::Statement,
    }];
    let s = flows::submit(&lawyer, &v.trust(), &[], &files, false).await.unwrap();
    flows::get_case(&lawyer, &v.lawyer, &v.log, &s.case_id, &v.tmp.path().join("first"))
        .await
        .unwrap();

    // The host rolls the vault back and writes another history.
    v.stop().await;
    let snapshot = v.tmp.path().join("snapshot");
    util::copy_dir(&v.data_dir(), &snapshot);
    v.serve().await;
    *hostile.upstream.lock().unwrap() = v.url.clone();
    submit(&v, &url, b"a second case").await;
    flows::get_case(&lawyer, &v.lawyer, &v.log, &s.case_id, &v.tmp.path().join("second"))
        .await
        .unwrap();
    v.stop().await;
    util::restore_dir(&snapshot, &v.data_dir());
    v.serve().await;
    *hostile.upstream.lock().unwrap() = v.url.clone();
    submit(&v, &url, b"a forged withdrawal").await;

    let out = v.tmp.path().join("third");
    let e = refused(
        flows::get_case(&lawyer, &v.lawyer, &v.log, &s.case_id, &out).await,
        "a fork",
    );
    assert!(e.contains("not showing you the history it showed before"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

/// The host lists the grantee with its own recipient on the grantee's
/// card (the key, and so the key id, unchanged): a client that took the
/// listing's word would hand the host the case key. The grant must wrap
/// to the card the log registered instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_wraps_to_the_card_the_log_registered_not_the_one_listed() {
    let (v, hostile, url) = behind_a_hostile_host().await;
    let c = Client::new(&url).unwrap();
    let s = submit(&v, &url, b"they beat me").await;
    let colleague = Identity::generate("Colleague").unwrap();
    add_lawyer(&c, &v, &colleague, false).await;
    let host = Identity::generate("Host").unwrap();
    let genuine = colleague.card().to_string();
    let parts: Vec<&str> = genuine.splitn(4, ' ').collect();
    let forged = format!("{} {} {} {}", parts[0], parts[1], host.card().recipient, parts[3]);
    assert_eq!(
        forged.parse::<custos::identity::Card>().unwrap().key_id(),
        colleague.key_id()
    );
    let target = colleague.key_id().to_string();
    *hostile.edit.lock().unwrap() = Some(Box::new(move |method, path, json| {
        if method == "GET" && path == "/v1/principals" {
            for p in json.as_array_mut().unwrap() {
                if p["key_id"] == target.as_str() {
                    p["card"] = forged.clone().into();
                }
            }
        }
    }));
    assert_eq!(
        c.principals(v.lawyer.signing_key())
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.key_id == colleague.key_id())
            .unwrap()
            .card
            .recipient,
        host.card().recipient,
        "the host lists its own recipient"
    );

    flows::grant(&c, &v.lawyer, &v.log, &s.case_id, &colleague.key_id())
        .await
        .unwrap();
    let store = &v.state.as_ref().unwrap().vault.store;
    let envelope = store
        .danger_raw_tree(custos::store::T::Envelopes)
        .get(custos::store::pair_key(&s.case_id, colleague.key_id().as_str()))
        .unwrap()
        .unwrap();
    assert!(
        custos::envelope::CaseKey::open(&envelope, host.age_identity()).is_err(),
        "the host cannot open the grant"
    );
    custos::envelope::CaseKey::open(&envelope, colleague.age_identity()).unwrap();
    let out = v.tmp.path().join("colleague");
    flows::get_case(&c, &colleague, &v.log, &s.case_id, &out).await.unwrap();
    assert_eq!(std::fs::read(out.join("statement.txt")).unwrap(), b"they beat me");
}

/// The host answers a returning submitter with a case key of its own,
/// wrapped to the submitter's recipient, and that key's recipient as the
/// case's: a client that took the record's word would encrypt every later
/// file to the host. The session is refused, naming the case's recipient,
/// and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_submitter_refuses_a_case_key_the_host_put_in() {
    let (v, hostile, url) = behind_a_hostile_host().await;
    let c = Client::new(&url).unwrap();
    let s = submit(&v, &url, b"they beat me").await;
    let store = &v.state.as_ref().unwrap().vault.store;
    let record: custos::store::CaseRecord = store.get_json(custos::store::T::Cases, &s.case_id).unwrap().unwrap();
    let mine = s.codename.derive(util::ORIGIN).key_id();
    let submitter = record.submitter_keys.iter().find(|k| k.key_id == mine).unwrap();
    let recipient = custos::identity::parse_recipient(&submitter.recipient).unwrap();
    let host_key = custos::envelope::CaseKey::generate();
    let forged = base64::engine::general_purpose::STANDARD.encode(host_key.wrap(&recipient).unwrap());
    let host_recipient = host_key.recipient().to_string();
    let case_path = format!("/v1/cases/{}", s.case_id);
    *hostile.edit.lock().unwrap() = Some(Box::new(move |method, path, json| {
        if method == "GET" && path == case_path {
            json["envelope"] = forged.clone().into();
            json["case_recipient"] = host_recipient.clone().into();
        }
    }));
    let trust = TrustStore::new(v.tmp.path().join("submitter-pins"));
    let before = sent(&v);
    let e = refused(
        custos::client::submitter::open(&c, &trust, s.codename, &s.case_id).await,
        "a case key the host put in",
    );
    assert!(e.contains("differs from its signed log: the case's recipient"), "{e}");
    assert!(e.contains(&s.case_id), "{e}");
    assert_eq!(sent(&v), before, "nothing is sent");
}

/// The host swaps two objects' sealed labels: the lawyer would save the
/// statement under the evidence's name and kind, and the reverse. The
/// labels are held to the signed commits, and the case is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lawyer_refuses_labels_swapped_between_objects() {
    let (v, hostile, url) = behind_a_hostile_host().await;
    let c = Client::new(&url).unwrap();
    let files = [
        SubmitFile {
            path: v.file("statement.txt", b"they beat me"),
            kind: ObjectKind::Statement,
        },
        SubmitFile {
            path: v.file("medical-report.txt", b"fractured ribs"),
            kind: ObjectKind::Evidence,
        },
    ];
    let s = flows::submit(&c, &v.trust(), &[], &files, false).await.unwrap();
    let case_path = format!("/v1/cases/{}", s.case_id);
    *hostile.edit.lock().unwrap() = Some(Box::new(move |method, path, json| {
        if method == "GET" && path == case_path {
            let objects = json["objects"].as_array_mut().unwrap();
            let first = objects[0]["label"].clone();
            objects[0]["label"] = objects[1]["label"].clone();
            objects[1]["label"] = first;
        }
    }));
    let out = v.tmp.path().join("got");
    let e = refused(
        flows::get_case(&c, &v.lawyer, &v.log, &s.case_id, &out).await,
        "swapped labels",
    );
    assert!(e.contains("the label or place of object"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

/// The host sends a whole object with a receipt that is not the logged
/// access (here the case's creation): the lawyer's `get` refuses it, and
/// run again downloads the object afresh, logged and checked, instead of
/// taking the bytes it kept and checking no receipt at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_whose_access_receipt_failed_are_fetched_again_not_reused() {
    let (v, hostile, url) = behind_a_hostile_host().await;
    let c = Client::new(&url).unwrap();
    let s = submit(&v, &url, b"they kept me awake for four days").await;
    let not_an_access =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&s.receipt.receipts[0]).unwrap());
    *hostile.receipt.lock().unwrap() = Some(not_an_access);
    let out = v.tmp.path().join("got");
    let e = refused(
        flows::get_case(&c, &v.lawyer, &v.log, &s.case_id, &out).await,
        "a receipt for another event",
    );
    assert!(e.contains("receipt"), "{e}");
    assert!(!out.exists(), "nothing is written");

    *hostile.receipt.lock().unwrap() = None;
    // The case's logged accesses, read from the vault's store.
    let accesses = || {
        let store = &v.state.as_ref().unwrap().vault.store;
        (0..store.log_size().unwrap())
            .map(|i| serde_json::from_slice::<custos::custody::Event>(&store.entry(i).unwrap().unwrap()).unwrap())
            .filter(|e| e.case == s.case_id && e.action == custos::custody::Action::ObjectAccessed)
            .count()
    };
    let before = accesses();
    flows::get_case(&c, &v.lawyer, &v.log, &s.case_id, &out).await.unwrap();
    assert_eq!(
        accesses(),
        before + 1,
        "the object was downloaded again, as a logged access whose receipt was checked"
    );
}

/// The host names an object `../../../../victim.txt` in the case's
/// record. `export` made the bundle's object file from the id before any
/// hash was checked, so it would have created (or emptied, and filled
/// with the host's bytes) a file outside its staging folder; `get`
/// builds its staging path from the id too. Both refuse the record,
/// naming the id, and write nothing, inside their folders or out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_id_that_climbs_out_of_its_folder_is_refused() {
    let (v, hostile, url) = behind_a_hostile_host().await;
    let c = Client::new(&url).unwrap();
    let s = submit(&v, &url, b"they beat me").await;
    let victim = v.tmp.path().join("victim.txt");
    std::fs::write(&victim, b"the person's own file").unwrap();
    let case_path = format!("/v1/cases/{}", s.case_id);
    *hostile.edit.lock().unwrap() = Some(Box::new(move |method, path, json| {
        if method == "GET" && path == case_path {
            json["objects"][0]["object_id"] = "../../../../victim.txt".into();
        }
    }));

    // The bundle would be staged in exports/.custos-export-*/bundle, its
    // objects in objects/ below that: four levels up is the test's folder.
    let exports = v.tmp.path().join("exports");
    let out = exports.join("bundle");
    let exported = custos::client::export::export(
        &c,
        &v.auditor,
        &v.log,
        &s.case_id,
        &out,
        custos::client::export::ExportOptions::default(),
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(&victim).unwrap()),
        "the person's own file",
        "the file outside is untouched"
    );
    let e = refused(exported, "a climbing object id, on export");
    assert!(e.contains("not an object id") && e.contains("victim.txt"), "{e}");
    assert!(!out.exists(), "no bundle is named");
    assert!(
        !exports.exists() || std::fs::read_dir(&exports).unwrap().next().is_none(),
        "nothing is staged"
    );

    // `get` stages ciphertext in deep/er/still/.custos-get-CASE: four
    // levels up from there is the test's folder again.
    let got = v.tmp.path().join("deep/er/still/got");
    let e = refused(
        flows::get_case(&c, &v.lawyer, &v.log, &s.case_id, &got).await,
        "a climbing object id, on get",
    );
    assert!(e.contains("not an object id") && e.contains("victim.txt"), "{e}");
    assert!(
        !v.tmp.path().join("victim.txt.age").exists(),
        "nothing is written outside"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"the person's own file".to_vec());
    assert!(!got.exists(), "nothing is written");
}

/// An operator holding the log key logs a commit of its own making, signed
/// with a submitter key of a case it opened itself, naming the object
/// `../../../../victim.txt`: every signature is genuine. The lawyer's
/// client, proving the case from its log, refuses the id before any
/// workflow (a disclosure stages objects by the log's ids) makes a file
/// name of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_commit_naming_no_object_id_is_refused() {
    let mut v = TestVault::start().await;
    let s = v.submit(b"they beat me", &[]).await;
    let submitter = s.codename.derive(util::ORIGIN);
    let base = v.url.clone();
    v.stop().await;
    {
        let vault = custos::vault::open(&v.data_dir()).unwrap();
        let store = &vault.store;
        let stored = (0..store.log_size().unwrap())
            .map(|i| serde_json::from_slice::<custos::custody::Event>(&store.entry(i).unwrap().unwrap()).unwrap())
            .find(|e| e.case == s.case_id && e.action == custos::custody::Action::ObjectStored)
            .unwrap();
        let genuine: custos::wire::CommitUpload = stored.signed_body().unwrap();
        let climbing = "../../../../victim.txt".to_owned();
        let body = serde_json::to_vec(&custos::wire::CommitUpload {
            sha256: climbing.clone(),
            label: genuine.label,
        })
        .unwrap();
        let url = format!("{base}/v1/cases/{}/uploads/{}/commit", s.case_id, "0a".repeat(16));
        let request = custos::httpsig::SignedRequest::sign(
            submitter.signing_key(),
            "POST",
            &url,
            Some(&body),
            time::OffsetDateTime::now_utc().unix_timestamp(),
        );
        let forged = custos::custody::EventDraft {
            case: s.case_id.clone(),
            actor: submitter.key_id().to_string(),
            action: custos::custody::Action::ObjectStored,
            objects: vec![climbing],
            details: stored.details,
            request: Some(request),
        };
        let guard = store.writer().await;
        store
            .append(&guard, custos::store::Batch::default(), vec![forged], &vault.signer)
            .unwrap();
        drop(guard);
        store.flush().await.unwrap();
    }
    v.serve().await;
    let case_log = v.client().case_log(v.lawyer.signing_key(), &s.case_id).await.unwrap();
    let e = refused(
        custos::client::proven::prove_log(
            &case_log,
            &v.log,
            &[],
            &s.case_id,
            custos::client::proven::Reader::Principal,
        ),
        "a logged commit naming no object id",
    );
    // The log's own check (the one `custos audit` runs) refuses it before
    // the client's reading of the commit would.
    assert!(e.contains("object id that is not a SHA-256"), "{e}");
}
