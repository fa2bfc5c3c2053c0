//! The C2SP `tlog-proof@v1` text format: an entry's index, its inclusion
//! proof and the (co)signed checkpoint it is proven against, in one file that
//! can be checked offline. Owns only the text; checking is `audit`'s job.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::merkle::Hash;

/// First line of every proof.
const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// RFC 9162 inclusion proofs in a tree of at most 2^63 entries have at most
/// 63 hashes; anything longer is not a proof.
const MAX_PROOF_HASHES: usize = 63;

/// A parsed tlog-proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Index of the entry in the log.
    pub index: u64,
    /// Inclusion proof, from the leaf's sibling up.
    pub hashes: Vec<Hash>,
    /// The checkpoint note, verbatim (signature lines included).
    pub checkpoint: String,
}

/// Why a proof file was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed tlog-proof: {0}")]
pub struct TlogProofError(&'static str);

impl TlogProof {
    /// The text form. custos writes no `extra` line.
    pub fn to_text(&self) -> String {
        let mut out = format!("{HEADER}\nindex {}\n", self.index);
        for h in &self.hashes {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parse the text form strictly: one spelling per proof. An `extra`
    /// line is accepted and ignored, as the format says it is unauthenticated.
    pub fn parse(text: &str) -> Result<Self, TlogProofError> {
        let rest = text
            .strip_prefix(HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or(TlogProofError("first line must be c2sp.org/tlog-proof@v1"))?;
        let rest = match rest.strip_prefix("extra ") {
            Some(r) => r.split_once('\n').ok_or(TlogProofError("extra line"))?.1,
            None => rest,
        };
        let (index_line, rest) = rest.split_once('\n').ok_or(TlogProofError("missing index line"))?;
        let index = index_line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or(TlogProofError("index must be a decimal number without leading zeros"))?;
        let (hashes, rest) = take_hash_lines(rest).map_err(TlogProofError)?;
        if rest.is_empty() {
            return Err(TlogProofError("missing checkpoint"));
        }
        Ok(TlogProof {
            index,
            hashes,
            checkpoint: rest.to_owned(),
        })
    }
}

/// A decimal number as these text formats spell it: ASCII digits, no sign,
/// no leading zeros (except `0` itself).
pub fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// Read base64 hash lines up to a blank line (at most 63, the longest RFC
/// 9162 proof); return them and the text after the blank line.
pub fn take_hash_lines(mut rest: &str) -> Result<(Vec<Hash>, &str), &'static str> {
    let mut hashes = Vec::new();
    loop {
        let (line, next) = rest
            .split_once('\n')
            .ok_or("missing blank line before the checkpoint")?;
        rest = next;
        if line.is_empty() {
            return Ok((hashes, rest));
        }
        if hashes.len() == MAX_PROOF_HASHES {
            return Err("too many proof hashes");
        }
        let raw = B64.decode(line).map_err(|_| "proof hash is not base64")?;
        if B64.encode(&raw) != line {
            return Err("proof hash is not canonical base64");
        }
        hashes.push(Hash::try_from(raw.as_slice()).map_err(|_| "proof hash is not 32 bytes")?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str =
        "example.org/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} example.org/log AAAA\n";

    #[test]
    fn round_trips_and_rejects_other_spellings() {
        let p = TlogProof {
            index: 2,
            hashes: vec![[1; 32], [2; 32]],
            checkpoint: NOTE.into(),
        };
        let text = p.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 2\nAQEB"));
        assert_eq!(TlogProof::parse(&text).unwrap(), p);
        let with_extra = text.replacen("index", "extra aGk=\nindex", 1);
        assert_eq!(TlogProof::parse(&with_extra).unwrap(), p);
        for bad in [
            text.replacen("@v1", "@v2", 1),
            text.replacen("index 2", "index 02", 1),
            text.replacen("index 2", "index -2", 1),
            text.replacen("AQEB", "AQE!", 1),
            text.replacen("\n\nexample", "\nexample", 1),
            text[..text.find("example").unwrap()].to_string(),
        ] {
            assert!(TlogProof::parse(&bad).is_err(), "{bad:?}");
        }
        let empty = TlogProof {
            index: 0,
            hashes: vec![],
            checkpoint: NOTE.into(),
        };
        assert_eq!(TlogProof::parse(&empty.to_text()).unwrap(), empty);
    }
}
