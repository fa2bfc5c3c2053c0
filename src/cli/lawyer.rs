//! The lawyer's commands: `cases`, `get`, `reply`, `grant`, `revoke`.

use std::path::PathBuf;

use super::Ctx;
use crate::client::flows::{self, check_receipt};
use crate::custody::Action;
use crate::identity::KeyId;

pub(super) async fn cases(ctx: &Ctx) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(None).await?;
    let list = flows::cases(&ctx.client()?, &id, &log).await?;
    ctx.print(&list, || {
        if list.is_empty() {
            return "no cases".into();
        }
        let row = |case: &str, status: &str, files: &str, opened: &str| {
            format!("{case:<24}  {status:<24} {files:>5}  {opened}")
        };
        std::iter::once(row("CASE", "STATUS", "FILES", "OPENED"))
            .chain(list.iter().map(|c| {
                row(
                    &c.case_id,
                    &c.status.replace('_', " "),
                    &c.objects.to_string(),
                    &c.created,
                )
            }))
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// Arguments of `custos get`.
#[derive(clap::Args, Debug)]
pub struct Get {
    /// Case id.
    case: String,
    /// Folder to write the decrypted files to (default: ./CASE).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(super) async fn get(ctx: &Ctx, args: Get) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(None).await?;
    let out = args.out.unwrap_or_else(|| PathBuf::from(&args.case));
    let got = flows::get_case(&ctx.client()?, &id, &log, &args.case, &out).await?;
    ctx.print(&got, || {
        let mut lines = vec![format!("case {}: {}", got.case_id, got.status.replace('_', " "))];
        lines.extend(
            got.files
                .iter()
                .map(|f| format!("{:<9} {}  {}", f.kind.as_str(), f.path.display(), f.object_id)),
        );
        let n = got.files.len();
        lines.push(format!(
            "verified: {n} file{} match{} the hashes in the signed custody log, every access receipt \
             this run received checks, and all decrypted into {}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "es" } else { "" },
            out.display()
        ));
        lines.join("\n")
    });
    Ok(())
}

/// Arguments of `custos reply`.
#[derive(clap::Args, Debug)]
pub struct Reply {
    /// Case id.
    case: String,
    /// The message to the submitter (a text file).
    #[arg(long)]
    message: PathBuf,
}

pub(super) async fn reply(ctx: &Ctx, args: Reply) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(None).await?;
    if !args.message.is_file() {
        anyhow::bail!("{} is not a readable file", args.message.display());
    }
    let receipt = flows::reply(&ctx.client()?, &id, &log, &args.case, &args.message).await?;
    let event = check_receipt(&receipt, &log, Action::ObjectStored)?;
    ctx.print(
        &serde_json::json!({ "case_id": args.case, "object_id": event.objects.first(), "receipt": receipt }),
        || {
            format!(
                "reply stored in case {}; the submitter reads it with their codename",
                args.case
            )
        },
    );
    Ok(())
}

/// Arguments of `custos grant`.
#[derive(clap::Args, Debug)]
pub struct Grant {
    /// Case id.
    case: String,
    /// Key id of the lawyer to give access to.
    #[arg(long)]
    to: KeyId,
}

pub(super) async fn grant(ctx: &Ctx, args: Grant) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(None).await?;
    let receipt = flows::grant(&ctx.client()?, &id, &log, &args.case, &args.to).await?;
    check_receipt(&receipt, &log, Action::EnvelopeGranted)?;
    ctx.print(
        &serde_json::json!({ "case_id": args.case, "to": args.to, "receipt": receipt }),
        || format!("granted case {} to {}", args.case, args.to),
    );
    Ok(())
}

/// Arguments of `custos revoke`.
#[derive(clap::Args, Debug)]
pub struct Revoke {
    /// Case id.
    case: String,
    /// Key id whose access is removed.
    #[arg(long)]
    from: KeyId,
}

pub(super) async fn revoke(ctx: &Ctx, args: Revoke) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(None).await?;
    let receipt = ctx.client()?.revoke(id.signing_key(), &args.case, &args.from).await?;
    check_receipt(&receipt, &log, Action::EnvelopeRevoked)?;
    ctx.print(
        &serde_json::json!({ "case_id": args.case, "from": args.from, "receipt": receipt }),
        || {
            format!(
                "revoked {} from case {} (what was already decrypted cannot be taken back)",
                args.from, args.case
            )
        },
    );
    Ok(())
}
