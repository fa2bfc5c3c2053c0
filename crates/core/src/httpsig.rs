//! RFC 9421 HTTP Message Signatures with Ed25519, and RFC 9530
//! `Content-Digest` (sha-256), in the one profile custos uses. Pure logic:
//! the client signs with it, the server checks with it, and auditors re-check
//! the signatures stored in custody events with it, offline.
//!
//! Profile: one signature labelled `sig1`; parameters `created`, `expires`,
//! `nonce`, `keyid`, `alg="ed25519"`; covered components are a list of
//! derived components (`@method`, `@target-uri`) and lower-case header names;
//! the target is in its one canonical form ([`canonical_target`]).
//!
//! Hand-written: general RFC 9421 libraries accept many profiles, and the
//! custody log keeps every signed request for ever, so custos accepts
//! exactly one, which the auditor and the page's script re-implement from
//! the shared vectors (`tests/vectors/web-client.json`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The only signature label custos sends or accepts.
pub const LABEL: &str = "sig1";

/// Longest validity window a client may ask for. Five minutes covers slow
/// networks and Tor circuits while keeping the replay cache small.
pub const MAX_VALIDITY_SECS: i64 = 300;

/// Clock skew tolerated for `created` in the future.
pub const MAX_FUTURE_SKEW_SECS: i64 = 30;

/// Longest nonce accepted; nonces are stored until they expire.
const MAX_NONCE_LEN: usize = 64;

/// Most covered components accepted in one signature.
const MAX_COMPONENTS: usize = 16;

/// Why a request signature was refused. Each variant maps to its own stable
/// error code at the API.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// No `Signature` or `Signature-Input` header.
    #[error("request is not signed")]
    Missing,
    /// The headers do not follow the custos profile of RFC 9421.
    #[error("malformed signature headers: {0}")]
    Malformed(&'static str),
    /// A required component is not covered by the signature.
    #[error("signature does not cover {0}")]
    MissingComponent(String),
    /// `expires` has passed or `created` is too old.
    #[error("signature has expired")]
    Expired,
    /// `created` is in the future.
    #[error("signature is dated in the future")]
    Future,
    /// The Ed25519 signature does not verify over the rebuilt base.
    #[error("signature does not verify")]
    Invalid,
    /// The body does not match its `Content-Digest`.
    #[error("content digest does not match the body")]
    DigestMismatch,
}

impl SignatureError {
    /// The HTTP status and stable error code the API answers with: a
    /// request that is not what the profile says is a 400, one that is
    /// well-formed but not (or no longer) valid is a 401.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            SignatureError::Missing => (401, "signature_missing"),
            SignatureError::Malformed(_) => (400, "signature_malformed"),
            SignatureError::MissingComponent(_) => (400, "signature_incomplete"),
            SignatureError::Expired => (401, "signature_expired"),
            SignatureError::Future => (401, "signature_future"),
            SignatureError::Invalid => (401, "signature_invalid"),
            SignatureError::DigestMismatch => (400, "digest_mismatch"),
        }
    }
}

/// The parameters of one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    /// Covered component identifiers, in order.
    pub components: Vec<String>,
    /// Unix time the signature was made.
    pub created: i64,
    /// Unix time after which it is void.
    pub expires: i64,
    /// Single-use value against replay.
    pub nonce: String,
    /// Key id of the signer.
    pub keyid: String,
}

impl SignatureParams {
    /// Serialise as the RFC 8941 inner list used in `Signature-Input` and in
    /// the `@signature-params` line of the base.
    pub fn serialize(&self) -> String {
        let comps: Vec<String> = self.components.iter().map(|c| format!("\"{c}\"")).collect();
        format!(
            "({});created={};expires={};nonce=\"{}\";keyid=\"{}\";alg=\"ed25519\"",
            comps.join(" "),
            self.created,
            self.expires,
            self.nonce,
            self.keyid
        )
    }

    /// Parse a serialised inner list (the value after `sig1=`).
    pub fn parse(s: &str) -> Result<Self, SignatureError> {
        let m = SignatureError::Malformed;
        let rest = s.strip_prefix('(').ok_or(m("expected a component list"))?;
        let (list, params) = rest.split_once(')').ok_or(m("unterminated component list"))?;
        let mut components = Vec::new();
        for item in list.split(' ').filter(|i| !i.is_empty()) {
            let name = item
                .strip_prefix('"')
                .and_then(|i| i.strip_suffix('"'))
                .filter(|n| valid_component(n))
                .ok_or(m("bad component name"))?;
            if components.iter().any(|c| c == name) {
                return Err(m("duplicate component"));
            }
            components.push(name.to_owned());
        }
        if components.len() > MAX_COMPONENTS {
            return Err(m("too many components"));
        }
        let (mut created, mut expires, mut nonce, mut keyid, mut alg) = (None, None, None, None, None);
        for p in params.split(';').skip(1) {
            let (k, v) = p.split_once('=').ok_or(m("parameter without value"))?;
            let quoted = || {
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .filter(|v| {
                        !v.is_empty()
                            && v.len() <= MAX_NONCE_LEN
                            && v.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':' || b == b'.')
                    })
                    .map(str::to_owned)
                    .ok_or(m("bad string parameter"))
            };
            let int = || {
                v.parse::<i64>()
                    .ok()
                    .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or(m("bad integer parameter"))
            };
            let slot_taken = match k {
                "created" => created.replace(int()?).is_some(),
                "expires" => expires.replace(int()?).is_some(),
                "nonce" => nonce.replace(quoted()?).is_some(),
                "keyid" => keyid.replace(quoted()?).is_some(),
                "alg" => alg.replace(quoted()?).is_some(),
                _ => return Err(m("unknown parameter")),
            };
            if slot_taken {
                return Err(m("duplicate parameter"));
            }
        }
        if !params.is_empty() && !params.starts_with(';') {
            return Err(m("junk after component list"));
        }
        if alg.as_deref() != Some("ed25519") {
            return Err(m("alg must be ed25519"));
        }
        let params = SignatureParams {
            components,
            created: created.ok_or(m("missing created"))?,
            expires: expires.ok_or(m("missing expires"))?,
            nonce: nonce.ok_or(m("missing nonce"))?,
            keyid: keyid.ok_or(m("missing keyid"))?,
        };
        // Only the canonical form is accepted, so the stored text and the
        // parsed value can never disagree.
        if params.serialize() != s {
            return Err(m("not in canonical form"));
        }
        Ok(params)
    }

    /// Check the validity window against `now` (Unix seconds).
    pub fn check_time(&self, now: i64) -> Result<(), SignatureError> {
        if self.expires <= self.created || self.expires - self.created > MAX_VALIDITY_SECS {
            return Err(SignatureError::Malformed("validity window must be 1 to 300 seconds"));
        }
        if self.created > now + MAX_FUTURE_SKEW_SECS {
            return Err(SignatureError::Future);
        }
        if self.expires <= now {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

fn valid_component(name: &str) -> bool {
    matches!(name, "@method" | "@target-uri")
        || (!name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
}

/// A signed request as stored in a custody event: enough to rebuild the
/// signature base and check it offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRequest {
    /// The `@signature-params` value exactly as signed.
    pub params: String,
    /// Each covered component's value, in the order of `params`.
    pub values: Vec<String>,
    /// The Ed25519 signature, base64.
    pub signature: String,
    /// The request body, base64, when the event needs it to be checkable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl SignedRequest {
    /// `method url` (and `body`, with its `content-digest`) signed by `key`
    /// as a client signs it at `created`, in the form events store: for
    /// tools that build logs directly (benchmarks, tests of the verifier).
    pub fn sign(key: &SigningKey, method: &str, url: &str, body: Option<&[u8]>, created: i64) -> SignedRequest {
        let mut components = vec!["@method".to_owned(), "@target-uri".to_owned()];
        let mut values = vec![method.to_owned(), url.to_owned()];
        if let Some(b) = body {
            components.push("content-digest".into());
            values.push(content_digest(b));
        }
        let params = SignatureParams {
            components,
            created,
            expires: created + 60,
            nonce: hex::encode(rand::random::<[u8; 16]>()),
            keyid: crate::identity::KeyId::of(&key.verifying_key()).to_string(),
        };
        let text = params.serialize();
        let base = signature_base(&params, &values);
        SignedRequest {
            params: text,
            values,
            signature: B64.encode(key.sign(base.as_bytes()).to_bytes()),
            body: body.map(|b| B64.encode(b)),
        }
    }

    /// Parsed parameters.
    pub fn parsed(&self) -> Result<SignatureParams, SignatureError> {
        SignatureParams::parse(&self.params)
    }

    /// Value of a covered component, if covered.
    pub fn value(&self, component: &str) -> Option<&str> {
        let p = self.parsed().ok()?;
        let i = p.components.iter().position(|c| c == component)?;
        self.values.get(i).map(String::as_str)
    }

    /// Verify the signature with `key`, and the stored body (if any) against
    /// the covered `content-digest`. Time is not checked: a stored request
    /// was checked for freshness when it arrived.
    pub fn verify(&self, key: &VerifyingKey) -> Result<SignatureParams, SignatureError> {
        let (params, check, digest) = self.prepare()?;
        check.verify(key)?;
        digest?;
        Ok(params)
    }

    /// Everything [`verify`](Self::verify) does but the Ed25519 check, for
    /// a verifier that runs many of those together: the parameters, the
    /// check left to run, and the body's digest check, which `verify`
    /// reports only after the signature (an error here comes first in
    /// `verify` too).
    pub fn prepare(&self) -> Result<(SignatureParams, SignatureCheck, Result<(), SignatureError>), SignatureError> {
        let params = self.parsed()?;
        if params.components.len() != self.values.len() {
            return Err(SignatureError::Malformed("component values do not match the list"));
        }
        let base = signature_base(&params, &self.values);
        let sig = B64
            .decode(&self.signature)
            .map_err(|_| SignatureError::Malformed("signature is not base64"))?;
        let signature = Signature::from_slice(&sig).map_err(|_| SignatureError::Malformed("signature length"))?;
        let digest = match &self.body {
            None => Ok(()),
            Some(body) => match B64.decode(body) {
                Err(_) => Err(SignatureError::Malformed("body is not base64")),
                Ok(body) if self.value("content-digest") != Some(content_digest(&body).as_str()) => {
                    Err(SignatureError::DigestMismatch)
                }
                Ok(_) => Ok(()),
            },
        };
        Ok((params, SignatureCheck { base, signature }, digest))
    }

    /// The stored body, decoded.
    pub fn body_bytes(&self) -> Option<Vec<u8>> {
        self.body.as_ref().and_then(|b| B64.decode(b).ok())
    }
}

/// The Ed25519 check of a stored request, its base rebuilt: what
/// [`SignedRequest::prepare`] leaves to run, on any thread.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    base: String,
    signature: Signature,
}

impl SignatureCheck {
    /// Whether `key` made the signature over the base: ed25519-dalek's
    /// `verify`, the one check the vault ran when the request arrived.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), SignatureError> {
        key.verify(self.base.as_bytes(), &self.signature)
            .map_err(|_| SignatureError::Invalid)
    }

    /// The signed message: the rebuilt signature base.
    pub fn message(&self) -> &[u8] {
        self.base.as_bytes()
    }

    /// The signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}

/// Whether `path` and `query` are the one form of a request to a route
/// that takes the query `names` (see [`SIGNED_QUERIES`]): segments of
/// unreserved characters only (so no percent-escape, whose decoded form
/// the router would see instead of the signed one), no empty, `.` or `..`
/// segment, no trailing slash; and a query, if any, of the given names in
/// order, each once, each a decimal number without leading zeros. Pure, so
/// the server, the auditor and the fuzz target agree on it.
pub fn canonical_target(path: &str, query: Option<&str>, names: &[(&str, bool)]) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments_ok = rest.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    });
    if !segments_ok {
        return false;
    }
    let Some(query) = query else {
        return names.iter().all(|(_, required)| !required);
    };
    let mut allowed = names.iter();
    for pair in query.split('&') {
        let Some((name, value)) = pair.split_once('=') else {
            return false;
        };
        // Names must come in the listed order: skip optional ones not sent.
        let found = loop {
            match allowed.next() {
                Some((n, _)) if *n == name => break true,
                Some((_, false)) => continue,
                _ => break false,
            }
        };
        let decimal = !value.is_empty()
            && value.len() <= 20
            && value.bytes().all(|b| b.is_ascii_digit())
            && (value == "0" || !value.starts_with('0'))
            && value.parse::<u64>().is_ok();
        if !found || !decimal {
            return false;
        }
    }
    allowed.all(|(_, required)| !required)
}

/// RFC 9421 section 2.5 signature base.
pub fn signature_base(params: &SignatureParams, values: &[String]) -> String {
    let mut base = String::new();
    for (name, value) in params.components.iter().zip(values) {
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {}", params.serialize()));
    base
}

/// RFC 9530 `Content-Digest` value for `body` with sha-256.
pub fn content_digest(body: &[u8]) -> String {
    content_digest_of(&Sha256::digest(body).into())
}

/// RFC 9530 `Content-Digest` value for a body whose SHA-256 is `sha256`
/// (a body read in pieces is hashed as they come).
pub fn content_digest_of(sha256: &[u8; 32]) -> String {
    format!("sha-256=:{}:", B64.encode(sha256))
}

/// Sign: returns the `Signature-Input` and `Signature` header values.
pub fn sign(key: &SigningKey, params: &SignatureParams, values: &[String]) -> (String, String) {
    let base = signature_base(params, values);
    let sig = key.sign(base.as_bytes());
    (
        format!("{LABEL}={}", params.serialize()),
        format!("{LABEL}=:{}:", B64.encode(sig.to_bytes())),
    )
}

/// Parse the `Signature-Input` and `Signature` header values of a request
/// into the params text and the raw signature (base64).
pub fn parse_headers(input: &str, signature: &str) -> Result<(SignatureParams, String, String), SignatureError> {
    let m = SignatureError::Malformed;
    let params_text = input
        .strip_prefix(LABEL)
        .and_then(|s| s.strip_prefix('='))
        .ok_or(m("expected one signature labelled sig1"))?;
    let sig = signature
        .strip_prefix(LABEL)
        .and_then(|s| s.strip_prefix("=:"))
        .and_then(|s| s.strip_suffix(':'))
        .ok_or(m("expected sig1=:base64:"))?;
    let params = SignatureParams::parse(params_text)?;
    let raw = B64.decode(sig).map_err(|_| m("signature is not base64"))?;
    if raw.len() != 64 {
        return Err(m("signature length"));
    }
    Ok((params, params_text.to_owned(), sig.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SignatureParams {
        SignatureParams {
            components: vec!["@method".into(), "@target-uri".into(), "content-digest".into()],
            created: 1_700_000_000,
            expires: 1_700_000_060,
            nonce: "abc123".into(),
            keyid: "0011223344556677".into(),
        }
    }

    #[test]
    fn base_follows_rfc_9421_layout() {
        let p = params();
        let base = signature_base(&p, &["POST".into(), "http://h/v1/x".into(), "sha-256=:x:".into()]);
        assert_eq!(
            base,
            "\"@method\": POST\n\"@target-uri\": http://h/v1/x\n\"content-digest\": sha-256=:x:\n\"@signature-params\": (\"@method\" \"@target-uri\" \"content-digest\");created=1700000000;expires=1700000060;nonce=\"abc123\";keyid=\"0011223344556677\";alg=\"ed25519\""
        );
    }

    #[test]
    fn params_round_trip_and_non_canonical_forms_are_refused() {
        let text = params().serialize();
        assert_eq!(SignatureParams::parse(&text).unwrap(), params());
        for bad in [
            text.replace(";alg=\"ed25519\"", ""),
            text.replace("ed25519", "hmac-sha256"),
            text.replace("created=", "created=+"),
            text.replace("(\"@method\"", "(\"@method\" \"@method\""),
            text.replace(";nonce", ";foo=1;nonce"),
            format!("{text};created=1"),
            text.replace('(', ""),
            text.replace("\"@method\" ", "\"@method\"  "),
        ] {
            assert!(SignatureParams::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_one_form_of_a_target_is_canonical() {
        let none: &[(&str, bool)] = &[];
        let entries: &[(&str, bool)] = &[("start", true), ("limit", false)];
        for good in ["/v1/cases", "/v1/cases/0a1b/withdraw", "/v1/a-b_c.d~e"] {
            assert!(canonical_target(good, None, none), "{good}");
        }
        for (path, query) in [
            ("/v1/cases/c/withdraw", Some("x=1")),
            ("/v1/cases/c/withdraw", Some("")),
            ("/v1/cases/%63/withdraw", None),
            ("/v1/cases/c/./withdraw", None),
            ("/v1/cases/c/../c/withdraw", None),
            ("/v1/cases//c", None),
            ("/v1/cases/", None),
            ("/", None),
            ("", None),
            ("v1/cases", None),
            ("/v1/cases/c d", None),
            ("/v1/cases/c;x", None),
        ] {
            assert!(!canonical_target(path, query, none), "{path} {query:?}");
        }
        for good in ["start=0", "start=10", "start=10&limit=5"] {
            assert!(canonical_target("/v1/log/entries", Some(good), entries), "{good}");
        }
        for bad in [
            "start=01",
            "limit=5&start=0",
            "start=0&x=1",
            "start=0&start=1",
            "start=",
            "start=-1",
            "start=+1",
            "start=99999999999999999999",
            "start=0&limit=5&",
            "limit=5",
            "start",
        ] {
            assert!(!canonical_target("/v1/log/entries", Some(bad), entries), "{bad}");
        }
        assert!(!canonical_target("/v1/log/entries", None, entries));
    }

    #[test]
    fn time_window_rules() {
        let p = params();
        assert_eq!(p.check_time(p.created), Ok(()));
        assert_eq!(p.check_time(p.expires), Err(SignatureError::Expired));
        assert_eq!(
            p.check_time(p.created - MAX_FUTURE_SKEW_SECS - 1),
            Err(SignatureError::Future)
        );
        let long = SignatureParams {
            expires: p.created + MAX_VALIDITY_SECS + 1,
            ..p
        };
        assert!(matches!(
            long.check_time(long.created),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn stored_requests_verify_and_detect_altered_values_and_bodies() {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let body = b"{\"a\":1}".to_vec();
        let p = params();
        let values = vec!["POST".to_string(), "http://h/v1/x".to_string(), content_digest(&body)];
        let (input, sig) = sign(&key, &p, &values);
        let (parsed, text, sig) = parse_headers(&input, &sig).unwrap();
        assert_eq!(parsed, p);
        let stored = SignedRequest {
            params: text,
            values,
            signature: sig,
            body: Some(B64.encode(&body)),
        };
        stored.verify(&key.verifying_key()).unwrap();

        let mut altered = stored.clone();
        altered.values[1] = "http://h/v1/y".into();
        assert_eq!(altered.verify(&key.verifying_key()), Err(SignatureError::Invalid));

        let mut other_body = stored.clone();
        other_body.body = Some(B64.encode(b"{\"a\":2}"));
        assert_eq!(
            other_body.verify(&key.verifying_key()),
            Err(SignatureError::DigestMismatch)
        );

        let other_key = SigningKey::from_bytes(&[4u8; 32]);
        assert_eq!(stored.verify(&other_key.verifying_key()), Err(SignatureError::Invalid));
    }
}
