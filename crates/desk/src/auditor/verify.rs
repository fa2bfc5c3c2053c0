//! `/verify`: an export or disclosure bundle, a folder or a `.tar`,
//! checked offline as `custos verify PATH --vkey VKEY` checks it, against
//! the log key the auditor gives (the vault's pinned one by default): each
//! check's line, then the verdict. Nothing is decrypted: an export holds
//! ciphertext an auditor cannot open. A disclosure's files are compared
//! with the logged objects only when the disclosure is sealed to this
//! auditor's own key (or made in the clear); otherwise, as with the CLI,
//! that is not a pass unless the auditor asks for the log alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use maud::{html, Markup};
use serde::Deserialize;

use super::witnesses::{self, WitnessRow};
use super::{auditor, Runs, REFRESH_SECONDS};
use crate::page::{when, Ctx};
use crate::state::Desk;
use crate::strings::Strings;
use custos_client::bundle::unpack_archive;
use custos_core::bundle::disclosure::{self, DisclosureManifest, DisclosureStatus, HeldObject};
use custos_core::bundle::{self, CheckLine, Policy, CHECKPOINT_FILE, MANIFEST_FILE};
use custos_core::custody::checkpoint::LogVerifier;
use custos_core::custody::cosignature::WitnessVerifier;
use custos_core::identity::Identity;

/// One bundle check as it ended.
pub(crate) struct VerifyRun {
    /// The path checked, as typed.
    path: String,
    finished: String,
    /// The checks, or why they could not run (no such path, a damaged
    /// archive).
    result: Result<Checked, String>,
}

/// What the checks found.
struct Checked {
    disclosure: bool,
    case_id: Option<String>,
    rows: Vec<Row>,
    verdict: Verdict,
    /// A disclosure: who signed it, as the log registered them.
    disclosed_by: Option<String>,
    /// A disclosure: whom it is for.
    recipient: Option<String>,
    /// A disclosure: whether its files were compared with the logged
    /// objects, and with this auditor's key.
    contents_checked: bool,
    with_my_key: bool,
    /// A disclosure: the logged objects it holds.
    objects: Vec<HeldObject>,
    /// The bundle's checkpoint, when it verified: size and root.
    checkpoint: Option<(u64, String)>,
    /// The witnesses' cosignatures on it.
    cosignatures: Vec<WitnessRow>,
}

/// One check's line.
struct Row {
    check: &'static str,
    mark: Mark,
    detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Ok,
    Failed,
    /// Ran without the key it needed: says so, is not a pass.
    Skipped,
}

/// The verdict, as the CLI's last line gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Verified,
    /// A disclosure whose files could not be compared, checked on its log
    /// entries and ciphertexts only, as asked.
    LogOnly,
    /// The same, not asked: not verified.
    FilesNotChecked,
    /// The check that failed.
    Failed(&'static str),
}

/// The form.
#[derive(Debug, Deserialize)]
pub(crate) struct VerifyForm {
    #[serde(default)]
    path: String,
    #[serde(default)]
    vkey: String,
    #[serde(default)]
    witnesses: String,
    #[serde(default)]
    quorum: String,
    #[serde(default)]
    log_only: Option<String>,
}

/// What a check needs, read from the form.
struct Request {
    path: PathBuf,
    log: LogVerifier,
    policy: Policy,
    log_only: bool,
    /// The witnesses to look for on the bundle's checkpoint: those given,
    /// and those pinned for the vault.
    known: Vec<WitnessVerifier>,
}

impl VerifyForm {
    fn request(&self, s: &Strings, pinned: &[String]) -> Result<Request, String> {
        let path = PathBuf::from(self.path.trim());
        if !path.is_absolute() {
            return Err(s.get("au_verify_needs_absolute").to_owned());
        }
        let log = LogVerifier::parse(self.vkey.trim())
            .map_err(|e| s.fill("au_verify_bad_vkey", &[("error", &e.to_string())]))?;
        // As `custos verify`: all the given witnesses unless told fewer.
        let (witnesses, quorum) = super::witnesses::from_form(s, &self.witnesses, &self.quorum)?;
        let mut known = witnesses.clone();
        known.extend(
            witnesses::merge(&[pinned])
                .into_iter()
                .filter(|w| !witnesses.contains(w)),
        );
        Ok(Request {
            path,
            log,
            policy: Policy { witnesses, quorum },
            log_only: self.log_only.is_some(),
            known,
        })
    }
}

/// `GET /verify`.
pub(crate) async fn page(State(desk): State<Arc<Desk>>, Extension(runs): Extension<Arc<Runs>>) -> Response {
    let cx = Ctx::of(&desk).await;
    auditor!(cx);
    let s = cx.s;
    let view = runs.verify.view();
    let body = html! {
        p { (s.get("au_verify_intro")) }
        @if view.running.is_some() {
            p.progress #verify-running role="status" { (s.get("au_verify_running")) }
        }
        form method="post" action="/verify" {
            label for="bundle-path" { (s.get("au_verify_path")) }
            p.hint #bundle-path-hint { (s.get("au_verify_path_hint")) }
            input #bundle-path type="text" name="path" required aria-describedby="bundle-path-hint" autocomplete="off";
            label for="vkey" { (s.get("au_verify_vkey")) }
            p.hint #vkey-hint { (s.get("au_verify_vkey_hint")) }
            input #vkey type="text" name="vkey" required value=(desk.log.vkey()) aria-describedby="vkey-hint" autocomplete="off";
            details #verify-options {
                summary { (s.get("au_verify_witness_options")) }
                label for="verify-witnesses" { (s.get("au_verify_witnesses")) }
                p.hint #verify-witnesses-hint { (s.get("au_verify_witnesses_hint")) }
                textarea #verify-witnesses name="witnesses" rows="2" aria-describedby="verify-witnesses-hint" {}
                label for="verify-quorum" { (s.get("au_audit_quorum")) }
                input #verify-quorum type="number" name="quorum" min="1" inputmode="numeric";
            }
            div.check {
                input #log-only type="checkbox" name="log_only" value="1" aria-describedby="log-only-hint";
                label for="log-only" { (s.get("au_verify_log_only")) }
            }
            p.hint #log-only-hint { (s.get("au_verify_log_only_hint")) }
            button #run-verify type="submit" disabled[view.running.is_some()] { (s.get("au_verify_run")) }
        }
        @if let Some(run) = &view.last { (result(s, run)) }
    };
    let refresh = view.running.is_some().then_some(REFRESH_SECONDS);
    cx.page_refreshing(s.get("au_verify_title"), "/verify", body, refresh)
}

/// `POST /verify`: check the bundle in the background.
pub(crate) async fn run(
    State(desk): State<Arc<Desk>>,
    Extension(runs): Extension<Arc<Runs>>,
    Form(form): Form<VerifyForm>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = auditor!(cx);
    let pinned = super::audit::pinned_witnesses(&desk).await;
    let request = match form.request(cx.s, &pinned) {
        Ok(r) => r,
        Err(e) => {
            desk.flash(true, e);
            return Redirect::to("/verify").into_response();
        }
    };
    let typed = form.path.trim().to_owned();
    // Archives are unpacked into the desk's private scratch folder, and
    // the copy removed as soon as it is checked. (A disclosure made in the
    // clear holds plaintext; it is in the clear already wherever its .tar
    // is kept, and its copy here is private and short-lived.)
    let scratch = desk.scratch.path().to_path_buf();
    let work = {
        let typed = typed.clone();
        async move {
            // Re-hashing a bundle's objects is blocking work.
            let result = tokio::task::spawn_blocking(move || check(&request, &identity, &scratch))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            VerifyRun {
                path: typed,
                finished: super::now(),
                result,
            }
        }
    };
    let started = runs.verify.spawn(work, move |e| VerifyRun {
        path: typed,
        finished: super::now(),
        result: Err(e),
    });
    if !started {
        desk.flash(false, cx.s.get("au_verify_already_running"));
    }
    Redirect::to("/verify").into_response()
}

/// The checks, as `custos verify` runs them.
fn check(request: &Request, identity: &Identity, scratch: &Path) -> Result<Checked, String> {
    let path = &request.path;
    if !path.exists() {
        return Err(format!("{}: no such file or folder", path.display()));
    }
    let unpacked;
    let dir = if path.is_file() {
        unpacked = tempfile::Builder::new()
            .prefix("verify-")
            .tempdir_in(scratch)
            .map_err(|e| e.to_string())?;
        custos_durable::create_private_dir(unpacked.path()).map_err(|e| e.to_string())?;
        unpack_archive(path, unpacked.path()).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        path.clone()
    };
    let checked = if disclosure::is_disclosure(&dir) {
        check_disclosure(&dir, request, identity)
    } else {
        let (report, verified) = bundle::verify_dir(&dir, &request.log, &request.policy);
        Checked {
            disclosure: false,
            case_id: report.case_id.clone(),
            verdict: match report.failure() {
                None => Verdict::Verified,
                Some(f) => Verdict::Failed(f.check),
            },
            rows: report.checks.iter().map(|c| row(c, false)).collect(),
            disclosed_by: None,
            recipient: None,
            contents_checked: false,
            with_my_key: false,
            objects: vec![],
            checkpoint: verified.map(|v| (v.checkpoint.size, B64.encode(v.checkpoint.root))),
            cosignatures: vec![],
        }
    };
    Ok(with_cosignatures(checked, &dir, request))
}

/// The witnesses' cosignatures on the bundle's checkpoint, once it
/// verified.
fn with_cosignatures(mut checked: Checked, dir: &Path, request: &Request) -> Checked {
    if checked.checkpoint.is_some() {
        let note = std::fs::read_to_string(dir.join(CHECKPOINT_FILE)).unwrap_or_default();
        checked.cosignatures = witnesses::rows(&note, &request.log, &request.known, custos_core::custody::unix_now());
    }
    checked
}

fn row(c: &CheckLine, skipped: bool) -> Row {
    Row {
        check: c.check,
        mark: match (c.passed, skipped) {
            (false, _) => Mark::Failed,
            (true, true) => Mark::Skipped,
            (true, false) => Mark::Ok,
        },
        detail: c.detail.clone(),
    }
}

/// A disclosure: its files compared with the logged objects when it is
/// sealed to this auditor (or in the clear).
fn check_disclosure(dir: &Path, request: &Request, identity: &Identity) -> Checked {
    let sealed_to_me = std::fs::read(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<DisclosureManifest>(&b).ok())
        .and_then(|m| m.recipient_key_id)
        .is_some_and(|k| k == identity.key_id().as_str());
    let key = sealed_to_me.then(|| identity.age_identity());
    let (report, verified) = disclosure::verify_dir(dir, &request.log, &request.policy, key);
    let verdict = match (report.status, report.failure()) {
        (DisclosureStatus::Verified, _) => Verdict::Verified,
        (DisclosureStatus::FilesNotChecked, _) if request.log_only => Verdict::LogOnly,
        (DisclosureStatus::FilesNotChecked, _) => Verdict::FilesNotChecked,
        (_, f) => Verdict::Failed(f.map_or("disclosure", |f| f.check)),
    };
    Checked {
        disclosure: true,
        case_id: report.case_id.clone(),
        rows: report
            .checks
            .iter()
            .map(|c| row(c, report.unchecked.contains(&c.check)))
            .collect(),
        verdict,
        disclosed_by: report.disclosed_by.clone(),
        recipient: report.recipient.clone(),
        contents_checked: report.contents_checked,
        with_my_key: sealed_to_me,
        objects: if report.status == DisclosureStatus::Failed {
            vec![]
        } else {
            report.objects.clone()
        },
        checkpoint: verified.map(|v| (v.checkpoint.size, B64.encode(v.checkpoint.root))),
        cosignatures: vec![],
    }
}

/// The result of the last check.
fn result(s: &Strings, run: &VerifyRun) -> Markup {
    let heading = s.fill(
        "au_verify_result_of",
        &[("path", &run.path), ("time", &when(&run.finished))],
    );
    let checked = match &run.result {
        Ok(c) => c,
        Err(e) => {
            return html! {
                section #verify-result aria-labelledby="verify-result-h" {
                    h2 #verify-result-h { (heading) }
                    p.flash.failed #verify-verdict data-passed="false" role="alert" { (s.fill("au_verify_could_not_run", &[("error", e)])) }
                }
            }
        }
    };
    let case = checked.case_id.as_deref().unwrap_or("?");
    html! {
        section #verify-result aria-labelledby="verify-result-h" {
            h2 #verify-result-h { (heading) }
            p { (s.get(if checked.disclosure { "au_verify_kind_disclosure" } else { "au_verify_kind_export" })) }
            @match checked.verdict {
                // Cleaned copies are not the logged objects byte for byte,
                // by design: the verdict must not say they are.
                Verdict::Verified if checked.disclosure && checked.objects.iter().any(|o| o.cleaned) => p.flash #verify-verdict data-passed="true" role="status" { strong { "✓ " (s.fill("au_verify_ok_disclosure_cleaned", &[("case", case)])) } },
                Verdict::Verified if checked.disclosure => p.flash #verify-verdict data-passed="true" role="status" { strong { "✓ " (s.fill("au_verify_ok_disclosure", &[("case", case)])) } },
                Verdict::Verified => p.flash #verify-verdict data-passed="true" role="status" { strong { "✓ " (s.fill("au_verify_ok_export", &[("case", case)])) } },
                Verdict::LogOnly => p.flash #verify-verdict data-passed="true" role="status" { strong { "✓ " (s.fill("au_verify_log_only_ok", &[("case", case)])) } },
                Verdict::FilesNotChecked => p.flash.failed #verify-verdict data-passed="false" role="alert" { strong { "✗ " (s.get("au_verify_files_not_checked")) } },
                Verdict::Failed(check) => p.flash.failed #verify-verdict data-passed="false" data-failed-check=(check) role="alert" {
                    strong { "✗ " (s.fill("au_verify_failed", &[("check", check), ("words", check_words(s, check).unwrap_or(check))])) }
                },
            }
            table #verify-checks {
                caption { (s.get("au_verify_checks")) }
                thead { tr {
                    th scope="col" { (s.get("au_col_check")) }
                    th scope="col" { (s.get("au_col_result")) }
                    th scope="col" { (s.get("au_col_detail")) }
                } }
                tbody { @for r in &checked.rows {
                    tr data-check=(r.check) data-outcome=(match r.mark { Mark::Ok => "passed", Mark::Failed => "failed", Mark::Skipped => "skipped" }) {
                        th scope="row" { code { (r.check) } @if let Some(words) = check_words(s, r.check) { " " span.muted { (words) } } }
                        @match r.mark {
                            Mark::Ok => td.check-ok { "✓ " (s.get("au_result_passed")) },
                            Mark::Failed => td.check-failed { "✗ " (s.get("au_result_failed")) },
                            Mark::Skipped => td.muted { "– " (s.get("au_result_skipped")) },
                        }
                        td { (r.detail) }
                    }
                } }
            }
            @if checked.disclosure { (disclosure_facts(s, checked)) }
            @if let Some((size, root)) = &checked.checkpoint {
                h3 { (s.get("au_verify_checkpoint")) }
                p { (s.fill("au_verify_checkpoint_of", &[("size", &size.to_string()), ("root", root)])) }
                (witnesses::table(s, "verify-cosignatures", s.get("au_verify_cosignatures"), &checked.cosignatures))
            }
        }
    }
}

fn disclosure_facts(s: &Strings, c: &Checked) -> Markup {
    html! {
        dl.summary #disclosure-facts {
            @if let Some(by) = &c.disclosed_by {
                dt { (s.get("au_verify_disclosed_by")) } dd { code { (by) } " " (s.get("au_verify_disclosed_by_hint")) }
            }
            @if let Some(to) = &c.recipient {
                dt { (s.get("au_verify_recipient")) } dd { (to) }
            }
            dt { (s.get("au_verify_files_compared")) }
            dd #contents-checked { (s.get(match (c.contents_checked, c.with_my_key) {
                (true, true) => "au_verify_compared_mine",
                (true, false) => "au_verify_compared_clear",
                (false, _) => "au_verify_compared_not",
            })) }
        }
        @if !c.objects.is_empty() {
            table #disclosed-objects {
                caption { (s.get("au_verify_objects")) }
                thead { tr {
                    th scope="col" { "SHA-256" }
                    th scope="col" { (s.get("au_verify_object_file")) }
                    th scope="col" { (s.get("au_verify_object_received")) }
                    th scope="col" { (s.get("tl_index")) }
                } }
                tbody { @for o in &c.objects {
                    tr {
                        th scope="row" { code title=(o.object_id) { (o.object_id.get(..16).unwrap_or(&o.object_id)) } }
                        td {
                            (o.file.as_deref().unwrap_or(s.get("au_verify_object_unchecked")))
                            @if o.cleaned { " " strong.cleaned { (s.get("au_verify_object_cleaned")) } }
                        }
                        td { (when(&o.received)) }
                        td { (o.stored_index) }
                    }
                } }
            }
        }
    }
}

/// A bundle check's name in words, for the checks `custos verify` runs.
fn check_words<'a>(s: &'a Strings, check: &str) -> Option<&'a str> {
    let key = match check {
        "vkey" => "au_vcheck_vkey",
        "checkpoint" => "au_vcheck_checkpoint",
        "witnesses" => "au_vcheck_witnesses",
        "files" => "au_vcheck_files",
        "inclusion" => "au_vcheck_inclusion",
        "chain" => "au_vcheck_chain",
        "objects" => "au_vcheck_objects",
        "disclosure" => "au_vcheck_disclosure",
        "labels" => "au_vcheck_labels",
        "contents" => "au_vcheck_contents",
        "manifest" => "au_vcheck_manifest",
        "readme" => "au_vcheck_readme",
        "report" => "au_vcheck_report",
        "summary" => "au_vcheck_summary",
        "decrypt" => "au_vcheck_decrypt",
        _ => return None,
    };
    Some(s.get(key))
}
