//! What an audit's report says about each check: `flows::audit_with`
//! reports counts and its first failure, in words; this reads from them
//! which step failed, and gives every check its line (passed, failed, not
//! reached, nothing to check) with what was checked. Pure: a report in,
//! lines out, in the desk's language.

use std::path::Path;

use maud::{html, Markup};

use crate::strings::Strings;
use custos_client::flows::AuditReport;

/// The steps of an audit, in the order `flows::audit_with` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// Reading the last audit's state file.
    State,
    /// The log key's signature on the newest checkpoint.
    Checkpoint,
    /// The witnesses' cosignatures on it.
    Witnesses,
    /// Every entry replayed: chains, actor signatures, registry changes.
    Replay,
    /// The entries make the checkpoint's Merkle root.
    Tree,
    /// The log's admin cards are those the first audit pinned.
    Anchors,
    /// The log extends the last verified checkpoint.
    Consistency,
}

/// A check's result, in words and a sign (never colour alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Passed,
    Failed,
    NotReached,
    /// Nothing to check: no witness asked for, no earlier audit.
    NotAsked,
}

/// The step that failed. The report names its failure in words only
/// (the client's messages), so the step is read from how far the report
/// got and, after the replay, from how the message starts; a message
/// this does not know is put on the step its numbers point to.
fn failed_stage(r: &AuditReport) -> Option<Stage> {
    let f = r.failure.as_deref()?;
    Some(if f.starts_with("state file checkpoint") {
        Stage::Consistency
    } else if f.starts_with("state file") {
        Stage::State
    } else if f.starts_with("the checkpoint is cosigned by") {
        Stage::Witnesses
    } else if f.starts_with("checkpoint:") || r.checkpoint_size == 0 {
        Stage::Checkpoint
    } else if f.starts_with("the log's trust anchors") {
        Stage::Anchors
    } else if f.starts_with("the log was") || f.starts_with("consistency proof") {
        Stage::Consistency
    } else if r.entries < r.checkpoint_size {
        Stage::Replay
    } else {
        Stage::Tree
    })
}

fn outcome(r: &AuditReport, stage: Stage) -> Outcome {
    match failed_stage(r) {
        Some(f) if f == stage => Outcome::Failed,
        Some(f) if stage > f => Outcome::NotReached,
        _ => match stage {
            Stage::Witnesses if r.quorum == 0 => Outcome::NotAsked,
            Stage::Anchors | Stage::Consistency if r.consistent_with.is_none() => Outcome::NotAsked,
            _ => Outcome::Passed,
        },
    }
}

/// One line of the result: the check's name (an id a test can find, and
/// the words), its outcome, what was checked or what is wrong.
pub(super) struct Line {
    pub(super) id: &'static str,
    pub(super) outcome: Outcome,
    pub(super) detail: String,
}

/// The lines of a report, for a log checked against `vkey`.
pub(super) fn lines(s: &Strings, r: &AuditReport, before: Option<u64>, state_file: &Path, vkey: &str) -> Vec<Line> {
    let failure = r.failure.clone().unwrap_or_default();
    let n = |v: u64| v.to_string();
    let file = state_file.display().to_string();
    let line = |id, stage: Stage, passed: String, not_asked: &str| {
        let outcome = outcome(r, stage);
        let detail = match outcome {
            Outcome::Passed => passed,
            Outcome::Failed => failure.clone(),
            Outcome::NotReached => s.get("au_audit_not_reached").to_owned(),
            Outcome::NotAsked => not_asked.to_owned(),
        };
        Line { id, outcome, detail }
    };
    let mut out = vec![
        line(
            "state",
            Stage::State,
            match before {
                Some(size) => s.fill("au_audit_state_read", &[("file", &file), ("size", &n(size))]),
                None => s.fill("au_audit_state_none", &[("file", &file)]),
            },
            "",
        ),
        line(
            "checkpoint",
            Stage::Checkpoint,
            s.fill(
                "au_audit_checkpoint_ok",
                &[
                    ("vkey", vkey),
                    ("size", &n(r.checkpoint_size)),
                    ("root", &r.checkpoint_root),
                ],
            ),
            "",
        ),
        line(
            "witnesses",
            Stage::Witnesses,
            s.fill(
                "au_audit_witnesses_ok",
                &[
                    ("n", &r.cosigned_by.len().to_string()),
                    ("quorum", &r.quorum.to_string()),
                    ("names", &r.cosigned_by.join(", ")),
                ],
            ),
            s.get("au_audit_witnesses_none"),
        ),
    ];
    let registry_changes = |action: &str| r.actions.get(action).copied().unwrap_or(0);
    match outcome(r, Stage::Replay) {
        Outcome::Passed => out.extend([
            line(
                "entries",
                Stage::Replay,
                s.fill("au_audit_entries_ok", &[("n", &n(r.entries))]),
                "",
            ),
            line(
                "chains",
                Stage::Replay,
                s.fill("au_audit_chains_ok", &[("n", &r.chains.to_string())]),
                "",
            ),
            line(
                "signatures",
                Stage::Replay,
                s.fill("au_audit_signatures_ok", &[("n", &n(r.signatures))]),
                "",
            ),
            line(
                "registry",
                Stage::Replay,
                s.fill(
                    "au_audit_registry_ok",
                    &[
                        ("added", &n(registry_changes("principal_added"))),
                        ("removed", &n(registry_changes("principal_removed"))),
                        ("anchors", &r.anchors.join("; ")),
                    ],
                ),
                "",
            ),
        ]),
        _ => out.push(line("replay", Stage::Replay, String::new(), "")),
    }
    out.extend([
        line(
            "tree",
            Stage::Tree,
            s.fill("au_audit_tree_ok", &[("n", &n(r.entries))]),
            "",
        ),
        line(
            "anchors",
            Stage::Anchors,
            s.get("au_audit_anchors_ok").to_owned(),
            s.get("au_audit_anchors_first"),
        ),
        line(
            "consistency",
            Stage::Consistency,
            s.fill(
                "au_audit_consistency_ok",
                &[("size", &n(r.consistent_with.unwrap_or(0)))],
            ),
            s.get("au_audit_consistency_first"),
        ),
    ]);
    out
}
pub(super) fn check_name<'a>(s: &'a Strings, id: &str) -> &'a str {
    match id {
        "state" => s.get("au_check_state"),
        "checkpoint" => s.get("au_check_checkpoint"),
        "witnesses" => s.get("au_check_witnesses"),
        "entries" => s.get("au_check_entries"),
        "chains" => s.get("au_check_chains"),
        "signatures" => s.get("au_check_signatures"),
        "registry" => s.get("au_check_registry"),
        "replay" => s.get("au_check_replay"),
        "tree" => s.get("au_check_tree"),
        "anchors" => s.get("au_check_anchors"),
        "consistency" => s.get("au_check_consistency"),
        _ => s.get("au_check_other"),
    }
}

pub(super) fn outcome_id(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::NotReached => "not-reached",
        Outcome::NotAsked => "not-asked",
    }
}

pub(super) fn outcome_cell(s: &Strings, o: Outcome) -> Markup {
    html! {
        @match o {
            Outcome::Passed => td.check-ok { "✓ " (s.get("au_result_passed")) },
            Outcome::Failed => td.check-failed { "✗ " (s.get("au_result_failed")) },
            Outcome::NotReached => td.muted { "– " (s.get("au_result_not_reached")) },
            Outcome::NotAsked => td.muted { "– " (s.get("au_result_not_asked")) },
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn passed() -> AuditReport {
        AuditReport {
            entries: 9,
            chains: 3,
            signatures: 7,
            checkpoint_size: 9,
            checkpoint_root: "cm9vdA==".into(),
            anchors: vec!["k1 Admin".into()],
            ..AuditReport::default()
        }
    }

    fn failing(edit: impl FnOnce(&mut AuditReport), failure: &str) -> Option<Stage> {
        let mut r = passed();
        edit(&mut r);
        r.failure = Some(failure.into());
        failed_stage(&r)
    }

    #[test]
    fn the_failing_step_is_read_from_the_report() {
        let none = |_: &mut AuditReport| {};
        let early = |r: &mut AuditReport| (r.entries, r.checkpoint_size) = (0, 0);
        let in_replay = |r: &mut AuditReport| r.entries = 4;
        let cases: [(Option<Stage>, Option<Stage>); 9] = [
            (failing(early, "state file /x: expected value"), Some(Stage::State)),
            (failing(early, "checkpoint: bad signature"), Some(Stage::Checkpoint)),
            (
                failing(
                    early,
                    "the checkpoint is cosigned by 0 of the 1 witnesses within 10 s; the quorum is 1",
                ),
                Some(Stage::Witnesses),
            ),
            (failing(early, "the vault said no"), Some(Stage::Checkpoint)),
            (
                failing(
                    in_replay,
                    "entry 4: case c chain link does not match the previous event",
                ),
                Some(Stage::Replay),
            ),
            (
                failing(
                    none,
                    "entry 9: Merkle root of the entries does not match the signed checkpoint",
                ),
                Some(Stage::Tree),
            ),
            (
                failing(
                    none,
                    "the log's trust anchors are not the admin cards pinned by the first audit",
                ),
                Some(Stage::Anchors),
            ),
            (
                failing(none, "the log was rewritten or forked: last verified size 3"),
                Some(Stage::Consistency),
            ),
            (failed_stage(&passed()), None),
        ];
        for (i, (got, want)) in cases.into_iter().enumerate() {
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn steps_before_the_failure_passed_and_after_it_were_not_reached() {
        let mut r = passed();
        r.entries = 4;
        r.failure = Some("entry 4: actor k was removed from the registry and may no longer act".into());
        let o = |stage| outcome(&r, stage);
        assert_eq!(o(Stage::Checkpoint), Outcome::Passed);
        assert_eq!(o(Stage::Witnesses), Outcome::NotAsked, "no quorum was asked");
        assert_eq!(o(Stage::Replay), Outcome::Failed);
        assert_eq!(o(Stage::Tree), Outcome::NotReached);
        assert_eq!(o(Stage::Consistency), Outcome::NotReached);

        let first = passed();
        assert_eq!(
            outcome(&first, Stage::Consistency),
            Outcome::NotAsked,
            "nothing to compare yet"
        );
        let again = AuditReport {
            consistent_with: Some(5),
            quorum: 1,
            cosigned_by: vec!["w".into()],
            ..passed()
        };
        for stage in [Stage::Witnesses, Stage::Tree, Stage::Anchors, Stage::Consistency] {
            assert_eq!(outcome(&again, stage), Outcome::Passed, "{stage:?}");
        }
    }

    #[test]
    fn a_failure_in_the_replay_is_one_line_naming_it() {
        let s = crate::strings::of(custos_core::bundle::disclosure::Language::En);
        let mut r = passed();
        r.entries = 4;
        r.failure = Some("entry 4: case c chain link does not match the previous event".into());
        let lines = lines(s, &r, Some(3), Path::new("/s.json"), "vkey");
        let ids: Vec<_> = lines.iter().map(|l| (l.id, l.outcome)).collect();
        assert_eq!(
            ids,
            [
                ("state", Outcome::Passed),
                ("checkpoint", Outcome::Passed),
                ("witnesses", Outcome::NotAsked),
                ("replay", Outcome::Failed),
                ("tree", Outcome::NotReached),
                ("anchors", Outcome::NotReached),
                ("consistency", Outcome::NotReached),
            ]
        );
        assert!(lines[3].detail.contains("chain link"));
        let passed_lines = super::lines(s, &passed(), None, Path::new("/s.json"), "vkey");
        assert!(passed_lines
            .iter()
            .any(|l| l.id == "chains" && l.outcome == Outcome::Passed));
    }
}
