//! The submitter's commands: `custos submit`, and `custos submitter ...`
//! for coming back with only the codename.

use std::path::PathBuf;

use super::{card_arg, Ctx};
use zeroize::Zeroizing;

use crate::client::flows::{self, SubmitFile};
use crate::client::submitter;
use crate::client::trust::TrustStore;
use crate::durable::write_atomically;
use crate::envelope::ObjectKind;
use crate::identity::codename::Codename;

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
    /// Also make a duress codename: it works like the real one, but a
    /// withdrawal made with it shows the lawyers it was forced.
    #[arg(long)]
    duress: bool,
    /// File these files as a new case even if another run of the same
    /// command is under way or was cut off (which a plain rerun resumes).
    /// A `--new` run that is cut off is not resumed.
    #[arg(long)]
    new: bool,
    #[command(flatten)]
    cleaning: super::cleaning::CleanArgs,
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
    let (cleaned, shown) = super::cleaning::choose(&files, &args.cleaning)?;
    let run = if args.new {
        flows::Run::Separate
    } else {
        flows::Run::ResumeOrStart
    };
    let done = flows::submit_as(
        &ctx.client()?,
        &TrustStore::default_location(),
        &explicit,
        &files,
        &cleaned,
        args.duress,
        run,
    )
    .await?;
    let path = args
        .receipt
        .unwrap_or_else(|| PathBuf::from(format!("custos-receipt-{}.json", done.case_id)));
    write_atomically(&path, &serde_json::to_vec_pretty(&done.receipt)?)?;
    let duress = done.duress_codename.as_ref().map(|c| c.expose());
    ctx.print(
        &serde_json::json!({
            "case_id": done.case_id,
            "codename": done.codename.expose(),
            "duress_codename": duress,
            "receipt": path,
            "objects": files.len(),
            "files": shown,
        }),
        || {
            let mut text = format!(
                "case:     {}\ncodename: {}\n",
                done.case_id,
                done.codename.expose()
            );
            if let Some(d) = duress {
                text.push_str(&format!("duress:   {d}\n"));
            }
            text.push_str(&format!(
                "receipt:  {}\n\nLearn the codename by heart or keep it hidden: it is the only way back to this case,\nand anyone who has it can act as you. It is not stored anywhere.",
                path.display()
            ));
            text.push_str(&super::cleaning::summary(&shown));
            if duress.is_some() {
                text.push_str(
                    "\nIf someone forces you to give up your codename, give the duress one: it works the same,\nbut if it is used to withdraw the complaint, your lawyers will know it was forced.",
                );
            }
            text
        },
    );
    Ok(())
}

/// `custos submitter ...`: the codename comes from `CUSTOS_CODENAME` or a
/// prompt, never from the command line (where it would land in the shell's
/// history and the process list).
#[derive(clap::Subcommand, Debug)]
pub enum SubmitterCmd {
    /// Show the case's status and the files in it.
    Status(CaseArg),
    /// Add files to the case.
    Add(Add),
    /// Print the lawyers' replies.
    Replies(CaseArg),
    /// Withdraw the complaint (nothing is deleted).
    Withdraw(Withdraw),
}

/// The case to act on.
#[derive(clap::Args, Debug)]
pub struct CaseArg {
    /// Case id.
    #[arg(long)]
    case: String,
}

/// Arguments of `custos submitter add`.
#[derive(clap::Args, Debug)]
pub struct Add {
    /// Case id.
    #[arg(long)]
    case: String,
    /// Evidence files; repeatable.
    #[arg(long)]
    evidence: Vec<PathBuf>,
    /// Medical records or reports; repeatable.
    #[arg(long)]
    medical: Vec<PathBuf>,
    #[command(flatten)]
    cleaning: super::cleaning::CleanArgs,
}

/// Arguments of `custos submitter withdraw`.
#[derive(clap::Args, Debug)]
pub struct Withdraw {
    /// Case id.
    #[arg(long)]
    case: String,
    /// Why (encrypted so only the lawyers can read it).
    #[arg(long)]
    reason: Option<String>,
}

fn codename() -> anyhow::Result<Codename> {
    let text = match std::env::var("CUSTOS_CODENAME") {
        Ok(c) => Zeroizing::new(c),
        Err(_) => {
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                anyhow::bail!("enter the codename at the prompt (or set CUSTOS_CODENAME)");
            }
            Zeroizing::new(rpassword::prompt_password("Codename: ")?)
        }
    };
    Ok(Codename::parse(&text)?)
}

pub(super) async fn submitter(ctx: &Ctx, cmd: SubmitterCmd) -> anyhow::Result<()> {
    let case = match &cmd {
        SubmitterCmd::Status(a) | SubmitterCmd::Replies(a) => a.case.clone(),
        SubmitterCmd::Add(a) => a.case.clone(),
        SubmitterCmd::Withdraw(a) => a.case.clone(),
    };
    let session = submitter::open(&ctx.client()?, &TrustStore::default_location(), codename()?, &case).await?;
    match cmd {
        SubmitterCmd::Status(_) => {
            let st = session.status()?;
            ctx.print(&st, || {
                let mut lines = vec![format!("case {}: {} (opened {})", st.case_id, st.status, st.created)];
                lines.extend(
                    st.objects
                        .iter()
                        .map(|o| format!("{:<9} {}  ({} bytes encrypted)", o.kind.as_str(), o.name, o.size)),
                );
                lines.join("\n")
            });
        }
        SubmitterCmd::Add(a) => {
            let mut files: Vec<SubmitFile> = a
                .evidence
                .into_iter()
                .map(|path| SubmitFile {
                    path,
                    kind: ObjectKind::Evidence,
                })
                .collect();
            files.extend(a.medical.into_iter().map(|path| SubmitFile {
                path,
                kind: ObjectKind::Medical,
            }));
            if files.is_empty() {
                anyhow::bail!("name at least one --evidence or --medical file");
            }
            for f in &files {
                if !f.path.is_file() {
                    anyhow::bail!("{} is not a readable file", f.path.display());
                }
            }
            let (cleaned, shown) = super::cleaning::choose(&files, &a.cleaning)?;
            let receipts = session
                .add_cleaned(&files, &cleaned, TrustStore::default_location().dir())
                .await?;
            ctx.print(
                &serde_json::json!({ "case_id": case, "receipts": receipts, "files": shown }),
                || {
                    let n = receipts.len();
                    format!("added {n} file{} to case {case}", if n == 1 { "" } else { "s" })
                        + &super::cleaning::summary(&shown)
                },
            );
        }
        SubmitterCmd::Replies(_) => {
            let replies = session.replies().await?;
            if ctx.json {
                ctx.print(&replies, String::new);
            } else {
                if replies.replies.is_empty() {
                    eprintln!("no replies yet");
                }
                for r in &replies.replies {
                    println!("from {}:", r.from);
                    println!("{}", r.text.trim_end());
                    println!();
                }
                if !replies.unproven.is_empty() {
                    eprintln!(
                        "warning: {} message(s) labelled as replies were not shown: the vault's log does not show \
                         them sent by a lawyer holding your case",
                        replies.unproven.len()
                    );
                }
            }
        }
        SubmitterCmd::Withdraw(a) => {
            let receipt = session.withdraw(a.reason.as_deref()).await?;
            ctx.print(
                &serde_json::json!({ "case_id": case, "status": "withdrawn", "receipt": receipt }),
                || format!("case {case} is withdrawn; nothing in it was deleted"),
            );
        }
    }
    Ok(())
}
