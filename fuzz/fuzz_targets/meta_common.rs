//! What every metadata target checks (included by each with `#[path]`):
//! detection never panics, a cleaned copy (when one is made) reveals
//! nothing, and cleaning the same input twice gives the same bytes (a
//! resumed upload re-makes them). Seeds (real files) are taken as they
//! are; other inputs get `prefix`, the format's magic, so that they reach
//! its parser.

use custos::meta;

pub fn check(prefix: &[u8], data: &[u8]) {
    let input = if meta::sniff(data).is_some() {
        data.to_vec()
    } else {
        let mut input = prefix.to_vec();
        input.extend_from_slice(data);
        input
    };
    let _ = meta::detect(&input);
    if let Ok(cleaned) = meta::clean(&input) {
        assert!(meta::detect(&cleaned).findings.is_empty());
        assert_eq!(meta::clean(&input).unwrap(), cleaned);
    }
}
