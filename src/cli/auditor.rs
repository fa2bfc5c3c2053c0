//! The auditor's commands: `log checkpoint` and `audit`.

use std::path::PathBuf;

use super::Ctx;
use crate::client::flows;

/// `custos log ...`.
#[derive(clap::Subcommand, Debug)]
pub enum LogCmd {
    /// Print the latest signed checkpoint exactly as signed.
    Checkpoint,
}

pub(super) async fn log(ctx: &Ctx, cmd: LogCmd) -> anyhow::Result<()> {
    match cmd {
        LogCmd::Checkpoint => {
            let note = ctx.client()?.checkpoint().await?;
            if ctx.json {
                println!("{}", serde_json::json!({ "checkpoint": note }));
            } else {
                print!("{note}");
            }
        }
    }
    Ok(())
}

/// Arguments of `custos audit`.
#[derive(clap::Args, Debug)]
pub struct Audit {
    /// File remembering the last verified checkpoint; next time the log must
    /// be proven consistent with it.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The log's verifier key to check against (default: the pinned one).
    #[arg(long)]
    vkey: Option<String>,
}

pub(super) async fn audit(ctx: &Ctx, args: Audit) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(args.vkey.as_deref()).await?;
    let report = flows::audit(&ctx.client()?, &id, &log, args.state.as_deref()).await?;
    ctx.print(&report, || {
        let mut lines = vec![format!(
            "checkpoint: size {} root {} signed by {}",
            report.checkpoint_size,
            report.checkpoint_root,
            log.vkey()
        )];
        lines.push(format!("entries:    {} verified", report.entries));
        lines.push(format!("chains:     {} hash chains intact", report.chains));
        lines.push(format!("signatures: {} actor signatures verified", report.signatures));
        if let Some(old) = report.consistent_with {
            lines.push(format!(
                "history:    consistent with the checkpoint of size {old} verified last time"
            ));
        }
        match &report.failure {
            None => lines.push("audit passed".into()),
            Some(problem) => lines.push(format!("FAILED:     {problem}")),
        }
        lines.join("\n")
    });
    match report.failure {
        None => Ok(()),
        Some(problem) => anyhow::bail!("audit failed: {problem}"),
    }
}
