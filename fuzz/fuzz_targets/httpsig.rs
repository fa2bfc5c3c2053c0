//! RFC 9421 `Signature-Input` / `Signature` headers and the proof-of-work
//! stamp header, as the server parses them before it knows who is asking.
#![no_main]
#![forbid(unsafe_code)]

use arbitrary::Arbitrary;
use custos::httpsig::{parse_headers, SignatureParams};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    input: &'a str,
    signature: &'a str,
    stamp: &'a str,
    body: &'a [u8],
    bits: u8,
    now: i64,
}

fuzz_target!(|i: Input| {
    let _ = parse_headers(i.input, i.signature);
    if let Ok(params) = SignatureParams::parse(i.input) {
        // Whatever parses serialises to something that parses the same.
        let again = SignatureParams::parse(&params.serialize()).unwrap();
        assert_eq!(again.serialize(), params.serialize());
    }
    let _ = custos::stamp::check(i.stamp, "fuzz.example/log", i.body, i.bits % 29, i.now);
});
