//! The inbox: every case this lawyer holds, from the index, filtered,
//! searched, sorted and cut into pages of [`PAGE_ROWS`].

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use crate::page::{when, Ctx};
use crate::state::Desk;
use crate::strings::Strings;
use custos_client::flows::CaseRow;
use custos_client::workflow::Status;
use custos_core::identity::Role;

/// Rows on one page: a screen or two, and a table a screen reader can
/// still walk.
const PAGE_ROWS: usize = 50;

/// The inbox's filters, as the form sends them (every one optional).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    mine: Option<String>,
    #[serde(default)]
    new: Option<String>,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: Option<usize>,
}

impl Filters {
    fn keeps(&self, row: &CaseRow, me: &str) -> bool {
        let q = self.q.trim().to_lowercase();
        (q.is_empty()
            || row.summary.case_id.to_lowercase().contains(&q)
            || row.tags.iter().any(|t| t.contains(&q))
            || row
                .assignee_name
                .as_ref()
                .is_some_and(|n| n.to_lowercase().contains(&q)))
            && (self.status.is_empty() || row.workflow_status.as_str() == self.status)
            && (self.state.is_empty() || row.summary.status == self.state)
            && (self.tag.trim().is_empty() || row.tags.iter().any(|t| *t == self.tag.trim().to_lowercase()))
            && (self.mine.is_none() || row.assignee.as_ref().is_some_and(|a| a.as_str() == me))
            && (self.new.is_none() || row.new)
    }

    fn sort(&self, rows: &mut [CaseRow]) {
        match self.sort.as_str() {
            "activity" => rows.sort_by(|a, b| b.last_activity.cmp(&a.last_activity)),
            "case" => rows.sort_by(|a, b| a.summary.case_id.cmp(&b.summary.case_id)),
            "status" => rows
                .sort_by(|a, b| (a.workflow_status, &b.summary.created).cmp(&(b.workflow_status, &a.summary.created))),
            // Newest received first: the default.
            _ => rows.sort_by(|a, b| {
                (&b.summary.created, &b.summary.case_id).cmp(&(&a.summary.created, &a.summary.case_id))
            }),
        }
    }

    /// The query string of these filters on another page.
    fn on_page(&self, page: usize) -> String {
        let mut pairs = vec![
            ("q", self.q.as_str()),
            ("status", self.status.as_str()),
            ("state", self.state.as_str()),
            ("tag", self.tag.as_str()),
            ("sort", self.sort.as_str()),
        ];
        if self.mine.is_some() {
            pairs.push(("mine", "1"));
        }
        if self.new.is_some() {
            pairs.push(("new", "1"));
        }
        let page = page.to_string();
        pairs.push(("page", &page));
        let query: Vec<String> = pairs
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        format!("/inbox?{}", query.join("&"))
    }
}

/// Percent-encoding for a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The case's state (open, withdrawn, under duress) in words.
pub(crate) fn state_name<'a>(s: &'a Strings, status: &str) -> &'a str {
    match status {
        "open" => s.get("state_open"),
        "withdrawn" => s.get("state_withdrawn"),
        "withdrawn_under_duress" => s.get("state_duress"),
        _ => s.get("state_unknown"),
    }
}

/// A workflow status in words.
pub(crate) fn status_name(s: &Strings, status: Status) -> &str {
    match status {
        Status::New => s.get("wf_new"),
        Status::Triage => s.get("wf_triage"),
        Status::Active => s.get("wf_active"),
        Status::Referred => s.get("wf_referred"),
        Status::Closed => s.get("wf_closed"),
    }
}

/// `GET /inbox`.
pub(crate) async fn page(State(desk): State<Arc<Desk>>, Query(f): Query<Filters>) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = match cx.as_role(Role::Lawyer).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let me = identity.key_id();
    super::refresh(&desk, identity.clone(), false, true);
    let snap = desk.inbox.snapshot();
    let total = snap.rows.len();
    let mut rows: Vec<CaseRow> = snap.rows.into_iter().filter(|r| f.keeps(r, me.as_str())).collect();
    f.sort(&mut rows);
    let pages = rows.len().div_ceil(PAGE_ROWS).max(1);
    let page = f.page.unwrap_or(1).clamp(1, pages);
    let shown = &rows[(page - 1) * PAGE_ROWS..rows.len().min(page * PAGE_ROWS)];
    let s = cx.s;
    let body = html! {
        @if let Some((done, of)) = snap.filling {
            p.progress role="status" { (s.fill("inbox_filling", &[("done", &done.to_string()), ("total", &of.to_string())])) }
        }
        @if let Some(e) = &snap.failed {
            p.flash.failed role="alert" { (s.fill("inbox_failed", &[("error", e)])) }
        }
        (filters(s, &f))
        form.inline method="post" action="/inbox/refresh" {
            button type="submit" { (s.get("inbox_refresh")) }
        }
        p #inbox-count { (s.fill("inbox_count", &[("shown", &rows.len().to_string()), ("total", &total.to_string())])) }
        @if rows.is_empty() && snap.filled {
            p { (s.get("inbox_empty")) }
        } @else {
            table #inbox {
                caption.visually-hidden { (s.get("inbox_caption")) }
                thead { tr {
                    th scope="col" { (s.get("col_case")) }
                    th scope="col" { (s.get("col_state")) }
                    th scope="col" { (s.get("col_workflow")) }
                    th scope="col" { (s.get("col_tags")) }
                    th scope="col" { (s.get("col_assignee")) }
                    th scope="col" { (s.get("col_received")) }
                    th scope="col" { (s.get("col_activity")) }
                } }
                tbody { @for r in shown { (row(s, r)) } }
            }
        }
        @if pages > 1 {
            nav.pages aria-label=(s.get("pages_label")) {
                @if page > 1 { a rel="prev" href=(f.on_page(page - 1)) { (s.get("page_prev")) } }
                span { (s.fill("page_of", &[("page", &page.to_string()), ("pages", &pages.to_string())])) }
                @if page < pages { a rel="next" href=(f.on_page(page + 1)) { (s.get("page_next")) } }
            }
        }
    };
    let refresh = snap.filling.map(|_| 2);
    cx.page_refreshing(s.get("inbox_title"), "/inbox", body, refresh)
}

fn row(s: &Strings, r: &CaseRow) -> Markup {
    let state = r.summary.status.as_str();
    html! {
        tr.new[r.new] data-case=(r.summary.case_id) {
            th scope="row" {
                a href=(format!("/cases/{}", r.summary.case_id)) { (r.summary.case_id) }
                @if r.new { " " span.badge { (s.get("badge_new")) } }
            }
            td.state.(state) { (state_name(s, state)) }
            td { (status_name(s, r.workflow_status)) }
            td { @for t in &r.tags { span.tag { (t) } " " } }
            td { @if let Some(n) = &r.assignee_name { (n) } @else if let Some(k) = &r.assignee { (k.as_str()) } @else { "—" } }
            td { (when(&r.summary.created)) }
            td { (when(&r.last_activity)) }
        }
    }
}

fn filters(s: &Strings, f: &Filters) -> Markup {
    let states = [
        ("open", "state_open"),
        ("withdrawn", "state_withdrawn"),
        ("withdrawn_under_duress", "state_duress"),
    ];
    let sorts = [
        ("", "sort_received"),
        ("activity", "sort_activity"),
        ("case", "sort_case"),
        ("status", "sort_status"),
    ];
    html! {
        form.filters method="get" action="/inbox" role="search" {
            div { label for="q" { (s.get("filter_search")) } input #q type="search" name="q" value=(f.q); }
            div { label for="status" { (s.get("filter_workflow")) }
                select #status name="status" {
                    option value="" { (s.get("filter_any")) }
                    @for st in Status::ALL { option value=(st.as_str()) selected[f.status == st.as_str()] { (status_name(s, st)) } }
                }
            }
            div { label for="state" { (s.get("filter_state")) }
                select #state name="state" {
                    option value="" { (s.get("filter_any")) }
                    @for (v, k) in states { option value=(v) selected[f.state == v] { (s.get(k)) } }
                }
            }
            div { label for="tag" { (s.get("filter_tag")) } input #tag type="text" name="tag" value=(f.tag); }
            div { label for="sort" { (s.get("filter_sort")) }
                select #sort name="sort" {
                    @for (v, k) in sorts { option value=(v) selected[f.sort == v] { (s.get(k)) } }
                }
            }
            div.check { input #mine type="checkbox" name="mine" value="1" checked[f.mine.is_some()]; label for="mine" { (s.get("filter_mine")) } }
            div.check { input #new type="checkbox" name="new" value="1" checked[f.new.is_some()]; label for="new" { (s.get("filter_new")) } }
            button type="submit" { (s.get("filter_apply")) }
        }
    }
}

/// `POST /inbox/refresh`: prove every case again.
pub(crate) async fn refresh(State(desk): State<Arc<Desk>>) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = match cx.as_role(Role::Lawyer).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    super::refresh(&desk, identity, true, false);
    Redirect::to("/inbox").into_response()
}
