//! Submitter codenames: eight words from a 7,776-word list (about 103 bits),
//! made on the submitter's device, and the memory-hard derivation that turns a
//! codename into the submitter's Ed25519 signing key and age identity. The
//! server only ever sees the two public keys.
//!
//! The word list is generated rather than borrowed: every word is a
//! consonant, a vowel, a consonant and an ending, all in plain Latin letters,
//! so it reads aloud the same way in Russian, Kazakh and English and types on
//! any phone keyboard. The web client rebuilds the same list from the same
//! four alphabets.

use std::fmt;

use age::secrecy::ExposeSecret;
use ed25519_dalek::SigningKey;
use rand::Rng;
use zeroize::Zeroizing;

use super::IdentityError;

const FIRST: [&str; 12] = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t"];
const VOWEL: [&str; 6] = ["a", "e", "i", "o", "u", "ai"];
const MIDDLE: [&str; 12] = ["b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v"];
const ENDING: [&str; 9] = ["a", "e", "i", "o", "u", "an", "en", "in", "on"];

/// Size of the word list: 12 * 6 * 12 * 9 = 7,776 = 6^5, as a dice list.
pub const WORD_COUNT: usize = FIRST.len() * VOWEL.len() * MIDDLE.len() * ENDING.len();
/// Words per codename: 8 * log2(7776) is about 103 bits.
pub const WORDS: usize = 8;

/// The derivations a codename has had. Each is salted with its own
/// domain and the vault's origin, so the same words give unrelated keys
/// under each; a client opening a case tries each until the vault knows
/// the key (`submitter::open`, the page's `openCase`), so codenames made
/// before a change keep working.
///
/// What a KDF adds: a codename is about 103 random bits, out of reach of
/// any search with or without a KDF. The KDF matters only when part of a
/// codename is known (seen over a shoulder, half remembered by a coercer):
/// each unknown word is about 12.9 bits, and the KDF multiplies the cost
/// of every guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfVersion {
    /// scrypt (2^15, 8, 1): 32 MiB and about 0.2 s in a browser with a
    /// JIT, but about 9 s without one (Tor Browser's "Safer" level turns
    /// the JIT off), for scrypt has no native browser API.
    V1,
    /// PBKDF2-HMAC-SHA256, [`V2_ROUNDS`] rounds, then HKDF-SHA256 to 64
    /// bytes: native code in every browser (`crypto.subtle`), so about
    /// 0.1 s on this machine's core at every security level. Each guess
    /// costs 2^19 SHA-256 compressions: three unknown words (about 2^39
    /// guesses) cost 2^58, half a year of one high-end GPU. Not memory-hard, the
    /// price of running at native speed where scrypt cannot.
    V2,
}

impl KdfVersion {
    /// What new codenames use.
    pub const CURRENT: KdfVersion = KdfVersion::V2;
    /// Every version, newest first (`submitter::open` says in which order
    /// it tries them, and why).
    pub const ALL: [KdfVersion; 2] = [KdfVersion::V2, KdfVersion::V1];

    /// The version's name where one is kept (`v1`, `v2`): in resume
    /// journals and the shared known-answer vectors.
    pub fn name(self) -> &'static str {
        match self {
            KdfVersion::V1 => "v1",
            KdfVersion::V2 => "v2",
        }
    }

    /// The version named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<KdfVersion> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// scrypt cost for the v1 codename KDF: 2^15 * 128 * 8 bytes = 32 MiB of
/// memory, a fraction of a second on a phone with a JIT.
const KDF_LOG_N: u8 = 15;
const KDF_R: u32 = 8;
const KDF_P: u32 = 1;
const KDF_DOMAIN: &str = "custos codename v1\n";

/// PBKDF2 rounds of the v2 codename KDF: 2^18, about 0.1 s of native
/// SHA-256 on this machine, half a second on a cheap phone; with the two
/// compressions of each HMAC round, 2^19 per guess (see [`KdfVersion::V2`]).
pub const V2_ROUNDS: u32 = 1 << 18;
const V2_DOMAIN: &str = "custos codename v2\n";
/// HKDF's `info` for the v2 keys: 32 bytes of Ed25519 seed, then 32 of
/// X25519 secret.
const V2_KEYS_INFO: &[u8] = b"custos codename v2 keys";

/// Word number `i` of the list (`i < WORD_COUNT`).
pub fn word(i: usize) -> String {
    let (i, e) = (i / ENDING.len(), i % ENDING.len());
    let (i, m) = (i / MIDDLE.len(), i % MIDDLE.len());
    let (f, v) = (i / VOWEL.len(), i % VOWEL.len());
    format!("{}{}{}{}", FIRST[f], VOWEL[v], MIDDLE[m], ENDING[e])
}

fn word_index(w: &str) -> Option<usize> {
    (0..WORD_COUNT).find(|&i| word(i) == w)
}

/// A codename: the submitter's only secret. Zeroized on drop, never printed
/// by `Debug`; shown to the submitter once, through [`Codename::expose`].
pub struct Codename(Zeroizing<String>);

impl fmt::Debug for Codename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Codename(..)")
    }
}

impl Codename {
    /// A fresh random codename.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let words: Vec<String> = (0..WORDS).map(|_| word(rng.gen_range(0..WORD_COUNT))).collect();
        Codename(Zeroizing::new(words.join(" ")))
    }

    /// Parse what a person typed: case, extra spaces and hyphens between
    /// words are forgiven; every word must be from the list.
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        let lower = Zeroizing::new(text.to_lowercase());
        let words: Vec<&str> = lower
            .split(|c: char| c.is_whitespace() || c == '-')
            .filter(|w| !w.is_empty())
            .collect();
        if words.len() != WORDS || words.iter().any(|w| word_index(w).is_none()) {
            return Err(IdentityError::Malformed {
                what: "codename",
                why: "expected eight words from the codename list",
            });
        }
        Ok(Codename(Zeroizing::new(words.join(" "))))
    }

    /// The words, for showing to the submitter once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Derive the submitter's keys for the vault named `origin`, as new
    /// codenames are ([`KdfVersion::CURRENT`]).
    pub fn derive(&self, origin: &str) -> SubmitterKeys {
        self.derive_version(KdfVersion::CURRENT, origin)
    }

    /// Derive the submitter's keys for the vault named `origin` with the
    /// KDF `version`.
    pub fn derive_version(&self, version: KdfVersion, origin: &str) -> SubmitterKeys {
        let mut out = Zeroizing::new([0u8; 64]);
        match version {
            KdfVersion::V1 => {
                let salt = [KDF_DOMAIN.as_bytes(), origin.as_bytes()].concat();
                let params = scrypt::Params::new(KDF_LOG_N, KDF_R, KDF_P, 64).expect("constant parameters are valid");
                scrypt::scrypt(self.0.as_bytes(), &salt, &params, out.as_mut())
                    .expect("64 bytes is a valid output length");
            }
            KdfVersion::V2 => {
                let salt = [V2_DOMAIN.as_bytes(), origin.as_bytes()].concat();
                let mut stretched = Zeroizing::new([0u8; 32]);
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(self.0.as_bytes(), &salt, V2_ROUNDS, stretched.as_mut());
                hkdf::Hkdf::<sha2::Sha256>::new(None, stretched.as_ref())
                    .expand(V2_KEYS_INFO, out.as_mut())
                    .expect("64 bytes is a valid HKDF-SHA256 output length");
            }
        }
        let seed: &[u8; 32] = out[..32].try_into().expect("32 bytes");
        let signing = SigningKey::from_bytes(seed);
        let age = age_identity_from_bytes(&out[32..]);
        SubmitterKeys { signing, age }
    }
}

/// Build an age X25519 identity from 32 secret bytes by way of its Bech32
/// text form, the only constructor `age` offers.
fn age_identity_from_bytes(bytes: &[u8]) -> age::x25519::Identity {
    let hrp = bech32::Hrp::parse("age-secret-key-").expect("valid HRP");
    let text = Zeroizing::new(age_core::primitives::bech32_encode(hrp, bytes).to_uppercase());
    text.parse().expect("32 bytes always form a valid X25519 secret")
}

/// The keys a codename stands for. `Debug` shows only the key id.
pub struct SubmitterKeys {
    signing: SigningKey,
    age: age::x25519::Identity,
}

impl fmt::Debug for SubmitterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubmitterKeys({})", super::KeyId::of(&self.signing.verifying_key()))
    }
}

impl SubmitterKeys {
    /// The request-signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
    /// The age identity that opens the submitter's own envelope.
    pub fn age_identity(&self) -> &age::x25519::Identity {
        &self.age
    }
    /// Key id of the signing key.
    pub fn key_id(&self) -> super::KeyId {
        super::KeyId::of(&self.signing.verifying_key())
    }
    /// Whether two key sets are the same (for tests and re-derivation checks).
    pub fn same_as(&self, other: &SubmitterKeys) -> bool {
        self.signing.verifying_key() == other.signing.verifying_key()
            && self.age.to_string().expose_secret() == other.age.to_string().expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_7776_distinct_words() {
        let mut all: Vec<String> = (0..WORD_COUNT).map(word).collect();
        assert_eq!(all.len(), 7776);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 7776);
    }

    #[test]
    fn codenames_parse_forgivingly_and_derive_stable_keys() {
        let c = Codename::generate();
        let typed = c.expose().to_uppercase().replace(' ', " - ");
        let again = Codename::parse(&typed).unwrap();
        assert_eq!(again.expose(), c.expose());
        let (a, b) = (c.derive("vault.example"), again.derive("vault.example"));
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c.derive("other.example")), "the origin salts the KDF");
        let v1 = c.derive_version(KdfVersion::V1, "vault.example");
        assert!(!a.same_as(&v1), "each version has its own domain");
        assert!(v1.same_as(&again.derive_version(KdfVersion::V1, "vault.example")));
    }

    #[test]
    fn wrong_codenames_are_refused() {
        assert!(Codename::parse("bakan bakan").is_err());
        let c = Codename::generate();
        assert!(Codename::parse(&format!("{} zzzz", c.expose())).is_err());
        assert_eq!(format!("{c:?}"), "Codename(..)");
    }
}
