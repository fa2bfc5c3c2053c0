//! What the vault pays to check one proof-of-work stamp of each kind at the
//! default difficulty, against the reference of one SHA-256 of the same
//! input in the same run (the least any check must do). The sender's side
//! is `web/bench.mjs`. Run: `cargo bench --bench stamp`.

use std::time::Instant;

use custos::stamp::{self, DEFAULT_BITS};
use sha2::{Digest, Sha256};

const ORIGIN: &str = "bench.example/log";
const CHECKS: u32 = 2_000;

fn main() {
    let body = vec![b'x'; 2048];
    let digest: [u8; 32] = Sha256::digest(&body).into();
    let time = 1_800_000_000;
    let t0 = Instant::now();
    for _ in 0..CHECKS {
        std::hint::black_box(Sha256::digest(std::hint::black_box(&digest)));
    }
    let reference = t0.elapsed().as_secs_f64() / f64::from(CHECKS);
    for (kind, stamp) in [
        ("v1", stamp::mint(ORIGIN, &body, DEFAULT_BITS, time)),
        ("v2", stamp::mint_v2(ORIGIN, &body, DEFAULT_BITS, time)),
    ] {
        let t0 = Instant::now();
        for _ in 0..CHECKS {
            stamp::check_digest(&stamp, ORIGIN, &digest, DEFAULT_BITS, time).expect("the stamp just minted");
        }
        let each = t0.elapsed().as_secs_f64() / f64::from(CHECKS);
        println!(
            "stamp {kind} check: {:.1} µs each ({:.0}x one SHA-256, {:.2} µs)",
            each * 1e6,
            each / reference,
            reference * 1e6
        );
    }
}
