//! The submitter's command: `custos submit`.

use std::path::PathBuf;

use super::{card_arg, Ctx};
use crate::client::flows::{self, SubmitFile};
use crate::client::trust::{write_atomically, TrustStore};
use crate::envelope::ObjectKind;

/// Arguments of `custos submit`.
#[derive(clap::Args, Debug)]
pub struct Submit {
    /// The account of what happened (any file; plain text is best).
    #[arg(long)]
    statement: PathBuf,
    /// Supporting evidence; repeatable.
    #[arg(long)]
    evidence: Vec<PathBuf>,
    /// Medical records or reports; repeatable.
    #[arg(long)]
    medical: Vec<PathBuf>,
    /// Where to save the receipt (default: custos-receipt-CASE.json here).
    #[arg(long)]
    receipt: Option<PathBuf>,
    /// Admin card to trust instead of the one pinned on first contact;
    /// repeatable.
    #[arg(long = "trust", value_name = "CARD")]
    trust: Vec<String>,
}

pub(super) async fn submit(ctx: &Ctx, args: Submit) -> anyhow::Result<()> {
    let explicit = args.trust.iter().map(|c| card_arg(c)).collect::<Result<Vec<_>, _>>()?;
    let mut files = vec![SubmitFile {
        path: args.statement,
        kind: ObjectKind::Statement,
    }];
    files.extend(args.evidence.into_iter().map(|path| SubmitFile {
        path,
        kind: ObjectKind::Evidence,
    }));
    files.extend(args.medical.into_iter().map(|path| SubmitFile {
        path,
        kind: ObjectKind::Medical,
    }));
    for f in &files {
        if !f.path.is_file() {
            anyhow::bail!("{} is not a readable file", f.path.display());
        }
    }
    let done = flows::submit(&ctx.client()?, &TrustStore::default_location(), &explicit, &files).await?;
    let path = args
        .receipt
        .unwrap_or_else(|| PathBuf::from(format!("custos-receipt-{}.json", done.case_id)));
    write_atomically(&path, &serde_json::to_vec_pretty(&done.receipt)?)?;
    ctx.print(&serde_json::json!({ "case_id": done.case_id, "codename": done.codename.expose(), "receipt": path, "objects": files.len() }), || {
        format!(
            "case:     {}\ncodename: {}\nreceipt:  {}\n\nLearn the codename by heart or keep it hidden: it is the only way back to this case,\nand anyone who has it can act as you. It is not stored anywhere.",
            done.case_id,
            done.codename.expose(),
            path.display()
        )
    });
    Ok(())
}
