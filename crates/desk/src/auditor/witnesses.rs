//! The witnesses' cosignatures on one checkpoint, as far as this desk can
//! tell: each witness it knows (pinned for the vault, kept by the audit's
//! state file, or typed by the auditor) with whether its cosignature
//! verifies, and every other signature line on the note, which it cannot
//! check. Pure: the note and the keys in, rows out; the auditor's and the
//! admin's pages both draw them with [`table`].

use maud::{html, Markup};

use crate::page::when;
use crate::strings::Strings;
use custos_core::custody::checkpoint::{split_note, LogVerifier};
use custos_core::custody::cosignature::WitnessVerifier;

/// Bytes of a log signature line: key id and Ed25519 signature.
const LOG_SIGNATURE_BYTES: usize = 4 + 64;

/// What a checkpoint note says about one witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WitnessRow {
    /// The witness's name.
    pub(crate) name: String,
    /// Its vkey, when this desk knows it; else the signature line's key
    /// id, in hex.
    pub(crate) key: String,
    /// What its line on the note is worth.
    pub(crate) status: Cosigned,
}

/// A witness's cosignature on the note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cosigned {
    /// It verifies with the witness's key; the witness's time, Unix seconds.
    Verified(u64),
    /// The note carries no line under this witness's name.
    Missing,
    /// A line under its name that does not verify with its key (another
    /// key, another checkpoint, or a time too far ahead).
    Invalid,
    /// A line by a key this desk does not know: not checked.
    Unknown,
}

/// Every known witness's cosignature on `note`, then the note's other
/// signature lines (but the log's own). `now` is Unix time.
pub(crate) fn rows(note: &str, log: &LogVerifier, known: &[WitnessVerifier], now: i64) -> Vec<WitnessRow> {
    let lines = split_note(note).map(|(_, lines)| lines).unwrap_or_default();
    let mut rows: Vec<WitnessRow> = known
        .iter()
        .map(|w| WitnessRow {
            name: w.name().to_owned(),
            key: w.vkey(),
            status: match w.cosigned_at(note, now) {
                Some(t) => Cosigned::Verified(t),
                None if lines.iter().any(|(name, _)| *name == w.name()) => Cosigned::Invalid,
                None => Cosigned::Missing,
            },
        })
        .collect();
    for (name, raw) in &lines {
        let logs_own = *name == log.name() && raw.len() == LOG_SIGNATURE_BYTES;
        if logs_own || known.iter().any(|w| w.name() == *name) {
            continue;
        }
        rows.push(WitnessRow {
            name: (*name).to_owned(),
            key: hex::encode(raw.get(..4).unwrap_or(raw)),
            status: Cosigned::Unknown,
        });
    }
    rows
}

/// Witness keys from several sources, each once, in the order given.
pub(crate) fn merge(sources: &[&[String]]) -> Vec<WitnessVerifier> {
    let mut out: Vec<WitnessVerifier> = Vec::new();
    for vkey in sources.iter().flat_map(|s| s.iter()) {
        if let Ok(w) = WitnessVerifier::parse(vkey.trim()) {
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

/// The rows as a table with a caption.
pub(crate) fn table(s: &Strings, id: &str, caption: &str, rows: &[WitnessRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            p #(id) { (s.get("au_wit_none")) }
        } @else {
            table #(id) {
                caption { (caption) }
                thead { tr {
                    th scope="col" { (s.get("au_wit_name")) }
                    th scope="col" { (s.get("au_wit_key")) }
                    th scope="col" { (s.get("au_wit_cosignature")) }
                } }
                tbody { @for r in rows {
                    tr data-witness=(r.name) {
                        th scope="row" { (r.name) }
                        td { code { (r.key) } }
                        @match r.status {
                            Cosigned::Verified(t) => td.check-ok { "✓ " (s.fill("au_wit_verified", &[("time", &unix_time(t))])) },
                            Cosigned::Missing => td.check-failed { "✗ " (s.get("au_wit_missing")) },
                            Cosigned::Invalid => td.check-failed { "✗ " (s.get("au_wit_invalid")) },
                            Cosigned::Unknown => td { "? " (s.get("au_wit_unknown")) },
                        }
                    }
                } }
            }
        }
    }
}

/// Unix seconds as the desk shows a time.
fn unix_time(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .map(|t| when(&t))
        .unwrap_or_else(|| t.to_string())
}

/// The witnesses typed into a form (one vkey a line) and the quorum
/// (empty: all of them). A witness typed twice is refused, not counted
/// twice.
pub(super) fn from_form(
    s: &crate::strings::Strings,
    typed: &str,
    quorum: &str,
) -> Result<(Vec<custos_core::custody::cosignature::WitnessVerifier>, usize), String> {
    let mut witnesses: Vec<custos_core::custody::cosignature::WitnessVerifier> = Vec::new();
    for line in typed.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let w = custos_core::custody::cosignature::WitnessVerifier::parse(line)
            .map_err(|e| s.fill("au_audit_bad_witness", &[("error", &e.to_string())]))?;
        if witnesses.contains(&w) {
            return Err(s.fill(
                "au_audit_bad_witness",
                &[("error", &format!("{} is listed twice", w.name()))],
            ));
        }
        witnesses.push(w);
    }
    let quorum = match quorum.trim() {
        "" => witnesses.len(),
        q => q
            .parse::<usize>()
            .ok()
            .filter(|q| (1..=witnesses.len()).contains(q))
            .ok_or_else(|| s.fill("au_audit_bad_quorum", &[("n", &witnesses.len().to_string())]))?,
    };
    Ok((witnesses, quorum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_core::custody::checkpoint::LogSigner;
    use custos_core::custody::cosignature::WitnessSigner;
    use custos_core::identity::Identity;

    const NOW: i64 = 1_800_000_000;

    // New keys come from identities: the desk does not name the Ed25519
    // crate.
    fn witness(name: &str) -> WitnessSigner {
        WitnessSigner::new(name, Identity::generate("w").unwrap().signing_key().clone()).unwrap()
    }

    fn log() -> LogSigner {
        LogSigner::new(
            "example.org/log",
            Identity::generate("l").unwrap().signing_key().clone(),
        )
        .unwrap()
    }

    #[test]
    fn each_known_witness_is_checked_and_strangers_are_named_unchecked() {
        let log = log();
        let note = log.sign(7, [3; 32]);
        let body = &note[..note.find("\n\n").unwrap() + 1];
        let (good, absent, impostor, stranger) = (
            witness("w.example/good"),
            witness("w.example/absent"),
            witness("w.example/good"),
            witness("w.example/stranger"),
        );
        let cosigned = format!(
            "{note}{}{}",
            good.cosign(body, 1_700_000_000),
            stranger.cosign(body, 1_700_000_000)
        );
        let known = [good.verifier(), absent.verifier()];
        let rows = rows(&cosigned, &log.verifier(), &known, NOW);
        let status: Vec<(&str, Cosigned)> = rows.iter().map(|r| (r.name.as_str(), r.status)).collect();
        assert_eq!(
            status,
            [
                ("w.example/good", Cosigned::Verified(1_700_000_000)),
                ("w.example/absent", Cosigned::Missing),
                ("w.example/stranger", Cosigned::Unknown),
            ]
        );
        assert_eq!(rows[0].key, good.verifier().vkey());

        // A line under a known name by another key is not its cosignature.
        let forged = format!("{note}{}", impostor.cosign(body, 1_700_000_000));
        let rows = super::rows(&forged, &log.verifier(), &known[..1], NOW);
        assert_eq!(rows[0].status, Cosigned::Invalid);
        assert_eq!(rows.len(), 1, "the log's own line is not a witness");
    }

    #[test]
    fn witness_keys_are_merged_once_and_bad_ones_dropped() {
        let a = witness("a.example/w").verifier().vkey();
        let b = witness("b.example/w").verifier().vkey();
        let merged = merge(&[&[a.clone(), "not a key".into()], &[format!(" {b} "), a.clone()]]);
        let names: Vec<&str> = merged.iter().map(|w| w.name()).collect();
        assert_eq!(names, ["a.example/w", "b.example/w"]);
    }
}
