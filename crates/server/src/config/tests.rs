//! Unit tests of the settings: layering, refusals by name, lists.

use super::*;

/// A witness's cosigning key, for settings that name one.
fn witness_vkey() -> String {
    custos_core::custody::cosignature::WitnessSigner::new("w.example", ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
        .unwrap()
        .verifier()
        .vkey()
}

fn env(pairs: &[(&str, &str)]) -> Layer {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Layer::from_env(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap()
}

#[test]
fn flags_beat_env_which_beats_the_file() {
    let file = Layer::from_toml(
        "custos.toml",
        "listen = \"127.0.0.1:1\"\nstamp_bits = 10\nlog = \"debug\"\nmax_upload_bytes = 1000\n",
    )
    .unwrap();
    let env = env(&[("CUSTOS_STAMP_BITS", "12"), ("CUSTOS_LOG", "warn")]);
    let flags = Layer {
        stamp_bits: Some(14),
        ..Layer::default()
    };
    let (s, src) = Settings::resolve(file, env, flags).unwrap();
    assert_eq!(s.listen, "127.0.0.1:1".parse().unwrap());
    assert_eq!(src["listen"], Source::File);
    assert_eq!((s.stamp_bits, src["stamp_bits"]), (14, Source::Flag));
    assert_eq!((s.log.as_str(), src["log"]), ("warn", Source::Env));
    assert_eq!(s.max_upload_bytes, 1000);
    assert_eq!(src["shutdown_grace_secs"], Source::Default);
    assert_eq!(s.shutdown_grace, SHUTDOWN_GRACE);
}

#[test]
fn unknown_keys_and_bad_values_are_refused_by_name() {
    let e = Layer::from_toml("custos.toml", "max_upload_byte = 5\n").unwrap_err();
    assert!(e.to_string().contains("max_upload_byte"), "{e}");
    let cases: [(&str, &str); 7] = [
        ("stamp_bits = 40", "stamp_bits"),
        ("listen = \"localhost\"", "listen"),
        ("public_url = [\"https://a.example/path\"]", "public_url"),
        ("witness = [\"https://w.example\"]", "witness"),
        ("client_timeout_secs = 0", "client_timeout_secs"),
        ("shutdown_grace_secs = 999999", "shutdown_grace_secs"),
        ("log = \"[[\"", "log"),
    ];
    for (text, key) in cases {
        let file = Layer::from_toml("custos.toml", text).unwrap();
        let e = Settings::resolve(file, Layer::default(), Layer::default()).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Value { key: k, from: Source::File, .. } if *k == key),
            "{text}: {e}"
        );
    }
    let e = Layer::from_env(|n| (n == "CUSTOS_MAX_UPLOAD_BYTES").then(|| "lots".into())).unwrap_err();
    assert!(e.to_string().contains("max_upload_bytes (from environment)"), "{e}");
}

#[test]
fn lists_split_as_documented_and_print_back() {
    let vkey = witness_vkey();
    let env = env(&[
        ("CUSTOS_PUBLIC_URL", "https://a.example/, http://b.onion"),
        (
            "CUSTOS_WITNESS",
            &format!("https://u:secret@w.example/x,{vkey}  https://v.example,{vkey}"),
        ),
    ]);
    let (s, src) = Settings::resolve(Layer::default(), env, Layer::default()).unwrap();
    assert_eq!(s.public_urls, ["https://a.example", "http://b.onion"]);
    assert_eq!(s.witnesses.len(), 2);
    let text = s.to_toml(&src);
    assert!(!text.contains("secret"), "{text}");
    assert!(text.contains("https://***@w.example/x"), "{text}");
    // What is printed reads back as the same settings.
    let mut stripped = String::new();
    for line in text.lines() {
        stripped.push_str(line.split("    #").next().unwrap());
        stripped.push('\n');
    }
    assert!(text.contains("# metrics_listen is not set"), "{text}");
    let again = Layer::from_toml("printed", &stripped).unwrap();
    let (s2, _) = Settings::resolve(again, Layer::default(), Layer::default()).unwrap();
    assert_eq!(s2.public_urls, s.public_urls);
    assert_eq!(s2.stamp_bits, s.stamp_bits);
    assert_eq!(s.to_json()["public_url"][1], "http://b.onion");
    assert!(s.to_json()["metrics_listen"].is_null());
}

/// A valid value of `key` as the file holds it: its default, or an example
/// where the default is unset or an empty list.
fn sample(key: &str, default: Option<toml::Value>) -> toml::Value {
    match (key, default) {
        (_, Some(v)) if v.as_array().is_none_or(|items| !items.is_empty()) => v,
        ("metrics_listen", _) => "127.0.0.1:9630".into(),
        ("public_url", _) => vec!["https://vault.example.org"].into(),
        ("witness", _) => vec![format!("https://w.example,{}", witness_vkey())].into(),
        ("smtp_relay", _) => "smtp.example.org".into(),
        ("smtp_credentials_file", _) => "/etc/custos/smtp-credentials".into(),
        ("smtp_from", _) => "vault@example.org".into(),
        ("s3_endpoint", _) => "https://s3.example.org".into(),
        ("s3_bucket", _) => "custos-chunks".into(),
        ("s3_region", _) => "garage".into(),
        ("s3_credentials_file", _) => "/etc/custos/s3-credentials".into(),
        (key, _) => panic!("{key} has no default to try: give it an example here"),
    }
}

/// What the README promises of every key, walked over all of them: it is
/// also a `CUSTOS_*` variable of the same name in capitals and a flag of
/// the same name with dashes, whose help names the variable; each layer
/// sets it, and the higher layer wins. A setting in the file alone cannot
/// be declared (`settings!` makes all three from one entry); this pins
/// the names the entry spells out and the way through each layer.
#[test]
fn every_key_is_a_file_key_a_variable_and_a_flag() {
    let command = <Layer as clap::Args>::augment_args(clap::Command::new("custos"));
    assert_eq!(command.get_arguments().count(), KEYS.len(), "a flag that is no setting");
    let defaults = Settings::default().entries();
    assert_eq!(defaults.len(), KEYS.len());
    let plain = |v: &toml::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    for (&(key, var), (printed, default)) in KEYS.iter().zip(defaults) {
        assert_eq!(key, printed, "printed in the order of KEYS");
        assert_eq!(var, format!("CUSTOS_{}", key.to_uppercase()));
        let flag = format!("--{}", key.replace('_', "-"));
        let arg = command.get_arguments().find(|a| a.get_id() == key).expect("a flag");
        assert_eq!(arg.get_long().map(|l| format!("--{l}")), Some(flag.clone()));
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        assert!(help.contains(var), "{flag}'s help names {var}: {help}");

        let value = sample(key, default);
        // One item for a list, so that its separator is not at stake here.
        let text = match &value {
            toml::Value::Array(items) => plain(&items[0]),
            v => plain(v),
        };
        let file = Layer::from_toml("custos.toml", &format!("{key} = {value}")).unwrap();
        let env = Layer::from_env(|name| (name == var).then(|| text.clone())).unwrap();
        let matches = command.clone().try_get_matches_from(["custos", &flag, &text]).unwrap();
        let flags = <Layer as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        let none = Layer::default;
        for (layers, from) in [
            ((file.clone(), none(), none()), Source::File),
            ((none(), env.clone(), none()), Source::Env),
            ((none(), none(), flags.clone()), Source::Flag),
            ((file.clone(), env.clone(), none()), Source::Env),
            ((file.clone(), env.clone(), flags.clone()), Source::Flag),
        ] {
            let (s, src) = Settings::resolve(layers.0, layers.1, layers.2).unwrap();
            assert_eq!(src[key], from, "{key}");
            let got = s.entries().into_iter().find(|(k, _)| *k == key).unwrap().1;
            assert_eq!(got, Some(value.clone()), "{key} from {from}");
        }
    }
}

/// The digest's settings: plain SMTP only to this machine, a schedule
/// only with a relay and a sender, and each value checked by name.
#[test]
fn mail_settings_refuse_plain_smtp_across_the_network() {
    let resolve = |text: &str| {
        let file = Layer::from_toml("custos.toml", text).unwrap();
        Settings::resolve(file, Layer::default(), Layer::default())
    };
    let (s, _) =
        resolve("digest_interval_secs = 86400\nsmtp_relay = \"smtp.example.org\"\nsmtp_from = \"vault@example.org\"\n")
            .unwrap();
    assert_eq!(
        s.smtp_security,
        SmtpSecurity::StartTls,
        "STARTTLS unless told otherwise"
    );
    assert_eq!(s.smtp_port, 587);
    for loopback in ["localhost", "127.0.0.1", "::1", "127.0.0.53"] {
        let text = format!("smtp_security = \"plain\"\nsmtp_relay = \"{loopback}\"\n");
        resolve(&text).unwrap();
    }
    // The floor: an hour to a relay elsewhere, seconds only to this machine.
    let with = |secs: u64, relay: &str| {
        format!("digest_interval_secs = {secs}\nsmtp_relay = \"{relay}\"\nsmtp_from = \"vault@example.org\"\n")
    };
    resolve(&with(3600, "smtp.example.org")).unwrap();
    resolve(&with(2, "127.0.0.1")).unwrap();
    resolve(&with(2, "localhost")).unwrap();
    for (secs, relay) in [(3599, "smtp.example.org"), (1, "10.0.0.5")] {
        let e = resolve(&with(secs, relay)).unwrap_err();
        assert!(
            matches!(
                &e,
                ConfigError::Value {
                    key: "digest_interval_secs",
                    ..
                }
            ) && e.to_string().contains("at least 3600"),
            "{e}"
        );
    }
    for (text, key) in [
        (
            "smtp_security = \"plain\"\nsmtp_relay = \"smtp.example.org\"",
            "smtp_security",
        ),
        ("smtp_security = \"plain\"\nsmtp_relay = \"10.0.0.5\"", "smtp_security"),
        ("smtp_security = \"none\"", "smtp_security"),
        ("digest_interval_secs = 60", "digest_interval_secs"),
        (
            "digest_interval_secs = 60\nsmtp_relay = \"smtp.example.org\"",
            "digest_interval_secs",
        ),
        ("digest_interval_secs = 99999999", "digest_interval_secs"),
        ("smtp_relay = \"smtp.example.org:587\"", "smtp_relay"),
        ("smtp_relay = \"smtp://smtp.example.org\"", "smtp_relay"),
        ("smtp_port = 0", "smtp_port"),
        ("smtp_port = 70000", "smtp_port"),
        ("smtp_from = \"Vault <vault@example.org>\"", "smtp_from"),
        ("smtp_from = \"vault@example.org\\r\\nBcc: x@example.net\"", "smtp_from"),
        ("smtp_credentials_file = \"\"", "smtp_credentials_file"),
    ] {
        let e = resolve(text).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Value { key: k, .. } if *k == key),
            "{text}: {e}"
        );
    }
}
