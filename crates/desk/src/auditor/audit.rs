//! `/audit`: the whole custody log audited from this desk, as `custos
//! audit` does it (`flows::audit_with`): every entry downloaded and
//! replayed here (chains, actor signatures, registry changes), the Merkle
//! root held to the signed checkpoint, the witnesses' cosignatures, and
//! the log held to the checkpoint the last audit verified. The page then
//! shows each check, the last verified checkpoint and its cosignatures.
//!
//! Where the last verified checkpoint is kept: `custos audit` keeps one
//! only when given `--state FILE`, and without one an audit cannot tell
//! that the log was rolled back, rewritten or forked since the last. A
//! careful auditor expects the desk to remember, so it keeps the state
//! for each vault in the client's own settings folder, beside the pins
//! and the last accepted checkpoint (`TrustStore::dir()/audits/`, named
//! like the vault's pin), never in a folder the desk happens to run in.
//! The page names the file, so `custos audit --state FILE` carries on
//! from the same checkpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use maud::{html, Markup};
use serde::Deserialize;

use super::checks::{check_name, lines, outcome_cell, outcome_id, Outcome};
use super::witnesses::{self, WitnessRow};
use super::{auditor, Runs, REFRESH_SECONDS};
use crate::page::{when, Ctx};
use crate::state::Desk;
use crate::strings::Strings;
use custos_client::flows::{self, AuditOptions, AuditReport, AuditState};
use custos_client::trust::TrustStore;
use custos_core::bundle::Policy;
use custos_core::custody::cosignature::WitnessVerifier;

/// One audit as it ended.
pub(crate) struct AuditRun {
    /// When it ended (RFC 3339).
    finished: String,
    /// The report, or why the audit could not run at all (the vault did
    /// not answer, the state file could not be written).
    result: Result<AuditReport, String>,
    /// The log's size at the last verified checkpoint before this audit.
    before: Option<u64>,
}

/// The file this desk keeps the last verified checkpoint of its vault in
/// (see the module's note).
fn state_file(desk: &Desk) -> PathBuf {
    let trust = trust_store(desk);
    let pin = trust.pin_path(desk.client.base());
    let name = pin
        .file_name()
        .map(ToOwned::to_owned)
        .unwrap_or_else(|| "vault.json".into());
    trust.dir().join("audits").join(name)
}

fn trust_store(desk: &Desk) -> TrustStore {
    desk.client.pins().cloned().unwrap_or_else(TrustStore::default_location)
}

/// The state file's content, if it holds one (read off the async threads).
async fn read_state(path: PathBuf) -> Option<AuditState> {
    tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path).ok()?;
        serde_json::from_slice(&bytes).ok()
    })
    .await
    .ok()
    .flatten()
}

/// The witnesses pinned for this vault (named by it once, kept since).
pub(crate) async fn pinned_witnesses(desk: &Desk) -> Vec<String> {
    let (trust, server) = (trust_store(desk), desk.client.base().to_owned());
    tokio::task::spawn_blocking(move || trust.pin(&server).ok().flatten().map(|p| p.witnesses))
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// `GET /audit`.
pub(crate) async fn page(State(desk): State<Arc<Desk>>, Extension(runs): Extension<Arc<Runs>>) -> Response {
    let cx = Ctx::of(&desk).await;
    auditor!(cx);
    let s = cx.s;
    let view = runs.audit.view();
    let file = state_file(&desk);
    let kept = read_state(file.clone()).await;
    let pinned = pinned_witnesses(&desk).await;
    let kept_witnesses = kept.as_ref().map(|k| k.witnesses.clone()).unwrap_or_default();
    let known = witnesses::merge(&[&pinned, &kept_witnesses]);
    let body = html! {
        p { (s.get("au_audit_intro")) }
        @if let Some(since) = &view.running {
            p.progress #audit-running role="status" {
                (s.fill("au_audit_running", &[("time", &when(since))]))
                @let (done, total) = (runs.audit_progress.0.load(Ordering::Relaxed), runs.audit_progress.1.load(Ordering::Relaxed));
                @if total > 0 { " " (s.fill("au_audit_progress", &[("done", &done.to_string()), ("total", &total.to_string())])) }
            }
        }
        form method="post" action="/audit/run" {
            // The witnesses are filled in and sent whether or not the
            // details are open; they are tucked away because most audits
            // need no change to them.
            details #witness-options {
                summary { (s.fill("au_audit_witness_options", &[("n", &pinned.len().to_string())])) }
                label for="witnesses" { (s.get("au_audit_witness_keys")) }
                p.hint #witnesses-hint { (s.get("au_audit_witness_keys_hint")) }
                // The witnesses earlier audits kept, when there are any:
                // the vault's own list (the pins) only suggests more.
                textarea #witnesses name="witnesses" rows="3" aria-describedby="witnesses-hint" {
                    (if kept_witnesses.is_empty() { pinned.join("\n") } else { kept_witnesses.join("\n") })
                }
                @let suggested: Vec<&String> = pinned.iter().filter(|p| !kept_witnesses.contains(p)).collect();
                @if !kept_witnesses.is_empty() && !suggested.is_empty() {
                    p.hint #witnesses-suggested { (s.get("au_audit_witnesses_suggested")) " " @for w in &suggested { code { (w) } " " } }
                }
                label for="quorum" { (s.get("au_audit_quorum")) }
                input #quorum type="number" name="quorum" min="1" inputmode="numeric" aria-describedby="quorum-hint"
                    value=[kept.as_ref().filter(|k| !k.witnesses.is_empty()).map(|k| k.quorum)];
                p.hint #quorum-hint { (s.get("au_audit_quorum_hint")) }
                div.check {
                    input #replace-witnesses type="checkbox" name="replace" value="1";
                    label for="replace-witnesses" { (s.get("au_audit_replace_witnesses")) }
                }
            }
            button #run-audit type="submit" disabled[view.running.is_some()] { (s.get("au_audit_run")) }
        }
        p.hint #state-file { (s.fill("au_audit_state_file", &[("file", &file.display().to_string())])) }
        @if let Some(run) = &view.last { (result(&cx, run, &file)) }
        (last_verified(&cx, kept.as_ref(), &known))
        section #cases aria-labelledby="cases-h" {
            h2 #cases-h { (s.get("au_audit_cases")) }
            p { (s.get("au_audit_cases_intro")) " " a #cases-link href="/audit/cases" { (s.get("au_audit_cases_link")) } }
        }
    };
    let refresh = view.running.is_some().then_some(REFRESH_SECONDS);
    cx.page_refreshing(s.get("au_audit_title"), "/audit", body, refresh)
}

/// The result of the last audit.
fn result(cx: &Ctx, run: &AuditRun, file: &Path) -> Markup {
    let s = cx.s;
    let report = match &run.result {
        Ok(r) => r,
        Err(e) => {
            return html! {
                section #audit-result aria-labelledby="result-h" {
                    h2 #result-h { (s.fill("au_audit_result_of", &[("time", &when(&run.finished))])) }
                    p.flash.failed #audit-verdict data-passed="false" role="alert" { (s.fill("au_audit_could_not_run", &[("error", e)])) }
                }
            }
        }
    };
    let lines = lines(s, report, run.before, file, &cx.desk.log.vkey());
    let failed = lines.iter().find(|l| l.outcome == Outcome::Failed);
    html! {
        section #audit-result aria-labelledby="result-h" {
            h2 #result-h { (s.fill("au_audit_result_of", &[("time", &when(&run.finished))])) }
            @match (report.passed(), failed) {
                (true, _) => p.flash #audit-verdict data-passed="true" role="status" { strong { "✓ " (s.get("au_audit_passed")) } },
                (false, f) => p.flash.failed #audit-verdict data-passed="false" role="alert" {
                    strong { "✗ " (s.fill("au_audit_failed_at", &[("check", f.map_or("?", |l| check_name(s, l.id)))])) }
                    br; (report.failure.as_deref().unwrap_or(""))
                },
            }
            table #audit-checks {
                caption { (s.get("au_audit_checks")) }
                thead { tr {
                    th scope="col" { (s.get("au_col_check")) }
                    th scope="col" { (s.get("au_col_result")) }
                    th scope="col" { (s.get("au_col_detail")) }
                } }
                tbody { @for l in &lines {
                    tr data-check=(l.id) data-outcome=(outcome_id(l.outcome)) {
                        th scope="row" { (check_name(s, l.id)) }
                        (outcome_cell(s, l.outcome))
                        td { (l.detail) }
                    }
                } }
            }
            @if !report.actions.is_empty() {
                table #audit-actions {
                    caption { (s.get("au_audit_actions")) }
                    thead { tr { th scope="col" { (s.get("tl_action")) } th scope="col" { (s.get("au_audit_count")) } } }
                    tbody { @for (action, count) in &report.actions {
                        tr data-action=(action) { th scope="row" { (s.get(&format!("action_{action}"))) } td { (count) } }
                    } }
                }
            }
        }
    }
}

/// The checkpoint the state file keeps, and its witnesses' cosignatures.
fn last_verified(cx: &Ctx, kept: Option<&AuditState>, known: &[WitnessVerifier]) -> Markup {
    let s = cx.s;
    let log = &cx.desk.log;
    let checkpoint = kept.and_then(|k| log.verify(&k.checkpoint).ok().map(|cp| (k, cp)));
    html! {
        section #last-verified aria-labelledby="last-verified-h" {
            h2 #last-verified-h { (s.get("au_audit_last_verified")) }
            @match checkpoint {
                None => p { (s.get("au_audit_last_verified_none")) },
                Some((k, cp)) => {
                    dl.summary {
                        dt { (s.get("au_audit_cp_size")) } dd #last-size { (cp.size) }
                        dt { (s.get("au_audit_cp_root")) } dd { code #last-root { (B64.encode(cp.root)) } }
                        dt { (s.get("au_audit_cp_key")) } dd { code { (log.vkey()) } }
                        @if k.quorum > 0 {
                            dt { (s.get("au_audit_cp_quorum")) } dd { (s.fill("au_audit_cp_quorum_of", &[("quorum", &k.quorum.to_string()), ("n", &k.witnesses.len().to_string())])) }
                        }
                    }
                    @let rows: Vec<WitnessRow> = witnesses::rows(&k.checkpoint, log, known, custos_core::custody::unix_now());
                    (witnesses::table(s, "last-witnesses", s.get("au_audit_cp_cosignatures"), &rows))
                }
            }
        }
    }
}

/// The audit form.
#[derive(Debug, Deserialize)]
pub(crate) struct AuditForm {
    #[serde(default)]
    witnesses: String,
    #[serde(default)]
    quorum: String,
    /// Set when the auditor means to drop a witness earlier audits kept,
    /// or to lower their quorum.
    #[serde(default)]
    replace: Option<String>,
}

impl AuditForm {
    /// The witnesses asked for: `None` when none are typed (the state
    /// file's then hold).
    fn policy(&self, s: &Strings) -> Result<Option<Policy>, String> {
        let (witnesses, quorum) = super::witnesses::from_form(s, &self.witnesses, &self.quorum)?;
        Ok((!witnesses.is_empty()).then_some(Policy { witnesses, quorum }))
    }
}

/// Whether `policy` drops a witness `kept` requires, or lowers its quorum.
fn drops_kept(kept: &AuditState, policy: &Policy) -> bool {
    let asked: Vec<String> = policy.witnesses.iter().map(|w| w.vkey()).collect();
    kept.witnesses.iter().any(|w| !asked.contains(w)) || policy.quorum < kept.quorum
}

/// `POST /audit/run`: start the audit in the background.
pub(crate) async fn run(
    State(desk): State<Arc<Desk>>,
    Extension(runs): Extension<Arc<Runs>>,
    Form(form): Form<AuditForm>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = auditor!(cx);
    let policy = match form.policy(cx.s) {
        Ok(p) => p,
        Err(e) => {
            desk.flash(true, e);
            return Redirect::to("/audit").into_response();
        }
    };
    let file = state_file(&desk);
    let kept = read_state(file.clone()).await;
    // Earlier audits' witnesses stand unless the auditor says otherwise: a
    // vault that starts naming a witness of its own must not, through a
    // prefilled form, replace the independent one an auditor required.
    if let (Some(k), Some(p), None) = (&kept, &policy, &form.replace) {
        if drops_kept(k, p) {
            desk.flash(true, cx.s.get("au_audit_would_drop_witnesses"));
            return Redirect::to("/audit").into_response();
        }
    }
    let before = kept.and_then(|k| desk.log.verify(&k.checkpoint).ok()).map(|cp| cp.size);
    runs.audit_progress.0.store(0, Ordering::Relaxed);
    runs.audit_progress.1.store(0, Ordering::Relaxed);
    let work = {
        let desk = desk.clone();
        let progress = runs.audit_progress.clone();
        async move {
            let result = async {
                let folder = file.parent().map(Path::to_path_buf).unwrap_or_default();
                tokio::task::spawn_blocking(move || custos_durable::create_private_dir(&folder))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                let options = AuditOptions {
                    witnesses: policy,
                    progress: Some(Arc::new(move |done, total| {
                        progress.0.store(done, Ordering::Relaxed);
                        progress.1.store(total, Ordering::Relaxed);
                    })),
                    ..AuditOptions::default()
                };
                flows::audit_with(&desk.client, &identity, &desk.log, Some(&file), options)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            AuditRun {
                finished: super::now(),
                result,
                before,
            }
        }
    };
    let started = runs.audit.spawn(work, move |e| AuditRun {
        finished: super::now(),
        result: Err(e),
        before,
    });
    if !started {
        desk.flash(false, cx.s.get("au_audit_already_running"));
    }
    Redirect::to("/audit").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_form_may_not_drop_a_kept_witness_or_lower_the_quorum_unasked() {
        use custos_core::custody::cosignature::WitnessSigner;
        use ed25519_dalek::SigningKey;
        let w = |n: u8| {
            WitnessSigner::new(&format!("w{n}.example/w"), SigningKey::from_bytes(&[n; 32]))
                .unwrap()
                .verifier()
        };
        let kept = AuditState {
            checkpoint: String::new(),
            witnesses: vec![w(1).vkey(), w(2).vkey()],
            quorum: 2,
            anchors: vec![],
        };
        let policy = |ws: Vec<_>, quorum| Policy { witnesses: ws, quorum };
        assert!(!drops_kept(&kept, &policy(vec![w(1), w(2)], 2)));
        assert!(
            !drops_kept(&kept, &policy(vec![w(1), w(2), w(3)], 2)),
            "adding one is fine"
        );
        assert!(drops_kept(&kept, &policy(vec![w(3)], 1)), "the vault's own instead");
        assert!(drops_kept(&kept, &policy(vec![w(1), w(3)], 2)));
        assert!(drops_kept(&kept, &policy(vec![w(1), w(2)], 1)), "a lower quorum");
    }
}
