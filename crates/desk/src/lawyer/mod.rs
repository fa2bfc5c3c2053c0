//! The lawyer's desk: the inbox (`inbox`), a case's page (`case`), its
//! files' previews and saving (`files`), and what a lawyer changes on a
//! case (`actions`: reply, workflow, notes, grant, revoke, export,
//! disclosure). This file fills the inbox's index (`crate::index`): every
//! case the identity holds, each row proven from the log, kept in memory
//! so that a page of 10,000 cases is a sort and a slice, not 10,000 proofs.

mod actions;
mod case;
mod files;
mod forms;
mod inbox;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::state::Desk;
use custos_client::flows;
use custos_core::identity::Identity;

/// Cases proven at once while the index fills: enough to hide the
/// round trips, few enough to leave the vault room for others.
const PROVING_AT_ONCE: usize = 8;

/// How long a row is shown as proven before a visit to the inbox proves
/// it again: a colleague's workflow change, note or access does not show
/// in the vault's listing, so only a new proof finds it.
const REPROVE_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

pub(crate) fn routes() -> Router<Arc<Desk>> {
    Router::new()
        .route("/inbox", get(inbox::page))
        .route("/inbox/refresh", post(inbox::refresh))
        .route("/cases/{case}", get(case::page))
        .route("/cases/{case}/files/{object}/save", post(files::save))
        .route("/cases/{case}/files/{object}/metadata", get(files::findings))
        .route("/cases/{case}/reply", post(actions::reply))
        .route("/cases/{case}/workflow", post(actions::workflow))
        .route("/cases/{case}/note", post(actions::note))
        .route("/cases/{case}/grant", post(actions::grant))
        .route("/cases/{case}/revoke", post(actions::revoke))
        .route("/cases/{case}/export", post(actions::export))
        .route("/cases/{case}/disclose", post(actions::disclose))
}

pub(crate) use self::files::view as view_file;

/// Fill the index in the background: list the cases, and prove each
/// one not proven yet or changed since (status or object count), or
/// every one when `all`. A refresh already running is left to finish;
/// `only_if_stale` skips one that started moments ago (a page visit).
pub(crate) fn refresh(desk: &Arc<Desk>, identity: Arc<Identity>, all: bool, only_if_stale: bool) {
    if !desk.inbox.begin(only_if_stale, all) {
        return;
    }
    let desk = desk.clone();
    tokio::spawn(async move {
        let mut all = all;
        loop {
            let result = fill(&desk, &identity, all).await;
            // A refresh asked for while this one ran runs now.
            match desk.inbox.end(result.err()) {
                Some(again_all) => all = again_all,
                None => break,
            }
        }
    });
}

/// What an unlocked identity starts: a lawyer's inbox fills at once.
pub(crate) async fn unlocked(desk: &Arc<Desk>) {
    let lawyer = desk
        .me()
        .await
        .is_some_and(|p| p.role == custos_core::identity::Role::Lawyer);
    if let (true, Some(identity)) = (lawyer, desk.identity().await) {
        refresh(desk, identity, false, false);
    }
}

/// One refresh: the vault's list, then each case to prove, a few at once.
async fn fill(desk: &Arc<Desk>, identity: &Arc<Identity>, all: bool) -> Result<usize, String> {
    let listed = desk
        .client
        .cases(identity.signing_key())
        .await
        .map_err(|e| e.to_string())?;
    let todo: Vec<_> = {
        let mut index = desk.inbox.lock();
        let listed_ids: std::collections::HashSet<&str> = listed.iter().map(|c| c.case_id.as_str()).collect();
        // A case no longer listed (revoked from this lawyer) leaves, and
        // its files are no longer served from what was fetched.
        let gone: Vec<String> = index
            .rows
            .keys()
            .filter(|id| !listed_ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in &gone {
            index.drop_row(id);
            desk.forget(id);
        }
        // Proven again: what changed in the listing, and what was proven
        // long ago (a colleague's workflow change or note leaves the
        // listing as it was).
        let todo: Vec<_> = listed
            .into_iter()
            .filter(|c| {
                all || index.stale(&c.case_id, REPROVE_AFTER)
                    || index.rows.get(&c.case_id).is_none_or(|r| {
                        r.summary.objects != c.objects
                            || r.summary.created != c.created
                            || listed_status_changed(&r.summary.status, &c.status)
                    })
            })
            .collect();
        index.filling = Some((0, todo.len()));
        todo
    };
    let seen = Arc::new(flows::seen_cases_async(&desk.client, identity).await);
    let mut running = tokio::task::JoinSet::new();
    let mut todo = todo.into_iter();
    let mut failed = 0;
    let mut first_error = None;
    loop {
        while running.len() < PROVING_AT_ONCE {
            let Some(summary) = todo.next() else { break };
            let (desk, identity, seen) = (desk.clone(), identity.clone(), seen.clone());
            running.spawn(async move {
                let id = summary.case_id.clone();
                (
                    id,
                    flows::case_row(&desk.client, &identity, &desk.log, &seen, summary).await,
                )
            });
        }
        let Some(done) = running.join_next().await else { break };
        match done {
            Ok((_, Ok(row))) => desk.inbox.put(row),
            Ok((id, Err(e))) => {
                // What no longer proves is not shown as it was.
                desk.inbox.remove(&id);
                desk.forget(&id);
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
            Err(e) => tracing::warn!(error = %e, "a proving task failed"),
        }
    }
    match first_error {
        Some(e) => Err(format!("{failed}: {e}")),
        None => Ok(failed),
    }
}

/// Whether the vault's listed status differs from what the row holds. The
/// row holds the holder's status (a duress withdrawal is
/// `withdrawn_under_duress`), which the vault lists as `withdrawn`.
fn listed_status_changed(row: &str, listed: &str) -> bool {
    let row = if row == "withdrawn_under_duress" {
        "withdrawn"
    } else {
        row
    };
    row != listed
}

/// Prove one case again and put its row in: after this lawyer acted on
/// it, so the inbox shows the change at once.
pub(crate) async fn reindex(desk: &Arc<Desk>, identity: &Identity, case_id: &str) {
    let detail = match desk.client.case(identity.signing_key(), case_id).await {
        Ok(d) => d,
        Err(e) => {
            // Revoked from this lawyer, or the vault is away: the row
            // goes; the next refresh puts back what is still held.
            tracing::warn!(error = %e, "could not read a case");
            desk.inbox.remove(case_id);
            desk.forget(case_id);
            return;
        }
    };
    let summary = custos_core::wire::CaseSummary {
        case_id: detail.case_id,
        status: detail.status,
        created: detail.created,
        objects: detail.objects.len(),
    };
    let seen = flows::seen_cases_async(&desk.client, identity).await;
    match flows::case_row(&desk.client, identity, &desk.log, &seen, summary).await {
        Ok(row) => desk.inbox.put(row),
        Err(e) => tracing::warn!(error = %e, "a case did not prove"),
    }
}
