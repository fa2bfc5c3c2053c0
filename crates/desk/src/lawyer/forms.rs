//! The forms of a case's page that change it: the workflow and notes,
//! who holds the case (grant, revoke), export and disclosure. Rendering
//! only; the handlers they post to are `actions`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use maud::{html, Markup};

use super::inbox::status_name;
use crate::page::when;
use crate::strings::{Strings, LANGUAGES};
use custos_client::flows::{CaseWork, OpenedCase};
use custos_client::workflow::Status;
use custos_core::envelope::ObjectKind;
use custos_core::identity::{Identity, KeyId, Role};

/// A principal's name (and key id), or a dash.
pub(crate) fn name_of(names: &BTreeMap<KeyId, String>, key: Option<&KeyId>) -> String {
    match key {
        Some(k) => match names.get(k) {
            Some(n) => format!("{n} ({k})"),
            None => k.to_string(),
        },
        None => "—".into(),
    }
}

/// The lawyers a case can be granted to: registered lawyers (as the
/// signed registry has them) not holding it.
pub(crate) fn grantable(case: &OpenedCase) -> Vec<(KeyId, String)> {
    case.proven
        .registry
        .iter()
        .filter(|(k, (_, role))| *role == Role::Lawyer && !case.proven.envelopes.contains_key(*k))
        .map(|(k, (card, _))| (k.clone(), card.name.clone()))
        .collect()
}

/// The workflow statuses, for the form.
pub(crate) const STATUSES: [Status; 5] = Status::ALL;

/// The workflow section: status, tags and assignee; the notes and the
/// history.
pub(crate) fn workflow_forms(s: &Strings, case: &OpenedCase, work: &CaseWork) -> Markup {
    let holders: Vec<(&KeyId, &String)> = case
        .proven
        .registry
        .iter()
        .filter(|(k, (_, role))| *role == Role::Lawyer && case.proven.envelopes.contains_key(*k))
        .map(|(k, (card, _))| (k, &card.name))
        .collect();
    let url = format!("/cases/{}", case.detail.case_id);
    html! {
        section #workflow aria-labelledby="workflow-h" {
            h2 #workflow-h { (s.get("sec_workflow")) }
            form.workflow method="post" action=(format!("{url}/workflow")) autocomplete="off" {
                // What the page showed: only a field the lawyer changed is
                // a change, so a page left open while a colleague changed
                // the case does not undo their change.
                input type="hidden" name="status_was" value=(work.workflow_status.as_str());
                input type="hidden" name="assign_was" value=(work.assignee.as_ref().map(|k| k.as_str()).unwrap_or("nobody"));
                div { label for="wf-status" { (s.get("col_workflow")) }
                    select #wf-status name="status" {
                        @for st in STATUSES { option value=(st.as_str()) selected[st == work.workflow_status] { (status_name(s, st)) } }
                    }
                }
                div { label for="wf-assign" { (s.get("col_assignee")) }
                    select #wf-assign name="assign" {
                        option value="nobody" selected[work.assignee.is_none()] { (s.get("assign_nobody")) }
                        @for (k, n) in &holders { option value=(k.as_str()) selected[work.assignee.as_ref() == Some(*k)] { (n) " (" (k.as_str()) ")" } }
                    }
                }
                div { label for="wf-tags" { (s.get("tags_add")) }
                    input #wf-tags type="text" name="add_tags" aria-describedby="wf-tags-hint";
                    small #wf-tags-hint { (s.get("tags_add_hint")) }
                }
                @if !work.tags.is_empty() {
                    fieldset { legend { (s.get("tags_remove")) }
                        @for (i, t) in work.tags.iter().enumerate() {
                            div.check { input #(format!("rm-tag-{i}")) type="checkbox" name="remove_tags" value=(t); label for=(format!("rm-tag-{i}")) { (t) } }
                        }
                    }
                }
                button type="submit" { (s.get("workflow_save")) }
            }
            h3 { (s.get("notes")) }
            @if work.notes.is_empty() { p { (s.get("notes_none")) } }
            ol.notes { @for n in &work.notes {
                li { p.meta { (name_of(&work.names, Some(&n.by))) " · " (when(&n.time)) } div.text { (n.text) } }
            } }
            form method="post" action=(format!("{url}/note")) autocomplete="off" {
                label for="note" { (s.get("note_label")) }
                textarea #note name="note" rows="3" required {}
                button type="submit" { (s.get("note_add")) }
            }
        }
    }
}

/// Who holds the case, revoke; grant with a picker of registered lawyers.
pub(crate) fn access_forms(s: &Strings, case: &OpenedCase, identity: &Identity) -> Markup {
    let url = format!("/cases/{}", case.detail.case_id);
    let names: BTreeMap<&KeyId, (&str, Role)> = case
        .proven
        .registry
        .iter()
        .map(|(k, (card, role))| (k, (card.name.as_str(), *role)))
        .collect();
    let others = grantable(case);
    html! {
        section #access aria-labelledby="access-h" {
            h2 #access-h { (s.get("sec_access")) }
            p { (s.get("access_intro")) }
            table #holders {
                caption { (s.get("holders")) }
                thead { tr { th scope="col" { (s.get("holder_name")) } th scope="col" { (s.get("holder_role")) } th scope="col" { span.visually-hidden { (s.get("revoke")) } } } }
                tbody {
                    @for k in case.proven.envelopes.keys().filter(|k| !case.proven.submitter_keys.contains(*k)) {
                        @let (name, role) = names.get(k).copied().unwrap_or(("?", Role::Lawyer));
                        tr {
                            th scope="row" { (name) " " small { code { (k.as_str()) } } @if *k == identity.key_id() { " " (s.get("you")) } }
                            td { (crate::page::role_name(s, role)) }
                            td { form.inline method="post" action=(format!("{url}/revoke")) {
                                input type="hidden" name="key" value=(k.as_str());
                                button type="submit" aria-label=(s.fill("revoke_from", &[("name", name)])) { (s.get("revoke")) }
                            } }
                        }
                    }
                }
            }
            p.hint { (s.get("revoke_hint")) }
            @if others.is_empty() { p { (s.get("grant_none")) } }
            @else {
                form method="post" action=(format!("{url}/grant")) {
                    label for="grant-to" { (s.get("grant_to")) }
                    select #grant-to name="key" {
                        @for (k, n) in &others { option value=(k.as_str()) { (n) " (" (k.as_str()) ")" } }
                    }
                    button type="submit" { (s.get("grant")) }
                }
            }
        }
    }
}

/// Export the custody bundle; disclose chosen files to an outside body.
pub(crate) fn share_forms(s: &Strings, case: &OpenedCase) -> Markup {
    let url = format!("/cases/{}", case.detail.case_id);
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let export_to = home.join(format!("custos-export-{}-{stamp}", case.detail.case_id));
    let disclose_to = home.join(format!("custos-disclosure-{}-{stamp}", case.detail.case_id));
    html! {
        section #share aria-labelledby="share-h" {
            h2 #share-h { (s.get("sec_share")) }
            h3 { (s.get("export_title")) }
            p { (s.get("export_intro")) }
            form method="post" action=(format!("{url}/export")) autocomplete="off" {
                label for="export-out" { (s.get("export_out")) }
                input #export-out type="text" name="out" value=(export_to.display().to_string()) required;
                div.check { input #export-archive type="checkbox" name="archive" value="1"; label for="export-archive" { (s.get("export_archive")) } }
                button type="submit" { (s.get("export_button")) }
            }
            h3 { (s.get("disclose_title")) }
            p { (s.get("disclose_intro")) }
            form method="post" action=(format!("{url}/disclose")) autocomplete="off" {
                label for="disclose-to" { (s.get("disclose_to")) }
                input #disclose-to type="text" name="to" required aria-describedby="disclose-to-hint";
                small #disclose-to-hint { (s.get("disclose_to_hint")) }
                fieldset { legend { (s.get("disclose_files")) }
                    div.check { input #disclose-statement type="checkbox" name="statement" value="1"; label for="disclose-statement" { (s.get("disclose_statement")) } }
                    @for (obj, label) in case.objects.iter().filter(|(_, l)| matches!(l.kind, ObjectKind::Evidence | ObjectKind::Medical)) {
                        @let id = format!("disclose-{}", obj.object_id.get(..12).unwrap_or(&obj.object_id));
                        div.check { input #(id) type="checkbox" name="files" value=(obj.object_id); label for=(id) { (label.safe_file_name()) } }
                    }
                }
                div.check { input #disclose-plain type="checkbox" name="plaintext" value="1"; label for="disclose-plain" { (s.get("disclose_plaintext")) } }
                label for="disclose-lang" { (s.get("disclose_lang")) }
                select #disclose-lang name="lang" {
                    @for l in LANGUAGES { option value=(l.code()) { (crate::strings::of(l).language_name()) } }
                }
                label for="disclose-out" { (s.get("export_out")) }
                input #disclose-out type="text" name="out" value=(disclose_to.display().to_string()) required;
                button type="submit" { (s.get("disclose_button")) }
            }
        }
    }
}
