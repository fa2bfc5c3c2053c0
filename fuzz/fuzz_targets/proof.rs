//! C2SP tlog-proof files (bundles) and the RFC 9162 proof verifiers, with
//! sizes, indices and hashes all chosen by the fuzzer.
#![no_main]
#![forbid(unsafe_code)]

use arbitrary::Arbitrary;
use custos::custody::merkle::{verify_consistency, verify_inclusion, Hash};
use custos::custody::tlog_proof::TlogProof;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    index: u64,
    size: u64,
    size2: u64,
    leaf: Hash,
    proof: Vec<Hash>,
    root: &'a [u8],
    root2: &'a [u8],
}

fuzz_target!(|input: Input| {
    if let Ok(p) = TlogProof::parse(input.text) {
        // What parses prints back to the same proof.
        assert_eq!(TlogProof::parse(&p.to_text()).unwrap(), p);
        let _ = verify_inclusion(p.index, input.size, &input.leaf, &p.hashes, input.root);
    }
    let _ = verify_inclusion(input.index, input.size, &input.leaf, &input.proof, input.root);
    let _ = verify_consistency(input.size, input.size2, &input.proof, input.root, input.root2);
});
