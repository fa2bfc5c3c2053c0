//! What the vault says publicly about itself, as its admin sees it from
//! the desk: its newest checkpoint (checked with the pinned log key), the
//! witnesses' cosignatures on it (the witnesses it names now and those
//! pinned since it first named them), whether it takes requests
//! (`/readyz`: ready, and the log's size), and the limits it announces.
//! No case, no count of cases: the vault's metrics are served only on
//! the operator's own listener, never through its public address.

use std::sync::Arc;

use axum::http::Method;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use maud::{html, Markup};

use crate::auditor::witnesses;
use crate::page::size;
use crate::state::Desk;
use crate::strings::Strings;
use custos_client::RequestParts;
use custos_core::custody::checkpoint::Checkpoint;
use custos_core::wire::IntakeParams;

/// The vault's public word, each part read on its own (one failing does
/// not hide the others).
pub(super) struct Status {
    /// The newest checkpoint note, and what it says once verified.
    checkpoint: Result<(String, Checkpoint), String>,
    intake: Result<IntakeParams, String>,
    /// `/readyz`: its status word and the log's size.
    ready: Result<(String, Option<u64>), String>,
    /// Witnesses pinned for this vault.
    pinned: Vec<String>,
}

impl Status {
    pub(super) async fn read(desk: &Arc<Desk>) -> Status {
        let checkpoint = async {
            let note = desk.client.checkpoint().await.map_err(|e| e.to_string())?;
            let cp = desk.log.verify(&note).map_err(|e| e.to_string())?;
            Ok((note, cp))
        };
        let (checkpoint, intake, ready, pinned) = tokio::join!(
            checkpoint,
            desk.client.intake(),
            ready(desk),
            crate::auditor::pinned_witnesses(desk)
        );
        Status {
            checkpoint,
            intake: intake.map_err(|e| e.to_string()),
            ready,
            pinned,
        }
    }
}

/// `/readyz`, public on the vault's address: is it taking requests.
async fn ready(desk: &Desk) -> Result<(String, Option<u64>), String> {
    let answer = desk
        .client
        .send(None, Method::GET, "/readyz", RequestParts::default())
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
    Ok((v["status"].as_str().unwrap_or("?").to_owned(), v["log_size"].as_u64()))
}

/// The vault's section of the admin's page.
pub(super) fn section(s: &Strings, desk: &Desk, status: &Status) -> Markup {
    let named = status.intake.as_ref().map(|p| p.witnesses.clone()).unwrap_or_default();
    let known = witnesses::merge(&[&named, &status.pinned]);
    let dropped: Vec<&String> = status.pinned.iter().filter(|w| !named.contains(w)).collect();
    html! {
        section #vault aria-labelledby="vault-h" {
            h2 #vault-h { (s.get("ad_vault")) }
            dl.summary #vault-facts {
                dt { (s.get("ad_vault_address")) } dd { code { (desk.client.base()) } }
                dt { (s.get("ad_vault_key")) } dd { code { (desk.log.vkey()) } }
                dt { (s.get("ad_vault_ready")) }
                @match &status.ready {
                    Ok((word, size)) if word == "ready" => dd.check-ok #vault-ready { "✓ " (s.fill("ad_ready", &[("size", &size.map_or("?".into(), |n| n.to_string()))])) },
                    Ok((word, _)) => dd.check-failed #vault-ready { "✗ " (s.fill("ad_not_ready", &[("status", word)])) },
                    Err(e) => dd.check-failed #vault-ready { "✗ " (s.fill("ad_unreachable", &[("error", e)])) },
                }
                dt { (s.get("ad_vault_checkpoint")) }
                @match &status.checkpoint {
                    Ok((_, cp)) => dd.check-ok #vault-checkpoint { "✓ " (s.fill("ad_checkpoint_ok", &[("size", &cp.size.to_string()), ("root", &B64.encode(cp.root))])) },
                    Err(e) => dd.check-failed #vault-checkpoint role="alert" { "✗ " (s.fill("ad_checkpoint_bad", &[("error", e)])) },
                }
                @if let Ok(p) = &status.intake {
                    @if p.vkey != desk.log.vkey() {
                        dt { (s.get("ad_vault_presented")) }
                        dd.check-failed role="alert" { "✗ " (s.fill("ad_other_key", &[("vkey", &p.vkey)])) }
                    }
                    dt { (s.get("ad_vault_origin")) } dd { code { (p.origin) } }
                    dt { (s.get("ad_vault_intake")) } dd { (p.intake.len()) }
                    dt { (s.get("ad_vault_stamp")) } dd { (s.fill("ad_stamp_bits", &[("bits", &p.stamp_bits.to_string())])) }
                    @if let Some(n) = p.max_upload_bytes { dt { (s.get("ad_vault_max_file")) } dd { (size(s, n)) } }
                    @if let Some(n) = p.max_case_bytes { dt { (s.get("ad_vault_max_case")) } dd { (size(s, n)) } }
                }
            }
            @if let Err(e) = &status.intake { p.flash.failed role="alert" { (s.fill("ad_intake_failed", &[("error", e)])) } }
            h3 #witnesses-h { (s.get("ad_witnesses")) }
            p { (s.get("ad_witnesses_intro")) }
            @match &status.checkpoint {
                Ok((note, _)) => {
                    @let rows = witnesses::rows(note, &desk.log, &known, custos_core::custody::unix_now());
                    (witnesses::table(s, "vault-witnesses", s.get("ad_witnesses_caption"), &rows))
                }
                Err(_) => p { (s.get("ad_witnesses_no_checkpoint")) },
            }
            @for w in &dropped {
                p.flash.failed role="alert" { (s.fill("ad_witness_dropped", &[("vkey", w)])) }
            }
            p.hint { (s.get("ad_metrics_hint")) }
        }
    }
}
