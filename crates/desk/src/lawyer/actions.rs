//! What a lawyer changes on a case from its page: reply to the submitter,
//! the workflow (status, tags, assignee) and notes, grant and revoke,
//! export and disclosure. Each is the CLI's own flow: signed, sealed
//! where the CLI seals, its receipt checked; the page then says what
//! happened (post, redirect, get).

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;

use crate::page::Ctx;
use crate::state::Desk;
use custos_client::export::{export as export_case, ExportOptions};
use custos_client::flows::{self, DiscloseOptions, Recipient};
use custos_client::workflow::{Assignment, Change, Status};
use custos_client::ClientError;
use custos_core::bundle::disclosure::Language;
use custos_core::custody::Action;
use custos_core::identity::{Identity, KeyId, Role};

/// Forms post to here; the answer goes back to the case's section.
async fn done(
    desk: &Arc<Desk>,
    cx: &Ctx,
    identity: &Identity,
    case_id: &str,
    section: &str,
    result: Result<String, ClientError>,
) -> Response {
    match result {
        Ok(text) => {
            desk.flash(false, text);
            super::reindex(desk, identity, case_id).await;
        }
        Err(e) => desk.flash(true, cx.s.fill("action_failed", &[("error", &e.to_string())])),
    }
    Redirect::to(&format!("/cases/{case_id}#{section}")).into_response()
}

/// The lawyer, or the page saying the desk is not theirs.
macro_rules! lawyer {
    ($cx:expr) => {
        match $cx.as_role(Role::Lawyer).await {
            Ok(i) => i,
            Err(r) => return r,
        }
    };
}

/// The reply form.
#[derive(Deserialize)]
pub(crate) struct ReplyForm {
    text: crate::page::SecretText,
}

/// `POST /cases/{case}/reply`.
pub(crate) async fn reply(
    State(desk): State<Arc<Desk>>,
    UrlPath(case_id): UrlPath<String>,
    Form(form): Form<ReplyForm>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = lawyer!(cx);
    let result = async {
        if form.text.0.trim().is_empty() {
            return Err(ClientError::Usage(cx.s.get("reply_empty").into()));
        }
        let receipt = flows::reply_text(&desk.client, &identity, &desk.log, &case_id, form.text.0).await?;
        flows::check_receipt(&receipt, &desk.log, Action::ObjectStored)?;
        Ok(cx.s.get("reply_sent").to_owned())
    }
    .await;
    done(&desk, &cx, &identity, &case_id, "messages", result).await
}

/// The workflow form: every field optional; tags to add are separated by
/// commas. `status_was` and `assign_was` are what the page showed.
#[derive(Deserialize)]
pub(crate) struct WorkflowForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    status_was: String,
    #[serde(default)]
    assign_was: String,
    #[serde(default)]
    add_tags: String,
    #[serde(default)]
    remove_tags: Vec<String>,
    #[serde(default)]
    assign: String,
}

/// `POST /cases/{case}/workflow`.
pub(crate) async fn workflow(
    State(desk): State<Arc<Desk>>,
    UrlPath(case_id): UrlPath<String>,
    Form(form): Form<WorkflowForm>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = lawyer!(cx);
    let result = async {
        let mut change = Change {
            add_tags: form
                .add_tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            remove_tags: form.remove_tags,
            ..Change::default()
        };
        // Only what the lawyer changed on the page is a change.
        if !form.status.is_empty() && form.status != form.status_was {
            change.status = Some(
                form.status
                    .parse::<Status>()
                    .map_err(|e| ClientError::Usage(e.to_string()))?,
            );
        }
        if form.assign != form.assign_was {
            change.assign = match form.assign.as_str() {
                "" => None,
                "nobody" => Some(Assignment::Nobody),
                k => Some(Assignment::To(
                    k.parse::<KeyId>().map_err(|e| ClientError::Usage(e.to_string()))?,
                )),
            };
        }
        if change.is_empty() {
            return Ok(cx.s.get("workflow_unchanged").to_owned());
        }
        flows::case_change(&desk.client, &identity, &desk.log, &case_id, change).await?;
        Ok(cx.s.get("workflow_saved").to_owned())
    }
    .await;
    done(&desk, &cx, &identity, &case_id, "workflow", result).await
}

/// The note form.
#[derive(Deserialize)]
pub(crate) struct NoteForm {
    note: crate::page::SecretText,
}

/// `POST /cases/{case}/note`.
pub(crate) async fn note(
    State(desk): State<Arc<Desk>>,
    UrlPath(case_id): UrlPath<String>,
    Form(form): Form<NoteForm>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = lawyer!(cx);
    // A textarea sends CRLF line ends; a note holds LF ones (a lone CR
    // is a control character the workflow refuses).
    let change = Change {
        note: Some(form.note.0.replace("\r\n", "\n")),
        ..Change::default()
    };
    let result = flows::case_change(&desk.client, &identity, &desk.log, &case_id, change)
        .await
        .map(|_| cx.s.get("note_saved").to_owned());
    done(&desk, &cx, &identity, &case_id, "workflow", result).await
}

/// The grant and revoke forms' one field.
#[derive(Deserialize)]
pub(crate) struct KeyForm {
    key: String,
}

/// `POST /cases/{case}/grant`.
pub(crate) async fn grant(
    State(desk): State<Arc<Desk>>,
    UrlPath(case_id): UrlPath<String>,
    Form(form): Form<KeyForm>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = lawyer!(cx);
    let result = async {
        let to: KeyId = form
            .key
            .parse()
            .map_err(|e: custos_core::identity::IdentityError| ClientError::Usage(e.to_string()))?;
        let receipt = flows::grant(&desk.client, &identity, &desk.log, &case_id, &to).await?;
        flows::check_receipt(&receipt, &desk.log, Action::EnvelopeGranted)?;
        Ok(cx.s.fill("granted", &[("key", to.as_str())]))
    }
    .await;
    done(&desk, &cx, &identity, &case_id, "access", result).await
}

/// `POST /cases/{case}/revoke`.
pub(crate) async fn revoke(
    State(desk): State<Arc<Desk>>,
    UrlPath(case_id): UrlPath<String>,
    Form(form): Form<KeyForm>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = lawyer!(cx);
    let result = async {
        let from: KeyId = form
            .key
            .parse()
            .map_err(|e: custos_core::identity::IdentityError| ClientError::Usage(e.to_string()))?;
        let receipt = desk.client.revoke(identity.signing_key(), &case_id, &from).await?;
        flows::check_receipt(&receipt, &desk.log, Action::EnvelopeRevoked)?;
        Ok(cx.s.fill("revoked", &[("key", from.as_str())]))
    }
    .await;
    if from_is_me(&form.key, &identity) {
        // Revoking oneself: the case is no longer this lawyer's to show.
        return match result {
            Ok(text) => {
                desk.flash(false, text);
                super::reindex(&desk, &identity, &case_id).await;
                Redirect::to("/inbox").into_response()
            }
            Err(e) => done(&desk, &cx, &identity, &case_id, "access", Err(e)).await,
        };
    }
    done(&desk, &cx, &identity, &case_id, "access", result).await
}

fn from_is_me(key: &str, identity: &Identity) -> bool {
    key == identity.key_id().as_str()
}

/// The export form.
#[derive(Deserialize)]
pub(crate) struct ExportForm {
    out: String,
    #[serde(default)]
    archive: Option<String>,
}

/// `POST /cases/{case}/export`: the bundle `custos export` writes, with
/// its report.
pub(crate) async fn export(
    State(desk): State<Arc<Desk>>,
    UrlPath(case_id): UrlPath<String>,
    Form(form): Form<ExportForm>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = lawyer!(cx);
    let result = async {
        let out = absolute(&cx, &form.out)?;
        let options = ExportOptions {
            archive: form.archive.is_some(),
            report: true,
        };
        let done = export_case(&desk.client, &identity, &desk.log, &case_id, &out, options).await?;
        Ok(cx.s.fill(
            "exported",
            &[
                ("path", &done.path.display().to_string()),
                ("events", &done.events.to_string()),
            ],
        ))
    }
    .await;
    done(&desk, &cx, &identity, &case_id, "share", result).await
}

/// A path the lawyer typed, which must be absolute: the desk's working
/// folder is not one the lawyer chose.
fn absolute(cx: &Ctx, typed: &str) -> Result<PathBuf, ClientError> {
    let p = PathBuf::from(typed.trim());
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(ClientError::Usage(cx.s.get("save_needs_absolute").into()))
    }
}

/// The disclosure form.
#[derive(Deserialize)]
pub(crate) struct DiscloseForm {
    to: String,
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    statement: Option<String>,
    #[serde(default)]
    plaintext: Option<String>,
    #[serde(default)]
    lang: String,
    out: String,
}

/// `POST /cases/{case}/disclose`: `custos disclose`, with the files
/// ticked. The lawyer saw every file ticked on the page, so choosing the
/// statement and forms counts as confirmed.
pub(crate) async fn disclose(
    State(desk): State<Arc<Desk>>,
    UrlPath(case_id): UrlPath<String>,
    Form(form): Form<DiscloseForm>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = lawyer!(cx);
    let result = async {
        let out = absolute(&cx, &form.out)?;
        let options = DiscloseOptions {
            to: Recipient::from_arg(form.to.trim())?,
            files: form.files,
            statement: form.statement.is_some(),
            confirmed: true,
            announce: None,
            plaintext: form.plaintext.is_some(),
            // The desk's form offers no cleaning yet: `custos disclose
            // --clean` does.
            clean: false,
            language: form.lang.parse::<Language>().unwrap_or(cx.language),
        };
        let done = flows::disclose(&desk.client, &identity, &desk.log, &case_id, &out, options).await?;
        Ok(cx.s.fill(
            "disclosed",
            &[
                ("path", &done.path.display().to_string()),
                ("n", &done.files.len().to_string()),
            ],
        ))
    }
    .await;
    done(&desk, &cx, &identity, &case_id, "share", result).await
}
