//! The lawyer's commands: `cases`, `case show|set|note`, `get`, `reply`,
//! `grant`, `revoke`, `disclose`, `watch`.

use std::path::PathBuf;

use super::Ctx;
use crate::client::flows::{self, check_receipt};
use crate::client::terminal::escaped;
use crate::client::workflow::{Assignment, Change, Status};
use crate::custody::Action;
use crate::identity::KeyId;

/// Arguments of `custos cases`.
#[derive(clap::Args, Debug)]
pub struct Cases {
    /// Only cases with this workflow status: new, triage, active,
    /// referred or closed.
    #[arg(long, value_name = "STATUS")]
    status: Option<Status>,
    /// Only cases with this tag.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Only cases assigned to this identity.
    #[arg(long)]
    mine: bool,
    /// Only cases with activity since this identity last looked at them
    /// (`case show` or `get`; remembered on this machine only).
    #[arg(long)]
    new: bool,
}

pub(super) async fn cases(ctx: &Ctx, args: Cases) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(None).await?;
    let filter = flows::CaseFilter {
        status: args.status,
        tag: args.tag,
        mine: args.mine,
        new: args.new,
    };
    let list = flows::cases(&ctx.client()?, &id, &log, &filter).await?;
    ctx.print(&list, || {
        if list.is_empty() {
            return "no cases".into();
        }
        let row = |new: &str, case: &str, status: &str, work: &str, files: &str, opened: &str, tags: &str| {
            format!("{new:1} {case:<24}  {status:<24} {work:<9} {files:>5}  {opened:<20}  {tags}")
        };
        std::iter::once(row("", "CASE", "STATUS", "WORKFLOW", "FILES", "OPENED", "TAGS"))
            .chain(list.iter().map(|c| {
                row(
                    if c.new { "*" } else { "" },
                    &c.summary.case_id,
                    &c.summary.status.replace('_', " "),
                    &format!(
                        "{}{}",
                        c.workflow_status.as_str(),
                        if c.unreadable > 0 { "?" } else { "" }
                    ),
                    &c.summary.objects.to_string(),
                    &c.summary.created,
                    &c.tags.join(", "),
                )
            }))
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `custos case`: a case's workflow, as its lawyers keep it.
#[derive(clap::Subcommand, Debug)]
pub enum CaseCmd {
    /// Show a case's status, tags, assignee, notes and their history.
    Show {
        /// Case id.
        case: String,
    },
    /// Change a case's status, tags or assignee.
    Set(CaseSet),
    /// Add a note for the case's lawyers.
    Note {
        /// Case id.
        case: String,
        /// The note (a text file).
        #[arg(long)]
        message: PathBuf,
    },
}

/// Arguments of `custos case set`.
#[derive(clap::Args, Debug)]
pub struct CaseSet {
    /// Case id.
    case: String,
    /// The new status: new, triage, active, referred or closed.
    #[arg(long, value_name = "STATUS")]
    status: Option<Status>,
    /// +TAG adds a tag, -TAG removes one; repeat for several.
    #[arg(long, value_name = "+TAG|-TAG", allow_hyphen_values = true)]
    tag: Vec<String>,
    /// Assign the case to this lawyer (who must hold it).
    #[arg(long, value_name = "KEYID", conflicts_with = "unassign")]
    assign: Option<KeyId>,
    /// Assign the case to nobody.
    #[arg(long)]
    unassign: bool,
}

pub(super) async fn case(ctx: &Ctx, cmd: CaseCmd) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(None).await?;
    let client = ctx.client()?;
    let (case_id, change) = match cmd {
        CaseCmd::Show { case } => {
            let work = flows::case_show(&client, &id, &log, &case).await?;
            ctx.print(&work, || show_work(&work));
            return Ok(());
        }
        CaseCmd::Set(args) => {
            let mut change = Change {
                status: args.status,
                assign: match (args.assign, args.unassign) {
                    (Some(k), _) => Some(Assignment::To(k)),
                    (None, true) => Some(Assignment::Nobody),
                    (None, false) => None,
                },
                ..Change::default()
            };
            for t in args.tag {
                match t.strip_prefix('-') {
                    Some(removed) => change.remove_tags.push(removed.to_owned()),
                    None => change.add_tags.push(t.strip_prefix('+').unwrap_or(&t).to_owned()),
                }
            }
            (args.case, change)
        }
        CaseCmd::Note { case, message } => {
            let too_long = std::fs::metadata(&message)
                .map_err(|e| anyhow::anyhow!("{}: {e}", message.display()))?
                .len()
                > crate::client::workflow::MAX_NOTE_BYTES as u64;
            if too_long {
                anyhow::bail!(
                    "{} is longer than a note may be ({} bytes): add long documents to the case as replies",
                    message.display(),
                    crate::client::workflow::MAX_NOTE_BYTES
                );
            }
            let text = std::fs::read_to_string(&message).map_err(|e| anyhow::anyhow!("{}: {e}", message.display()))?;
            let change = Change {
                note: Some(text),
                ..Change::default()
            };
            (case, change)
        }
    };
    let receipt = flows::case_change(&client, &id, &log, &case_id, change).await?;
    check_receipt(&receipt, &log, Action::WorkflowChanged)?;
    ctx.print(&serde_json::json!({ "case_id": case_id, "receipt": receipt }), || {
        format!("recorded in case {case_id}'s log, sealed to its lawyers; `custos case show {case_id}` shows it")
    });
    Ok(())
}

/// `case show`, for a person.
fn show_work(w: &flows::CaseWork) -> String {
    let who = |k: &KeyId| match w.names.get(k) {
        Some(name) => format!("{name} ({k})"),
        None => k.to_string(),
    };
    let mut lines = vec![
        format!("case {}: {}", w.case_id, w.status.replace('_', " ")),
        format!("workflow: {}", w.workflow_status.as_str()),
        format!(
            "assigned to: {}",
            w.assignee.as_ref().map(who).unwrap_or_else(|| "nobody".into())
        ),
        format!(
            "tags: {}",
            if w.tags.is_empty() {
                "none".into()
            } else {
                w.tags.join(", ")
            }
        ),
        format!("last activity: {}", w.last_activity),
    ];
    if w.unreadable > 0 {
        lines.push(format!(
            "warning: {} workflow entr{} did not open with your lawyers' key (or you hold none), or \
             broke the rules once opened, and {} left out: what is shown may be incomplete",
            w.unreadable,
            if w.unreadable == 1 { "y" } else { "ies" },
            if w.unreadable == 1 { "is" } else { "are" }
        ));
    }
    if w.refused > 0 {
        lines.push(format!(
            "warning: {} workflow entr{} signed by someone who did not hold the case; not applied",
            w.refused,
            if w.refused == 1 { "y was" } else { "ies were" }
        ));
    }
    lines.push(format!("notes: {}", w.notes.len()));
    for n in &w.notes {
        lines.push(format!("  {}  {}:", n.time, who(&n.by)));
        lines.extend(n.text.lines().map(|l| format!("    {l}")));
    }
    lines.push(format!(
        "history: {} change{}",
        w.history.len(),
        if w.history.len() == 1 { "" } else { "s" }
    ));
    for h in &w.history {
        let what = match &h.change {
            None => "(could not be read)".to_owned(),
            Some(c) => {
                let mut parts = Vec::new();
                if let Some(s) = c.status {
                    parts.push(format!("status {}", s.as_str()));
                }
                parts.extend(c.add_tags.iter().map(|t| format!("+{t}")));
                parts.extend(c.remove_tags.iter().map(|t| format!("-{t}")));
                match &c.assign {
                    Some(Assignment::To(k)) => parts.push(format!("assigned to {}", who(k))),
                    Some(Assignment::Nobody) => parts.push("unassigned".into()),
                    None => {}
                }
                if c.note.is_some() {
                    parts.push("note".into());
                }
                parts.join(", ")
            }
        };
        let refused = if h.change.is_some() && !h.applied {
            " (not applied: not a holder of the case)"
        } else {
            ""
        };
        lines.push(format!("  {}  {}: {what}{refused}", h.time, who(&h.by)));
    }
    lines.join("\n")
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
        for f in &got.files {
            lines.push(format!("{:<9} {}  {}", f.kind.as_str(), f.path.display(), f.object_id));
            match f.cleaned {
                Some(true) => lines.push("          the sender says this is a cleaned copy".into()),
                Some(false) => lines.push("          the sender chose to send it as is".into()),
                None => {}
            }
            for finding in &f.findings {
                lines.push(format!("          reveals {}: {}", finding.kind.plain(), finding.value));
            }
            if let Some(note) = &f.findings_note {
                lines.push(format!("          (metadata not fully examined: {note})"));
            }
        }
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

/// Arguments of `custos disclose`.
#[derive(clap::Args, Debug)]
pub struct Disclose {
    /// Case id.
    case: String,
    /// Who receives it: an age recipient (age1...) or a custos card file.
    #[arg(long, value_name = "RECIPIENT")]
    to: String,
    /// The objects to disclose, by id (as `custos --json get` lists them).
    #[arg(long, value_name = "ID", num_args = 1..)]
    files: Vec<String>,
    /// Also disclose the submitter's account: every object labelled
    /// statement or form (labels are the submitter's, or a codename
    /// holder's).
    #[arg(long)]
    statement: bool,
    /// Confirm what --statement picks when that is more than one statement
    /// or more than one form (it lists them and stops otherwise).
    #[arg(long)]
    yes: bool,
    /// Write the files in the clear (for a court filing) rather than
    /// encrypted to the recipient.
    #[arg(long)]
    plaintext: bool,
    /// Hand over copies cleaned of identifying metadata (GPS, device,
    /// serial, owner, author, software, capture time) of the files that
    /// carry any; the logged originals stay as they are, and their file
    /// keys stay out of the bundle. Stops, logging nothing, at a file with
    /// such metadata that custos cannot clean.
    #[arg(long)]
    clean: bool,
    /// The summary's language: ru, kk or en.
    #[arg(long, value_name = "LANG", default_value = "en")]
    lang: crate::bundle::disclosure::Language,
    /// Where to write the bundle (a new folder).
    #[arg(long)]
    out: PathBuf,
}

pub(super) async fn disclose(ctx: &Ctx, args: Disclose) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(None).await?;
    let options = flows::DiscloseOptions {
        to: flows::Recipient::from_arg(&args.to)?,
        files: args.files,
        statement: args.statement,
        confirmed: args.yes,
        announce: Some(announce_disclosure),
        plaintext: args.plaintext,
        clean: args.clean,
        language: args.lang,
    };
    let done = flows::disclose(&ctx.client()?, &id, &log, &args.case, &args.out, options).await?;
    ctx.print(&done, || {
        let to = match (&done.recipient.name, &done.recipient.key_id) {
            (Some(name), Some(key)) => format!("{name} ({key}, {})", done.recipient.recipient),
            _ => done.recipient.recipient.clone(),
        };
        let mut lines = vec![format!(
            "disclosed {} file{} of case {} to {to}, {}:",
            done.files.len(),
            if done.files.len() == 1 { "" } else { "s" },
            done.case_id,
            if done.plaintext {
                "in the clear"
            } else {
                "encrypted to the recipient"
            }
        )];
        lines.extend(done.files.iter().map(|f| {
            let mut line = format!("  {:<9} {}  {}", f.kind.as_str(), f.file, f.object_id);
            if f.cleaned {
                let removed: Vec<&str> = f.removed.iter().map(|k| k.as_str()).collect();
                line.push_str(&format!("  (cleaned copy, removed: {})", removed.join(", ")));
            }
            line
        }));
        if done.files.iter().any(|f| f.cleaned) {
            lines.push(
                "cleaned copies are not byte for byte the logged objects, by design: the log names each copy's \
                 SHA-256, and the bundle holds no key that opens their originals"
                    .into(),
            );
        }
        lines.push(format!(
            "logged as case_disclosed at index {}; in {}, against checkpoint size {}, {}",
            done.receipt_index,
            done.path.display(),
            done.checkpoint_size,
            if done.plaintext {
                "the bundle verifies, files and all"
            } else {
                // The lawyer holds no key that opens the sealed files:
                // they checked what went in, not what the recipient opens.
                "the log entries, ciphertexts, keys and names verify; each file was sealed from exactly the \
                 plaintext its file key opens, which only the recipient's key can check in the bundle"
            }
        ));
        lines.join("\n")
    });
    Ok(())
}

/// Show on stderr, before anything is downloaded or logged, exactly which
/// objects a disclosure takes.
fn announce_disclosure(files: &[flows::DisclosedFile]) {
    eprintln!("disclosing these objects:");
    for f in files {
        eprintln!("  {:<9} {}  {}", f.kind.as_str(), f.file, f.object_id);
    }
}

/// Arguments of `custos watch`.
#[derive(clap::Args, Debug)]
pub struct Watch {
    /// Seconds between looks at the vault.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    interval: u64,
}

/// Print one line per new case, file or message in the cases this
/// identity holds (with `--json`, one JSON object per line), until Ctrl-C
/// (exit 0) or until something the vault sends does not verify (exit
/// non-zero, one line saying what). A vault that cannot be reached or
/// refuses is tried again at the next interval.
pub(super) async fn watch(ctx: &Ctx, args: Watch) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(None).await?;
    let client = ctx.client()?;
    // What the host says is escaped before it is printed, here and below.
    let mut watch = flows::Watch::start(&client, &id, &log)
        .await
        .map_err(|e| anyhow::anyhow!(escaped(&e.to_string())))?;
    eprintln!(
        "watching {} case(s) every {} s; Ctrl-C stops",
        watch.cases(),
        args.interval
    );
    let stop = super::serve::shutdown_signal();
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(args.interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let polled = tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tick.tick() => tokio::select! {
                _ = &mut stop => return Ok(()),
                polled = watch.poll(&client, &id, &log) => polled,
            },
        };
        let round = match polled {
            Ok(round) => round,
            Err(e) if e.is_transient() => {
                eprintln!(
                    "warning: {}; looking again in {} s",
                    escaped(&e.to_string()),
                    args.interval
                );
                continue;
            }
            // What does not verify is not retried: the host is not to be
            // believed, and a lawyer watching must be told.
            Err(e) => anyhow::bail!("watch stopped: {}", escaped(&e.to_string())),
        };
        for (case_id, e) in &round.skipped {
            eprintln!(
                "warning: case {}: {}; looking again in {} s",
                escaped(case_id),
                escaped(&e.to_string()),
                args.interval
            );
        }
        let seen = crate::custody::now_rfc3339();
        for item in round.items {
            if ctx.json {
                let mut line = serde_json::to_value(&item).expect("serialisable");
                line["seen"] = seen.clone().into();
                println!("{line}");
            } else {
                let mut words = vec![
                    seen.clone(),
                    format!("{:<7}", item.item.as_str()),
                    escaped(&item.case_id),
                ];
                words.extend(item.object_id.as_deref().map(escaped));
                words.extend(item.kind.map(|k| k.as_str().to_owned()));
                words.extend(item.name.as_deref().map(escaped));
                println!("{}", words.join("  "));
            }
        }
    }
}
