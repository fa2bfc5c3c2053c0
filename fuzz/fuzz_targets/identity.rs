//! Files and strings a person hands the CLI: identity files (plain and
//! encrypted), cards, codenames, key ids, witness settings, age recipients,
//! and the age identity files a disclosure's recipient verifies with.
#![no_main]
#![forbid(unsafe_code)]

use std::str::FromStr;

use custos::config::WitnessConfig;
use custos::identity::codename::Codename;
use custos::identity::{parse_recipient, parse_verifying_key, Card, Identity, IdentityError, KeyId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Identity::from_text(text);
        if let Ok(card) = Card::from_str(text) {
            // A card prints back to itself, and its key id is the key's.
            assert_eq!(Card::from_str(&card.to_string()).unwrap().to_string(), card.to_string());
        }
        if let Ok(c) = Codename::parse(text) {
            assert!(Codename::parse(c.expose()).is_ok());
        }
        if let Ok(k) = KeyId::from_str(text) {
            assert_eq!(k.to_string().parse::<KeyId>().unwrap(), k);
        }
        let _ = WitnessConfig::from_str(text);
        let _ = parse_recipient(text);
        let _ = parse_verifying_key(text);
        let _ = custos::identity::parse_age_identity_file(text);
    }
    let _ = custos::identity::is_age_identity_file(data);
    // The whole file path, encrypted or not; the passphrase is never given,
    // so an encrypted file stops after its header is read.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity");
    let f = custos::identity::private_file(&path).unwrap();
    std::io::Write::write_all(&mut &f, data).unwrap();
    let _ = Identity::load(&path, || Err(IdentityError::NeedPassphrase));
});
