//! A case's page: its state (a withdrawal under duress said plainly), the
//! statement, the form's answers under the questions as the submitter saw
//! them, the files grouped as medical and other evidence, the messages
//! with the submitter, the workflow, who holds the case, export and
//! disclosure, and the custody timeline. Everything on it is proven from
//! the signed log and decrypted in this process.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::response::Response;
use maud::{html, Markup};

use super::files::{self, Preview};
use super::forms::{self, name_of};
use super::inbox::{state_name, status_name};
use crate::page::{size, when, Ctx};
use crate::state::Desk;
use crate::strings::{Strings, FORM_FIELDS};
use custos_client::flows::{self, CaseWork, OpenedCase};
use custos_core::bundle::disclosure::summary::Account;
use custos_core::envelope::{Label, ObjectKind};
use custos_core::identity::{Identity, KeyId, Role};
use custos_core::wire::CaseObject;

/// `GET /cases/{case}`.
pub(crate) async fn page(State(desk): State<Arc<Desk>>, UrlPath(case_id): UrlPath<String>) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = match cx.as_role(Role::Lawyer).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let case = match flows::open_case(&desk.client, &identity, &desk.log, &case_id).await {
        Ok(c) => Arc::new(c),
        Err(e) => return cx.vault(&e),
    };
    files::remember(&desk, case.clone());
    let work = match flows::case_work(&identity, &case.proven) {
        Ok(w) => w,
        Err(e) => return cx.vault(&e),
    };
    let texts = Texts::read(&desk, &identity, &case).await;
    // Read: no longer new.
    flows::mark_seen_async(&desk.client, &identity, &case_id, case.proven.last_event.0).await;
    super::reindex(&desk, &identity, &case_id).await;
    let s = cx.s;
    let names: BTreeMap<KeyId, String> = work.names.clone();
    let body = html! {
        (summary(s, &case, &work))
        nav.toc aria-label=(s.get("case_sections")) { ul {
            li { a href="#account" { (s.get("sec_account")) } }
            li { a href="#files" { (s.get("sec_files")) } }
            li { a href="#messages" { (s.get("sec_messages")) } }
            li { a href="#workflow" { (s.get("sec_workflow")) } }
            li { a href="#access" { (s.get("sec_access")) } }
            li { a href="#share" { (s.get("sec_share")) } }
            li { a href="#timeline" { (s.get("sec_timeline")) } }
        } }
        (account(s, &texts))
        (files_section(s, &case, (&desk.gate.files_origin, desk.gate.files_key.reveal())))
        (messages(s, &case, &texts, &names))
        (forms::workflow_forms(s, &case, &work))
        (forms::access_forms(s, &case, &identity))
        (forms::share_forms(s, &case))
        (timeline(s, &case, &names))
    };
    cx.page(
        &s.fill("case_title", &[("case", &case_id)]),
        &format!("/cases/{case_id}"),
        body,
    )
}

/// Who stored an object, as the signed log says: the label (and its
/// kind) is the uploader's own word, so a statement, a form or a message
/// is shown as the submitter's only if a submitter key stored it, and a
/// reply as a lawyer's only if a lawyer then holding the case stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Storer {
    /// One of the case's codename keys.
    Submitter,
    /// A principal holding the case then: its name and key.
    Holder(String, KeyId),
    /// Anyone else (a principal not holding the case, an unknown key), or
    /// no record of the storing the reader may see.
    Other(Option<KeyId>),
}

impl Storer {
    pub(crate) fn of(case: &OpenedCase, object_id: &str) -> Storer {
        match case.proven.stored.get(object_id) {
            Some(by) if case.proven.submitter_keys.contains(&by.key_id) => Storer::Submitter,
            Some(by) if by.held_the_case => Storer::Holder(
                by.principal.clone().unwrap_or_else(|| by.key_id.to_string()),
                by.key_id.clone(),
            ),
            Some(by) => Storer::Other(Some(by.key_id.clone())),
            None => Storer::Other(None),
        }
    }

    /// In words.
    pub(crate) fn said(&self, s: &Strings) -> String {
        match self {
            Storer::Submitter => s.get("stored_by_submitter").to_owned(),
            Storer::Holder(name, key) => s.fill("stored_by_holder", &[("name", name), ("key", key.as_str())]),
            Storer::Other(Some(key)) => s.fill("stored_by_other", &[("key", key.as_str())]),
            Storer::Other(None) => s.get("stored_by_unknown").to_owned(),
        }
    }
}

/// The texts of the case read into memory: statements, forms, messages,
/// each with who stored it.
struct Texts {
    statements: Vec<(String, Storer)>,
    forms: Vec<(Account, Storer)>,
    /// Messages and replies by object id.
    messages: BTreeMap<String, String>,
    /// Objects that could not be read, with why.
    unread: Vec<(String, String)>,
}

impl Texts {
    async fn read(desk: &Arc<Desk>, identity: &Arc<Identity>, case: &OpenedCase) -> Texts {
        let mut t = Texts {
            statements: vec![],
            forms: vec![],
            messages: BTreeMap::new(),
            unread: vec![],
        };
        for (obj, label) in &case.objects {
            if !matches!(
                label.kind,
                ObjectKind::Statement | ObjectKind::Form | ObjectKind::Message | ObjectKind::Reply
            ) {
                continue;
            }
            let bytes = match files::text(desk, identity, case, obj).await {
                Ok(b) => b,
                Err(e) => {
                    t.unread.push((label.safe_file_name(), e.to_string()));
                    continue;
                }
            };
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let by = Storer::of(case, &obj.object_id);
            match label.kind {
                ObjectKind::Statement => t.statements.push((text, by)),
                ObjectKind::Form => match Account::from_form(&bytes) {
                    Some(a) => t.forms.push((a, by)),
                    None => t
                        .unread
                        .push((label.safe_file_name(), "not a custos-form-v1 form".into())),
                },
                _ => {
                    t.messages.insert(obj.object_id.clone(), text);
                }
            }
        }
        t
    }
}

fn summary(s: &Strings, case: &OpenedCase, work: &CaseWork) -> Markup {
    let state = case.status.as_str();
    html! {
        dl.summary {
            dt { (s.get("col_state")) }
            dd.state.(state) #case-state {
                (state_name(s, state))
                @if state == "withdrawn_under_duress" { " — " strong { (s.get("duress_explained")) } }
            }
            // From the signed creation, not the host's record.
            dt { (s.get("col_received")) } dd { (case.timeline.iter().find(|(_, e)| e.action == custos_core::custody::Action::CaseCreated).map(|(_, e)| when(&e.time)).unwrap_or_default()) }
            dt { (s.get("col_workflow")) } dd #case-workflow { (status_name(s, work.workflow_status)) }
            dt { (s.get("col_tags")) } dd #case-tags { @if work.tags.is_empty() { "—" } @for t in &work.tags { span.tag { (t) } " " } }
            dt { (s.get("col_assignee")) } dd #case-assignee { (name_of(&work.names, work.assignee.as_ref())) }
            dt { (s.get("checkpoint")) } dd { (s.fill("checkpoint_size", &[("size", &case.proven.checkpoint.size.to_string())])) }
        }
        @if work.unreadable > 0 || work.refused > 0 {
            p.flash.failed role="alert" { (s.fill("workflow_unreadable", &[("n", &(work.unreadable + work.refused).to_string())])) }
        }
    }
}

fn account(s: &Strings, t: &Texts) -> Markup {
    html! {
        section #account aria-labelledby="account-h" {
            h2 #account-h { (s.get("sec_account")) }
            @for (text, by) in &t.statements {
                h3 { (s.get("statement")) }
                (not_the_submitters(s, by))
                div.statement dir="auto" { (text) }
            }
            @for (form, by) in &t.forms { (form_answers(s, form, by)) }
            @if t.statements.is_empty() && t.forms.is_empty() { p { (s.get("no_account")) } }
            @for (name, why) in &t.unread {
                p.flash.failed { (s.fill("unreadable_file", &[("name", name), ("error", why)])) }
            }
        }
    }
}

/// A warning when the submitter's account was not stored with a
/// submitter's key.
fn not_the_submitters(s: &Strings, by: &Storer) -> Markup {
    html! {
        @if *by != Storer::Submitter {
            p.flash.failed role="note" { (s.fill("not_from_submitter", &[("who", &by.said(s))])) }
        }
    }
}

fn form_answers(s: &Strings, form: &Account, by: &Storer) -> Markup {
    let Account::Form { fields, consent } = form else {
        return html! {};
    };
    html! {
        h3 { (s.get("form_answers")) }
        (not_the_submitters(s, by))
        p.consent #consent {
            strong { (s.get("consent_label")) " " }
            @match consent {
                Some(true) => span.yes { (s.get("consent_yes")) },
                Some(false) => span.no { (s.get("consent_no")) },
                None => span { (s.get("consent_unknown")) },
            }
            br;
            span.question { "«" (s.consent_question()) "»" }
        }
        dl.form #form {
            @for field in FORM_FIELDS {
                @let (q, hint) = s.question(field);
                dt data-field=(field) { (q) @if let Some(h) = hint { br; small { (h) } } }
                dd data-field=(field) {
                    @match fields.get(field).map(|a| a.trim()).filter(|a| !a.is_empty()) {
                        Some(a) => div.answer dir="auto" { (a) },
                        None => em { (s.get("not_answered")) },
                    }
                }
            }
        }
    }
}

fn files_section(s: &Strings, case: &OpenedCase, files_origin: (&str, &str)) -> Markup {
    let of = |kind: ObjectKind| {
        case.objects
            .iter()
            .filter(move |(_, l)| l.kind == kind)
            .collect::<Vec<_>>()
    };
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let folder = home.join("custos-saved").join(&case.detail.case_id);
    html! {
        section #files aria-labelledby="files-h" {
            h2 #files-h { (s.get("sec_files")) }
            p { (s.get("files_intro")) }
            (file_table(s, case, files_origin, "medical", s.get("files_medical"), &of(ObjectKind::Medical), &folder))
            (file_table(s, case, files_origin, "evidence", s.get("files_evidence"), &of(ObjectKind::Evidence), &folder))
            (file_table(s, case, files_origin, "account-files", s.get("files_account"), &[of(ObjectKind::Statement), of(ObjectKind::Form)].concat(), &folder))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn file_table(
    s: &Strings,
    case: &OpenedCase,
    files_origin: (&str, &str),
    id: &str,
    heading: &str,
    files: &[&(CaseObject, Label)],
    folder: &std::path::Path,
) -> Markup {
    html! {
        h3 #(format!("{id}-h")) { (heading) }
        @if files.is_empty() { p { (s.get("files_none")) } }
        @else {
            ul.files #(id) aria-labelledby=(format!("{id}-h")) {
                @for (obj, label) in files.iter().map(|f| (&f.0, &f.1)) {
                    (file_item(s, case, obj, label, folder, files_origin))
                }
            }
        }
    }
}

fn file_item(
    s: &Strings,
    case: &OpenedCase,
    obj: &CaseObject,
    label: &Label,
    folder: &std::path::Path,
    (files_origin, files_key): (&str, &str),
) -> Markup {
    let path = format!("/cases/{}/files/{}", case.detail.case_id, obj.object_id);
    let url = format!("{files_origin}{path}?k={files_key}");
    let name = label.safe_file_name();
    let preview = Preview::of(label);
    let stored = case.proven.stored.get(&obj.object_id);
    let received = case
        .timeline
        .iter()
        .find(|(i, _)| *i == obj.index)
        .map(|(_, e)| when(&e.time))
        .unwrap_or_default();
    let field = format!("folder-{}", obj.object_id.get(..12).unwrap_or(&obj.object_id));
    html! {
        li.file data-object=(obj.object_id) data-name=(name) {
            h4 { (name) }
            dl {
                dt { (s.get("file_type")) } dd { (label.media_type.as_deref().filter(|t| !t.is_empty()).unwrap_or(s.get("file_type_unknown"))) }
                dt { (s.get("file_size")) } dd { (size(s, obj.size)) }
                dt { "SHA-256" } dd { code { (obj.object_id) } }
                dt { (s.get("file_received")) } dd { (received) }
                @if let Some(cleaned) = label.cleaned {
                    dt { (s.get("file_metadata")) }
                    dd.cleaned { (s.get(if cleaned { "file_cleaned_yes" } else { "file_cleaned_no" })) }
                }
                dt { (s.get("file_stored_by")) } dd { (Storer::of(case, &obj.object_id).said(s)) }
                dt { (s.get("file_receipt")) } dd.receipt {
                    @match stored {
                        Some(by) => (s.fill("file_receipt_ok", &[("index", &by.index.to_string()), ("size", &case.proven.checkpoint.size.to_string())])),
                        None => (s.get("file_receipt_missing")),
                    }
                }
            }
            @match preview {
                Preview::Image(_) => img.preview src=(url) alt=(s.fill("preview_of", &[("name", &name)])) loading="lazy";,
                // No `sandbox` attribute: Chromium's PDF viewer refuses
                // to run in a sandboxed frame. The files' own origin
                // isolates it (see `guard`).
                Preview::Pdf => iframe.preview src=(url) loading="lazy" title=(s.fill("preview_of", &[("name", &name)])) {},
                // Nothing fetched until played: each fetch is a logged
                // access, and a video may be gigabytes.
                Preview::Audio(_) => audio.preview controls preload="none" controlslist="nodownload" src=(url) aria-label=(s.fill("preview_of", &[("name", &name)])) {},
                Preview::Video(_) => video.preview controls preload="none" controlslist="nodownload" src=(url) aria-label=(s.fill("preview_of", &[("name", &name)])) {},
                Preview::None => p.muted { (s.get("preview_none")) },
            }
            // Never a browser download: it would land in the browser's
            // folder, readable by others, and in its history. "Save" is
            // the one way plaintext reaches the disk.
            @if preview != Preview::None {
                p { a.open href=(url) target="_blank" rel="noopener" { (s.get("file_open")) } }
            }
            // A page of its own, not on this one: reading a file is a
            // logged access, made only when the lawyer asks.
            p { a.findings href=(format!("{path}/metadata")) { (s.get("file_findings_link")) } }
            form.save method="post" action=(format!("{path}/save")) autocomplete="off" {
                label for=(field) { (s.get("save_folder")) }
                input #(field) type="text" name="folder" value=(folder.display().to_string()) required;
                button type="submit" { (s.fill("save_button", &[("name", &name)])) }
            }
        }
    }
}

fn messages(s: &Strings, case: &OpenedCase, t: &Texts, names: &BTreeMap<KeyId, String>) -> Markup {
    let thread: Vec<_> = case
        .objects
        .iter()
        .filter(|(_, l)| matches!(l.kind, ObjectKind::Message | ObjectKind::Reply))
        .collect();
    html! {
        section #messages aria-labelledby="messages-h" {
            h2 #messages-h { (s.get("sec_messages")) }
            @if thread.is_empty() { p { (s.get("messages_none")) } }
            ol.thread {
                @for (obj, label) in thread.iter().map(|m| (&m.0, &m.1)) {
                    @let by = Storer::of(case, &obj.object_id);
                    li.message.(label.kind.as_str()) {
                        p.meta {
                            @match (&by, label.kind) {
                                (Storer::Holder(_, key), ObjectKind::Reply) => (s.fill("message_from_lawyer", &[("name", &name_of(names, Some(key)))])),
                                (Storer::Submitter, ObjectKind::Message) => (s.get("message_from_submitter")),
                                _ => strong.warn { (s.fill("message_misattributed", &[("who", &by.said(s))])) },
                            }
                            " · "
                            (case.timeline.iter().find(|(i, _)| *i == obj.index).map(|(_, e)| when(&e.time)).unwrap_or_default())
                        }
                        div.text dir="auto" { (t.messages.get(&obj.object_id).map(String::as_str).unwrap_or("")) }
                    }
                }
            }
            form method="post" action=(format!("/cases/{}/reply", case.detail.case_id)) autocomplete="off" {
                label for="reply" { (s.get("reply_label")) }
                p.hint #reply-hint { (s.get("reply_hint")) }
                textarea #reply name="text" rows="5" required aria-describedby="reply-hint" {}
                button type="submit" { (s.get("reply_send")) }
            }
        }
    }
}

fn timeline(s: &Strings, case: &OpenedCase, names: &BTreeMap<KeyId, String>) -> Markup {
    html! {
        section #timeline aria-labelledby="timeline-h" {
            h2 #timeline-h { (s.get("sec_timeline")) }
            p { (s.get("timeline_intro")) }
            (crate::page::timeline_table(s, &case.timeline, names, &case.proven.submitter_keys))
        }
    }
}
