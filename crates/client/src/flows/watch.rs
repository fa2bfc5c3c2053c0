//! `custos watch`: a lawyer's running view of what is new in the cases
//! they hold (a new case, a new file, a new message), one item at a time.
//! The vault's list of cases says only where to look (which cases exist,
//! how many objects each has); every item shown is proven from the case's
//! signed log, and its kind read from its sealed label with the case key,
//! which the vault cannot do (its digest mail can only count).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;

use super::{case_key_of, held_proven, Result};
use crate::terminal::escaped;
use crate::{Client, ClientError};
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::envelope::{Label, ObjectKind};
use custos_core::identity::Identity;

/// What a [`WatchItem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchKind {
    /// A case this lawyer newly holds (new, or granted to them).
    Case,
    /// A file: a statement, form, evidence or medical record.
    File,
    /// A message from the submitter, or another lawyer's reply.
    Message,
    /// An object whose label does not open with the case key.
    Unreadable,
}

impl WatchKind {
    /// As `watch` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchKind::Case => "case",
            WatchKind::File => "file",
            WatchKind::Message => "message",
            WatchKind::Unreadable => "unreadable",
        }
    }
}

/// One new thing in a case this lawyer holds.
#[derive(Debug, Clone, Serialize)]
pub struct WatchItem {
    /// A case, a file or a message.
    pub item: WatchKind,
    /// The case.
    pub case_id: String,
    /// The object, for a file or a message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Its kind, from its sealed label (`statement`, `evidence`, `message`,
    /// `reply`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ObjectKind>,
    /// Its file name, from its sealed label (the submitter wrote it): a
    /// base name, with control and formatting characters escaped
    /// ([`crate::terminal::escaped`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Log index of the event that made it new: the object's storing, or
    /// the case's creation or grant to this lawyer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

/// What one look found: the new items, in order, and the cases that could
/// not be read this time (each with why), which are looked at again next
/// time with nothing of theirs marked as shown.
#[derive(Debug, Default)]
pub struct WatchRound {
    /// What is new.
    pub items: Vec<WatchItem>,
    /// The cases skipped this time, and why.
    pub skipped: Vec<(String, ClientError)>,
}

/// What a watching lawyer has seen. Newness is decided from the signed
/// log alone: an item is new when the event that made it (a case's
/// creation, its grant to this lawyer, an object's storing) has a log
/// index at or past where this lawyer last looked at that case, or where
/// the watch began. The vault's listing only says where to look: a case
/// it hides for a while and lists again shows nothing old.
#[derive(Debug)]
pub struct Watch {
    /// The log's size when the watch began.
    since: u64,
    /// The cases of the last listing whose look succeeded, with the
    /// vault's count of their objects: an unchanged count is not read again.
    listed: BTreeMap<String, usize>,
    /// For each case looked at, the size of the checkpoint its log was
    /// last proven against: events below it have been shown.
    seen_to: BTreeMap<String, u64>,
}

impl Watch {
    /// Begin: what is there now is known, and nothing of it is shown.
    pub async fn start(client: &Client, identity: &Identity, log: &LogVerifier) -> Result<Watch> {
        let checkpoint = log
            .verify(&client.checkpoint().await?)
            .map_err(|e| super::verify(format!("the vault's checkpoint: {e}")))?;
        let listed = client
            .cases(identity.signing_key())
            .await?
            .into_iter()
            .map(|s| (s.case_id, s.objects))
            .collect();
        Ok(Watch {
            since: checkpoint.size,
            listed,
            seen_to: BTreeMap::new(),
        })
    }

    /// The cases held when last looked.
    pub fn cases(&self) -> usize {
        self.listed.len()
    }

    /// Look again: what is new since the last look, in order (each new
    /// case before its objects, objects in log order). Only cases that
    /// are newly listed or whose object count changed are read and
    /// proven. Objects this lawyer stored are not news to them. Each
    /// case is looked at on its own: one the vault failed to serve is
    /// skipped this time and its state left as it was. Anything that
    /// does not verify ends the look with an error (see
    /// [`ClientError::is_transient`]).
    pub async fn poll(&mut self, client: &Client, identity: &Identity, log: &LogVerifier) -> Result<WatchRound> {
        let listed = client.cases(identity.signing_key()).await?;
        let mut round = WatchRound::default();
        let mut now = BTreeMap::new();
        for summary in listed {
            let case_id = summary.case_id;
            if self.listed.get(&case_id) == Some(&summary.objects) {
                now.insert(case_id, summary.objects);
                continue;
            }
            let from = self.seen_to.get(&case_id).copied().unwrap_or(self.since);
            match case_news(client, identity, log, &case_id, from).await {
                Ok((items, proven_to)) => {
                    round.items.extend(items);
                    self.seen_to.insert(case_id.clone(), proven_to.max(from));
                    now.insert(case_id, summary.objects);
                }
                // The exchange failed, or the case went away between the
                // listing and the look (revoked): look again next time.
                Err(e) if e.is_transient() || matches!(e, ClientError::Usage(_)) => round.skipped.push((case_id, e)),
                Err(e) => return Err(e),
            }
        }
        self.listed = now;
        Ok(round)
    }
}

/// What is new in one case for this lawyer since log index `from`, proven
/// from its log, and the size of the checkpoint it was proven against.
/// The case is new if its creation or its grant to this lawyer is at or
/// past `from`; then all its objects are too. Otherwise an object is new
/// if its storing is.
async fn case_news(
    client: &Client,
    identity: &Identity,
    log: &LogVerifier,
    case_id: &str,
    from: u64,
) -> Result<(Vec<WatchItem>, u64)> {
    let me = identity.key_id();
    let (_, proven) = held_proven(client, identity, log, case_id).await?;
    let held_since = *proven
        .held_since
        .get(&me)
        .ok_or_else(|| super::no_envelope(identity, case_id))?;
    let case_key = case_key_of(identity, &proven)?;
    let newly_held = held_since >= from;
    let mut items = Vec::new();
    if newly_held {
        items.push(WatchItem {
            item: WatchKind::Case,
            case_id: case_id.to_owned(),
            object_id: None,
            kind: None,
            name: None,
            index: Some(held_since),
        });
    }
    let mut stored: Vec<_> = proven.stored.iter().collect();
    stored.sort_by_key(|(_, by)| by.index);
    for (object_id, by) in stored {
        if by.key_id == me || !(newly_held || by.index >= from) {
            continue;
        }
        let label = B64
            .decode(&by.label)
            .ok()
            .and_then(|sealed| Label::open(&sealed, &case_key).ok());
        let item = match label.as_ref().map(|l| l.kind) {
            Some(ObjectKind::Message | ObjectKind::Reply) => WatchKind::Message,
            Some(_) => WatchKind::File,
            None => WatchKind::Unreadable,
        };
        items.push(WatchItem {
            item,
            case_id: case_id.to_owned(),
            object_id: Some(object_id.clone()),
            kind: label.as_ref().map(|l| l.kind),
            name: label.as_ref().map(|l| escaped(&l.safe_file_name())),
            index: Some(by.index),
        });
    }
    Ok((items, proven.checkpoint.size))
}
