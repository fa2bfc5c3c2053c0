//! A case's workflow as its lawyers keep it: a status, tags, an assignee
//! and notes. Each change is one entry, sealed to the lawyers' key of the
//! case (the duress note's key, which no codename holder gets) and logged
//! as a `workflow_changed` event signed by the lawyer who made it. The
//! state is what replaying the entries in log order gives, so two lawyers
//! changing a case at once both count, in the order the log took them,
//! and the history stays. Pure: no I/O; `flows::workflow` fetches and
//! sends.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use custos_core::envelope::{self, CaseKey};
use custos_core::identity::KeyId;
use custos_core::protocol::{MAX_WORKFLOW_ENTRY, WORKFLOW_PAD};

/// Where a case stands, as its lawyers set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nobody has looked at it yet (every case starts here).
    #[default]
    New,
    /// Being read and judged.
    Triage,
    /// Being worked.
    Active,
    /// Handed to an outside body (UN CAT, a prosecutor, an ombudsman...).
    Referred,
    /// Done.
    Closed,
}

impl Status {
    /// Every status, in the order a case usually moves through them.
    pub const ALL: [Status; 5] = [
        Status::New,
        Status::Triage,
        Status::Active,
        Status::Referred,
        Status::Closed,
    ];

    /// The status's name, as the CLI and JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Triage => "triage",
            Status::Active => "active",
            Status::Referred => "referred",
            Status::Closed => "closed",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = WorkflowError;
    fn from_str(s: &str) -> Result<Self, WorkflowError> {
        Status::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            WorkflowError::Invalid(format!(
                "{s:?} is not a status: new, triage, active, referred or closed"
            ))
        })
    }
}

/// Who a case is assigned to, in a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    /// To this lawyer, who must hold the case.
    To(KeyId),
    /// To nobody.
    Nobody,
}

/// One change: any of a new status, tags added or removed, an assignment,
/// a note. What an entry holds once opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The new status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Tags to add.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_tags: Vec<String>,
    /// Tags to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_tags: Vec<String>,
    /// A new assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign: Option<Assignment>,
    /// A note for the case's lawyers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Longest tag, in characters: a word or two ("urgent", "still-detained",
/// "медосмотр").
pub const MAX_TAG_CHARS: usize = 40;

/// Longest note, in bytes of UTF-8: a few pages. Padded to the next power
/// of two, the sealed entry stays within the protocol's limit.
pub const MAX_NOTE_BYTES: usize = 16 * 1024;

/// Most tags one change adds and removes together.
pub const MAX_TAGS_PER_CHANGE: usize = 16;

/// Characters a tag or a note may not hold: controls (but a note's line
/// breaks and tabs), and the invisible ones that reorder or hide text
/// (bidirectional overrides, zero-width marks). Text from another lawyer
/// reaches this lawyer's terminal, where such characters could rewrite
/// what is shown, and a tag that looks like another must not be one.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// Why a change or an entry is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The change itself is not acceptable (a bad tag, an empty change...).
    #[error("{0}")]
    Invalid(String),
    /// An entry did not open with the lawyers' key, or is not a change.
    #[error("a workflow entry could not be read")]
    Unreadable,
    /// Encryption failed.
    #[error(transparent)]
    Envelope(#[from] envelope::EnvelopeError),
}

/// A tag as kept: trimmed and lower-cased; refused if empty, too long, or
/// holding white space, control characters or a leading `+` or `-`.
pub fn normalize_tag(tag: &str) -> Result<String, WorkflowError> {
    let t = tag.trim().to_lowercase();
    let bad = t.is_empty()
        || t.chars().count() > MAX_TAG_CHARS
        || t.chars().any(|c| c.is_whitespace() || is_hidden(c) || c == ',')
        || t.starts_with(['+', '-']);
    if bad {
        return Err(WorkflowError::Invalid(format!(
            "{tag:?} is not a tag: 1 to {MAX_TAG_CHARS} characters, no spaces or commas, not starting with + or -"
        )));
    }
    Ok(t)
}

impl Change {
    /// Whether the change changes nothing.
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.add_tags.is_empty()
            && self.remove_tags.is_empty()
            && self.assign.is_none()
            && self.note.is_none()
    }

    /// Check the change before it is sealed: something to change, tags
    /// normalised, a note of bounded size.
    pub fn validated(mut self) -> Result<Change, WorkflowError> {
        if self.is_empty() {
            return Err(WorkflowError::Invalid(
                "nothing to change: give a status, a tag, an assignment or a note".into(),
            ));
        }
        if self.add_tags.len() + self.remove_tags.len() > MAX_TAGS_PER_CHANGE {
            return Err(WorkflowError::Invalid(format!(
                "at most {MAX_TAGS_PER_CHANGE} tags in one change"
            )));
        }
        self.add_tags = self
            .add_tags
            .iter()
            .map(|t| normalize_tag(t))
            .collect::<Result<_, _>>()?;
        self.remove_tags = self
            .remove_tags
            .iter()
            .map(|t| normalize_tag(t))
            .collect::<Result<_, _>>()?;
        if let Some(note) = &self.note {
            if note.trim().is_empty() || note.len() > MAX_NOTE_BYTES {
                return Err(WorkflowError::Invalid(format!(
                    "a note must hold 1 to {MAX_NOTE_BYTES} bytes of text"
                )));
            }
            if note.chars().any(|c| c != '\n' && c != '\t' && is_hidden(c)) {
                return Err(WorkflowError::Invalid(
                    "a note may not hold control or invisible formatting characters".into(),
                ));
            }
        }
        Ok(self)
    }

    /// Seal the change to the lawyers' key: its JSON padded (see
    /// `padded`), then age-encrypted.
    pub fn seal(&self, lawyers: &CaseKey) -> Result<Vec<u8>, WorkflowError> {
        let sealed = envelope::encrypt_bytes(&self.padded(), &[&lawyers.recipient()])?;
        if sealed.len() > MAX_WORKFLOW_ENTRY {
            return Err(WorkflowError::Invalid("the change is too large to log".into()));
        }
        Ok(sealed)
    }

    /// The change's JSON, padded with spaces to a power of two of at
    /// least [`WORKFLOW_PAD`] bytes, so a status change and a short note
    /// look alike and a long note shows only its size class. Trailing
    /// white space is still one JSON document, read the same by every
    /// reader.
    fn padded(&self) -> Vec<u8> {
        let mut plain = serde_json::to_vec(self).expect("a change serialises");
        let class = plain.len().max(WORKFLOW_PAD).next_power_of_two();
        plain.resize(class, b' ');
        plain
    }

    /// Open an entry sealed with [`Change::seal`], and hold it to the same
    /// rules as a change this client sends: an entry from another lawyer's
    /// client that breaks them (a hidden character in a note, a tag that
    /// is not one, an empty change) counts as unreadable.
    pub fn open(sealed: &[u8], lawyers: &CaseKey) -> Result<Change, WorkflowError> {
        let plain = envelope::decrypt_bytes(sealed, lawyers.identity()).map_err(|_| WorkflowError::Unreadable)?;
        let change: Change = serde_json::from_slice(&plain).map_err(|_| WorkflowError::Unreadable)?;
        change.validated().map_err(|_| WorkflowError::Unreadable)
    }
}

/// A note, as the case's history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Who wrote it (the event's signer).
    pub by: KeyId,
    /// When the vault logged it.
    pub time: String,
    /// Its log index.
    pub index: u64,
    /// The text.
    pub text: String,
}

/// One logged change, for the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logged {
    /// Who made it (the event's signer).
    pub by: KeyId,
    /// When the vault logged it.
    pub time: String,
    /// Its log index.
    pub index: u64,
    /// What it changed; `None` when it could not be read.
    pub change: Option<Change>,
    /// Whether it counted: read, and signed by a lawyer then holding the
    /// case.
    pub applied: bool,
}

/// A workflow entry to replay: who signed it, when, where in the log, what
/// it holds once opened (`None`: unreadable), whether its signer held the
/// case then, and the lawyers who did (whom it may assign the case to).
#[derive(Debug, Clone)]
pub struct Entry {
    /// The signer.
    pub by: KeyId,
    /// When the vault logged it.
    pub time: String,
    /// Its log index.
    pub index: u64,
    /// The opened change, if it opened.
    pub change: Option<Change>,
    /// Whether the signer was a lawyer holding the case then.
    pub by_holder: bool,
    /// The lawyers holding the case then.
    pub holders: BTreeSet<KeyId>,
}

/// The workflow of one case: the replay of its entries in log order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Workflow {
    /// The status.
    pub status: Status,
    /// The tags, sorted.
    pub tags: BTreeSet<String>,
    /// The lawyer the case is assigned to, if any.
    pub assignee: Option<KeyId>,
    /// The notes, oldest first.
    pub notes: Vec<Note>,
    /// Every change, oldest first.
    pub history: Vec<Logged>,
}

impl Workflow {
    /// Replay `entries` in log order. An entry counts only if it opened
    /// and its signer held the case then; an assignment only to a lawyer
    /// holding the case then. `revocations` (log index, key) end an
    /// assignment when the assignee loses the case, for good: a later
    /// grant does not bring it back. `holds_now` says who holds the case
    /// at the end, in case a removal came outside the events replayed.
    pub fn replay(
        entries: impl IntoIterator<Item = Entry>,
        revocations: &[(u64, KeyId)],
        holds_now: impl Fn(&KeyId) -> bool,
    ) -> Workflow {
        let mut w = Workflow::default();
        let mut revoked = revocations.iter().peekable();
        let end_assignment = |w: &mut Workflow, key: &KeyId| {
            if w.assignee.as_ref() == Some(key) {
                w.assignee = None;
            }
        };
        for e in entries {
            while let Some((_, key)) = revoked.next_if(|(at, _)| *at < e.index) {
                end_assignment(&mut w, key);
            }
            let applied = e.by_holder && e.change.is_some();
            if let (true, Some(c)) = (applied, &e.change) {
                if let Some(s) = c.status {
                    w.status = s;
                }
                for t in &c.add_tags {
                    w.tags.insert(t.clone());
                }
                for t in &c.remove_tags {
                    w.tags.remove(t);
                }
                match &c.assign {
                    Some(Assignment::To(k)) if e.holders.contains(k) => w.assignee = Some(k.clone()),
                    Some(_) => w.assignee = None,
                    None => {}
                }
                if let Some(text) = &c.note {
                    w.notes.push(Note {
                        by: e.by.clone(),
                        time: e.time.clone(),
                        index: e.index,
                        text: text.clone(),
                    });
                }
            }
            w.history.push(Logged {
                by: e.by,
                time: e.time,
                index: e.index,
                change: e.change,
                applied,
            });
        }
        for (_, key) in revoked {
            end_assignment(&mut w, key);
        }
        if w.assignee.as_ref().is_some_and(|k| !holds_now(k)) {
            w.assignee = None;
        }
        w
    }

    /// How many entries did not open (or broke the rules once opened).
    pub fn unreadable(&self) -> usize {
        self.history.iter().filter(|l| l.change.is_none()).count()
    }

    /// How many entries were signed by someone not holding the case.
    pub fn refused(&self) -> usize {
        self.history.iter().filter(|l| l.change.is_some() && !l.applied).count()
    }
}

/// What this lawyer last saw of each case (its last log index), kept on
/// the lawyer's own machine only: `cases --new` lists the cases whose log
/// grew since.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Seen {
    /// Case id to the last log index of the case this lawyer looked at.
    pub cases: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> KeyId {
        format!("{n:016x}").parse().unwrap()
    }

    #[test]
    fn a_sealed_change_opens_only_with_the_lawyers_key_and_hides_its_length() {
        let lawyers = CaseKey::generate();
        let short = Change {
            status: Some(Status::Triage),
            ..Change::default()
        };
        let long = Change {
            note: Some("x".repeat(700)),
            ..Change::default()
        };
        // What is sealed has the same length; age's own header then varies
        // at random (its grease stanza), whatever the content.
        assert_eq!(short.padded().len(), WORKFLOW_PAD);
        assert_eq!(
            long.padded().len(),
            WORKFLOW_PAD,
            "a status change and a note pad to the same size"
        );
        let longer = Change {
            note: Some("x".repeat(3000)),
            ..Change::default()
        };
        assert_eq!(
            longer.padded().len(),
            4 * WORKFLOW_PAD,
            "longer notes pad to a power of two"
        );
        let (a, b) = (short.seal(&lawyers).unwrap(), long.seal(&lawyers).unwrap());
        assert_eq!(Change::open(&a, &lawyers).unwrap(), short);
        assert_eq!(Change::open(&b, &lawyers).unwrap(), long);
        let other = CaseKey::generate();
        assert!(matches!(Change::open(&a, &other), Err(WorkflowError::Unreadable)));
    }

    #[test]
    fn changes_replay_in_log_order_and_count_only_from_holders() {
        let both: BTreeSet<KeyId> = [key(1), key(2)].into();
        let entry = |by: u8, index: u64, change: Option<Change>, holders: &BTreeSet<KeyId>| Entry {
            by: key(by),
            time: format!("t{index}"),
            index,
            change,
            by_holder: holders.contains(&key(by)),
            holders: holders.clone(),
        };
        let c = |status: Option<Status>, add: &[&str], remove: &[&str], assign: Option<Assignment>| {
            Some(Change {
                status,
                add_tags: add.iter().map(|s| s.to_string()).collect(),
                remove_tags: remove.iter().map(|s| s.to_string()).collect(),
                assign,
                note: None,
            })
        };
        let w = Workflow::replay(
            vec![
                entry(1, 5, c(Some(Status::Triage), &["urgent", "medical"], &[], None), &both),
                entry(2, 6, c(None, &[], &["medical"], Some(Assignment::To(key(2)))), &both),
                // Assigned to a key that does not hold the case: nobody.
                entry(
                    1,
                    7,
                    c(Some(Status::Active), &[], &[], Some(Assignment::To(key(9)))),
                    &both,
                ),
                entry(2, 8, None, &both),
                // Signed by a key that does not hold the case: not applied.
                entry(9, 9, c(Some(Status::Closed), &["forged"], &[], None), &both),
            ],
            &[],
            |k| both.contains(k),
        );
        assert_eq!(w.status, Status::Active);
        assert_eq!(w.tags.iter().collect::<Vec<_>>(), ["urgent"]);
        assert_eq!(w.assignee, None);
        assert_eq!(w.history.len(), 5);
        assert_eq!((w.unreadable(), w.refused()), (1, 1));

        // An assignment ends when the assignee is revoked, and a later
        // grant does not bring it back.
        let assign = || entry(1, 10, c(None, &[], &[], Some(Assignment::To(key(2)))), &both);
        let w = Workflow::replay(vec![assign()], &[(11, key(2))], |k| both.contains(k));
        assert_eq!(w.assignee, None, "revoked after the assignment");
        let w = Workflow::replay(vec![assign()], &[], |k| both.contains(k));
        assert_eq!(w.assignee, Some(key(2)));
        let w = Workflow::replay(vec![assign()], &[], |k| *k == key(1));
        assert_eq!(w.assignee, None, "no longer holding the case at the end");
        // Assigned before it held the case: not made valid by a later grant.
        let before = entry(1, 3, c(None, &[], &[], Some(Assignment::To(key(2)))), &[key(1)].into());
        let w = Workflow::replay(vec![before], &[], |k| both.contains(k));
        assert_eq!(w.assignee, None);
    }

    #[test]
    fn an_entry_that_breaks_the_rules_opens_as_unreadable() {
        let lawyers = CaseKey::generate();
        // What a hostile co-holder's client could seal: no check on its side.
        let raw = |json: &str| envelope::encrypt_bytes(json.as_bytes(), &[&lawyers.recipient()]).unwrap();
        for json in [
            r#"{"note":"fine\u001b[2Ahidden"}"#,
            r#"{"note":"right\u202eto left"}"#,
            r#"{"add_tags":["Urgent now"]}"#,
            r#"{}"#,
            r#"{"status":"triage","extra":1}"#,
            "not json",
        ] {
            assert!(
                matches!(Change::open(&raw(json), &lawyers), Err(WorkflowError::Unreadable)),
                "{json}"
            );
        }
        let ok = Change::open(&raw(r#"{"add_tags":["Urgent"],"note":"line\nnext\ttab"}"#), &lawyers).unwrap();
        assert_eq!(ok.add_tags, ["urgent"], "tags are normalised on opening too");
    }

    #[test]
    fn tags_are_normalised_and_bad_ones_refused() {
        assert_eq!(normalize_tag(" Urgent ").unwrap(), "urgent");
        assert_eq!(normalize_tag("Медосмотр").unwrap(), "медосмотр");
        for bad in ["", "two words", "+x", "-x", "a,b", "ur\u{200b}gent", &"x".repeat(41)] {
            assert!(normalize_tag(bad).is_err(), "{bad:?}");
        }
        assert!(Change::default().validated().is_err(), "an empty change is refused");
    }
}
