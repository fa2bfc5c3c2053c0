//! `custos watch`: a lawyer's running view of what is new in the cases
//! they hold (a new case, a new file, a new message), one item at a time.
//! The vault's list of cases says only where to look (which cases exist,
//! how many objects each has); every item shown is proven from the case's
//! signed log, and its kind read from its sealed label with the case key,
//! which the vault cannot do (its digest mail can only count).

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;

use super::{case_key_of, held_proven, Result};
use crate::Client;
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
    /// Its file name, from its sealed label, made safe to print.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Log index of the event that stored it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

/// What a watching lawyer has seen: the cases held, with the vault's
/// count of their objects, the objects already shown, and the log's size
/// when the watch began (objects stored since then are new).
#[derive(Debug)]
pub struct Watch {
    since: u64,
    cases: BTreeMap<String, usize>,
    shown: BTreeSet<String>,
}

impl Watch {
    /// Begin: what is there now is known, and nothing of it is shown.
    pub async fn start(client: &Client, identity: &Identity, log: &LogVerifier) -> Result<Watch> {
        let checkpoint = log
            .verify(&client.checkpoint().await?)
            .map_err(|e| super::verify(format!("the vault's checkpoint: {e}")))?;
        let cases = client
            .cases(identity.signing_key())
            .await?
            .into_iter()
            .map(|s| (s.case_id, s.objects))
            .collect();
        Ok(Watch {
            since: checkpoint.size,
            cases,
            shown: BTreeSet::new(),
        })
    }

    /// The cases held when last looked.
    pub fn cases(&self) -> usize {
        self.cases.len()
    }

    /// Look again: what is new since the last look, in order (each new
    /// case before its objects, objects in log order). Only cases that
    /// are new or whose object count changed are read and proven. Objects
    /// this lawyer stored are not news to them.
    pub async fn poll(&mut self, client: &Client, identity: &Identity, log: &LogVerifier) -> Result<Vec<WatchItem>> {
        let me = identity.key_id();
        let mut items = Vec::new();
        let listed = client.cases(identity.signing_key()).await?;
        let mut now = BTreeMap::new();
        for summary in listed {
            let known = self.cases.get(&summary.case_id).copied();
            now.insert(summary.case_id.clone(), summary.objects);
            if known == Some(summary.objects) {
                continue;
            }
            let (_, proven) = held_proven(client, identity, log, &summary.case_id).await?;
            if known.is_none() {
                items.push(WatchItem {
                    item: WatchKind::Case,
                    case_id: summary.case_id.clone(),
                    object_id: None,
                    kind: None,
                    name: None,
                    index: None,
                });
            }
            let case_key = case_key_of(identity, &proven)?;
            let mut stored: Vec<_> = proven.stored.iter().collect();
            stored.sort_by_key(|(_, by)| by.index);
            for (object_id, by) in stored {
                // A newly held case's objects are all new to this lawyer.
                let fresh = known.is_none() || by.index >= self.since;
                if !fresh || by.key_id == me || self.shown.contains(object_id) {
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
                self.shown.insert(object_id.clone());
                items.push(WatchItem {
                    item,
                    case_id: summary.case_id.clone(),
                    object_id: Some(object_id.clone()),
                    kind: label.as_ref().map(|l| l.kind),
                    name: label.as_ref().map(Label::safe_file_name),
                    index: Some(by.index),
                });
            }
        }
        // A case revoked from this lawyer is forgotten: granted again, it
        // is news again.
        self.cases = now;
        Ok(items)
    }
}
