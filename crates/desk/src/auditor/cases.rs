//! The cases an auditor may see, and each one's custody timeline without
//! its content: who did what, when, to which object (by hash), each event
//! proven included in a checkpoint signed by the pinned log key and
//! checked as the auditor checks the whole log. Labels and content are
//! sealed to the case's holders; an auditor holds no key for them, and
//! nothing here asks for one.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use maud::html;
use serde::Deserialize;

use super::auditor;
use crate::page::{when, Ctx};
use crate::state::Desk;
use custos_client::proven::{prove_case_log, Reader};
use custos_client::ClientError;
use custos_core::custody::{lawyers_chain, Event};
use custos_core::identity::KeyId;

/// Cases on one page of the list: a table a screen reader can still walk.
const PAGE_ROWS: usize = 100;

/// The list's page number.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    page: Option<usize>,
}

/// `GET /audit/cases`: every case, newest first, as the vault lists them
/// to auditors (ids, states, dates, object counts: no content).
pub(crate) async fn list(State(desk): State<Arc<Desk>>, Query(q): Query<ListQuery>) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = auditor!(cx);
    let s = cx.s;
    let mut cases = match desk.client.cases(identity.signing_key()).await {
        Ok(c) => c,
        Err(e) => return cx.vault(&e),
    };
    cases.sort_by(|a, b| (&b.created, &b.case_id).cmp(&(&a.created, &a.case_id)));
    let pages = cases.len().div_ceil(PAGE_ROWS).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let shown = &cases[(page - 1) * PAGE_ROWS..cases.len().min(page * PAGE_ROWS)];
    let body = html! {
        p { (s.get("au_cases_intro")) }
        p #cases-count { (s.fill("au_cases_count", &[("n", &cases.len().to_string())])) }
        @if cases.is_empty() {
            p { (s.get("au_cases_none")) }
        } @else {
            table #audit-cases {
                caption.visually-hidden { (s.get("au_cases_caption")) }
                thead { tr {
                    th scope="col" { (s.get("au_cases_col_case")) }
                    th scope="col" { (s.get("au_cases_col_state")) }
                    th scope="col" { (s.get("au_cases_col_created")) }
                    th scope="col" { (s.get("au_cases_col_objects")) }
                } }
                tbody { @for c in shown {
                    tr data-case=(c.case_id) {
                        th scope="row" { a href=(format!("/audit/cases/{}", c.case_id)) { (c.case_id) } }
                        td { (state_name(s, &c.status)) }
                        td { (when(&c.created)) }
                        td { (c.objects) }
                    }
                } }
            }
        }
        @if pages > 1 {
            nav.pages aria-label=(s.get("au_cases_pages")) {
                @if page > 1 { a rel="prev" href=(format!("/audit/cases?page={}", page - 1)) { (s.get("au_cases_prev")) } }
                span { (s.fill("au_cases_page_of", &[("page", &page.to_string()), ("pages", &pages.to_string())])) }
                @if page < pages { a rel="next" href=(format!("/audit/cases?page={}", page + 1)) { (s.get("au_cases_next")) } }
            }
        }
    };
    cx.page(s.get("au_cases_title"), "/audit/cases", body)
}

/// A case's state as the vault lists it to an auditor. (Whether a
/// withdrawal was made under duress is sealed to the case's lawyers.)
fn state_name<'a>(s: &'a crate::strings::Strings, status: &str) -> &'a str {
    match status {
        "open" => s.get("au_case_open"),
        "withdrawn" => s.get("au_case_withdrawn"),
        _ => s.get("au_case_state_other"),
    }
}

/// `GET /audit/cases/{case}`: the case's events, proven.
pub(crate) async fn page(State(desk): State<Arc<Desk>>, UrlPath(case_id): UrlPath<String>) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = auditor!(cx);
    let s = cx.s;
    let proven = prove_case_log(
        &desk.client,
        identity.signing_key(),
        &desk.log,
        &[],
        &case_id,
        Reader::Principal,
    )
    .await;
    let (case_log, proven) = match proven {
        Ok(p) => p,
        Err(e) => return cx.vault(&e),
    };
    // The log the auditor reads holds the vault's chain too (who was
    // registered when); the timeline is the case's own two chains.
    let lawyers = lawyers_chain(&case_id);
    let timeline = match case_log
        .entries
        .iter()
        .map(|e| {
            // These bytes were checked (inclusion, signature, request) by
            // `prove_case_log`; they are read again only to be shown.
            let bytes = B64
                .decode(&e.event)
                .map_err(|_| ClientError::Verify("an event is not base64".into()))?;
            let event: Event =
                serde_json::from_slice(&bytes).map_err(|e| ClientError::Verify(format!("an event: {e}")))?;
            Ok((e.index, event))
        })
        .filter(|r: &Result<(u64, Event), ClientError>| {
            r.as_ref()
                .map_or(true, |(_, ev)| ev.case == case_id || ev.case == lawyers)
        })
        .collect::<Result<Vec<_>, ClientError>>()
    {
        Ok(t) => t,
        Err(e) => return cx.vault(&e),
    };
    let names: BTreeMap<KeyId, String> = proven
        .registry
        .iter()
        .map(|(k, (card, _))| (k.clone(), card.name.clone()))
        .collect();
    let holders: Vec<(&KeyId, String)> = proven
        .envelopes
        .keys()
        .filter(|k| !proven.submitter_keys.contains(*k))
        .map(|k| (k, names.get(k).cloned().unwrap_or_default()))
        .collect();
    let body = html! {
        p { (s.get("au_case_intro")) }
        dl.summary {
            dt { (s.get("au_case_checkpoint")) }
            dd #case-checkpoint { (s.fill("au_case_checkpoint_of", &[("size", &proven.checkpoint.size.to_string()), ("root", &B64.encode(proven.checkpoint.root))])) }
            dt { (s.get("au_case_events")) } dd { (timeline.len()) }
            dt { (s.get("au_case_submitter_keys")) } dd { (proven.submitter_keys.len()) }
            dt { (s.get("au_case_withdrawn_q")) }
            dd { @match &proven.withdrawal { Some((_, time, _)) => (s.fill("au_case_withdrawn_at", &[("time", &when(time))])), None => (s.get("au_case_not_withdrawn")) } }
        }
        section #holders aria-labelledby="holders-h" {
            h2 #holders-h { (s.get("au_case_holders")) }
            @if holders.is_empty() { p { (s.get("au_case_holders_none")) } }
            @else {
                ul { @for (k, name) in &holders { li { (name) " " code { (k.as_str()) } } } }
            }
        }
        section #timeline aria-labelledby="timeline-h" {
            h2 #timeline-h { (s.get("au_case_timeline")) }
            p { (s.get("au_case_timeline_intro")) }
            (crate::page::timeline_table(s, &timeline, &names, &proven.submitter_keys))
        }
        p { a href="/audit/cases" { (s.get("au_case_back")) } }
    };
    cx.page(
        &s.fill("au_case_title", &[("case", &case_id)]),
        &format!("/audit/cases/{case_id}"),
        body,
    )
}
