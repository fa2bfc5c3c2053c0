//! Many small submissions at once: case creations per second, each with a
//! 2 KiB statement, from 16 concurrent clients against a running vault, and
//! the p50/p99 latency of one whole submission (create the case, create the
//! upload, PATCH, commit: four signed requests, each acknowledged only once
//! durable).
//!
//! Every submitter's keys, envelopes and ciphertext are made before the
//! clock starts, from random keys rather than codenames: the KDF and the
//! proof-of-work stamp are the submitter's device's cost, measured apart
//! (`web/bench.mjs`), so run the vault with `--stamp-bits 0`.
//!
//! Usage: `CUSTOS_SERVER=http://ADDR cargo bench --bench small -- [CASES]`.
//! Prints one line, `small cases=N warmup=W clients=16 secs=S rate=R
//! p50_ms=A p99_ms=B`, which `bench/run.sh` puts beside its fsync
//! reference.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use custos::client::Client;
use custos::envelope::{encrypt_bytes, CaseKey, Label, ObjectKind};
use custos::wire::{CommitUpload, CreateCase, EnvelopeBody, NewSubmitterKey};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

/// Concurrent clients, as issue 6 sets them.
const CLIENTS: usize = 16;
/// Plaintext statement size.
const STATEMENT: usize = 2048;
/// Submissions before the clock starts, to warm connections and caches.
const WARMUP: usize = 64;

/// Everything one submission sends, made in advance.
struct Prepared {
    key: SigningKey,
    request: CreateCase,
    statement: Vec<u8>,
    commit: CommitUpload,
}

/// An intake lawyer: the recipient to wrap to and the key id to file under.
type Intake = (age::x25519::Recipient, custos::identity::KeyId);

fn prepare(intake: &[Intake]) -> Prepared {
    let case_key = CaseKey::generate();
    let note_key = CaseKey::generate();
    let wrap = |k: &CaseKey, r: &age::x25519::Recipient| B64.encode(k.wrap(r).expect("wrap"));
    let mut envelopes = Vec::new();
    let mut note_envelopes = Vec::new();
    let mut submitter_keys = Vec::new();
    let mut signing = Vec::new();
    for (r, key_id) in intake {
        envelopes.push(EnvelopeBody {
            key_id: key_id.clone(),
            envelope: wrap(&case_key, r),
        });
        note_envelopes.push(EnvelopeBody {
            key_id: key_id.clone(),
            envelope: wrap(&note_key, r),
        });
    }
    for _ in 0..2 {
        let sk = SigningKey::generate(&mut rand::rngs::OsRng);
        let age_id = age::x25519::Identity::generate();
        let kid = custos::identity::KeyId::of(&sk.verifying_key());
        envelopes.push(EnvelopeBody {
            key_id: kid,
            envelope: wrap(&case_key, &age_id.to_public()),
        });
        submitter_keys.push(NewSubmitterKey {
            verifying_key: B64.encode(sk.verifying_key().as_bytes()),
            recipient: age_id.to_public().to_string(),
        });
        signing.push(sk);
    }
    let plain: Vec<u8> = (0..STATEMENT).map(|i| b"abcdefgh "[i % 9]).collect();
    let statement = encrypt_bytes(&plain, &[&case_key.recipient()]).expect("encrypt");
    let label = Label {
        name: "statement.txt".into(),
        media_type: Some("text/plain".into()),
        kind: ObjectKind::Statement,
        description: None,
        cleaned: None,
    }
    .seal(&case_key.recipient())
    .expect("seal");
    Prepared {
        key: signing.swap_remove(0),
        request: CreateCase {
            submitter_keys,
            case_recipient: case_key.recipient().to_string(),
            envelopes,
            note: Some(B64.encode(encrypt_bytes(b"no duress key", &[&note_key.recipient()]).expect("encrypt"))),
            note_envelopes,
        },
        commit: CommitUpload {
            sha256: hex::encode(Sha256::digest(&statement)),
            label: B64.encode(label),
        },
        statement,
    }
}

async fn submit_one(client: &Client, origin: &str, p: Prepared) -> Duration {
    let start = Instant::now();
    let created = client
        .create_case(&p.key, &p.request, origin, 0)
        .await
        .expect("case created");
    let upload = client
        .create_upload(&p.key, &created.case_id, p.statement.len() as u64)
        .await
        .expect("upload created");
    client.patch(&p.key, &upload, 0, p.statement).await.expect("PATCH");
    client.commit(&p.key, &upload, &p.commit).await.expect("commit");
    start.elapsed()
}

/// Run `items` through `CLIENTS` concurrent workers; the latencies, in the
/// order they finished.
async fn run(client: &Client, origin: &str, items: Vec<Prepared>) -> Vec<Duration> {
    let queue = Arc::new(std::sync::Mutex::new(items));
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (client, origin, queue) = (client.clone(), origin.to_owned(), queue.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = queue.lock().expect("queue").pop();
                let Some(p) = next else { break };
                latencies.push(submit_one(&client, &origin, p).await);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    all
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let cases: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("CASES is a number"))
        .unwrap_or(2000);
    let server =
        std::env::var("CUSTOS_SERVER").expect("set CUSTOS_SERVER to a running vault started with --stamp-bits 0");
    let client = Client::new(&server).expect("client");
    let params = client.intake().await.expect("intake parameters");
    assert_eq!(params.stamp_bits, 0, "start the vault with --stamp-bits 0");
    let intake: Vec<Intake> = params
        .intake
        .iter()
        .map(|p| (p.principal.card.age_recipient(), p.principal.key_id.clone()))
        .collect();
    assert!(!intake.is_empty(), "the vault needs an intake lawyer");
    let warm: Vec<Prepared> = (0..WARMUP).map(|_| prepare(&intake)).collect();
    let items: Vec<Prepared> = (0..cases).map(|_| prepare(&intake)).collect();

    run(&client, &params.origin, warm).await;
    let start = Instant::now();
    let mut latencies = run(&client, &params.origin, items).await;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(latencies.len(), cases, "every submission was acknowledged");
    latencies.sort();
    println!(
        "small cases={cases} warmup={WARMUP} clients={CLIENTS} secs={secs:.3} rate={:.1} p50_ms={:.2} p99_ms={:.2}",
        cases as f64 / secs,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
}
