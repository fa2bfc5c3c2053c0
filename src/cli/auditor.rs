//! The auditor's commands: `log checkpoint`, `audit`, `export` and
//! `verify` (of an export bundle, or of a disclosure bundle for whoever
//! received one).

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
    /// File remembering the last verified checkpoint, and what the audit
    /// needs to carry on from it, signed with your key: next time the log
    /// must be proven consistent with it, and only the entries after it
    /// are downloaded and checked.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Check the whole log again, even if the state file could carry on;
    /// a state file your key does not verify is then set aside and
    /// written anew (give its witnesses again).
    #[arg(long)]
    full: bool,
    /// The log's verifier key to check against (default: the pinned one).
    #[arg(long)]
    vkey: Option<String>,
    /// A witness's verifier key (or a file holding it) whose cosignature
    /// the checkpoint must carry. Repeat for several. Kept in the state
    /// file, and required on every later audit with it.
    #[arg(long = "witness", value_name = "VKEY")]
    witnesses: Vec<String>,
    /// How many of the given witnesses must have cosigned the checkpoint
    /// (default: all of them).
    #[arg(long, requires = "witnesses")]
    quorum: Option<usize>,
}

pub(super) async fn audit(ctx: &Ctx, args: Audit) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(args.vkey.as_deref()).await?;
    let witnesses = args
        .witnesses
        .iter()
        .map(|w| Ok(crate::custody::cosignature::WitnessVerifier::parse(&key_arg(w)?)?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let policy = (!witnesses.is_empty()).then(|| crate::bundle::Policy {
        quorum: args.quorum.unwrap_or(witnesses.len()),
        witnesses,
    });
    let options = flows::AuditOptions {
        witnesses: policy,
        full: args.full,
        ..Default::default()
    };
    let report = flows::audit_with(&ctx.client()?, &id, &log, args.state.as_deref(), options).await?;
    ctx.print(&report, || {
        let mut lines = vec![format!(
            "checkpoint: size {} root {} signed by {}",
            report.checkpoint_size,
            report.checkpoint_root,
            log.vkey()
        )];
        if report.quorum > 0 {
            lines.push(format!(
                "witnesses:  cosigned by {} (quorum {}): {}",
                report.cosigned_by.len(),
                report.quorum,
                report.cosigned_by.join(", ")
            ));
        }
        lines.push(format!("anchors:    {}", report.anchors.join("; ")));
        if report.from_size > 0 {
            lines.push(format!(
                "entries:    {} verified, from entry {} on (the state file vouches for those before)",
                report.entries, report.from_size
            ));
        } else {
            lines.push(format!("entries:    {} verified", report.entries));
        }
        lines.push(format!("chains:     {} hash chains intact", report.chains));
        lines.push(format!("signatures: {} actor signatures verified", report.signatures));
        lines.push(format!(
            "actions:    {}",
            report
                .actions
                .iter()
                .map(|(action, n)| format!("{action} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
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

/// A verifier key given on the command line: the key itself, or a file
/// holding it (such as a bundle's or a vault's `log.vkey`).
fn key_arg(arg: &str) -> anyhow::Result<String> {
    if arg.contains('+') && !std::path::Path::new(arg).exists() {
        return Ok(arg.trim().to_owned());
    }
    Ok(std::fs::read_to_string(arg)
        .map_err(|e| anyhow::anyhow!("{arg}: {e}"))?
        .trim()
        .to_owned())
}

/// Arguments of `custos export`.
#[derive(clap::Args, Debug)]
pub struct Export {
    /// Case id.
    case: String,
    /// Where to write the bundle (a new folder, or a .tar with --archive).
    #[arg(long)]
    out: PathBuf,
    /// Write one .tar file instead of a folder.
    #[arg(long)]
    archive: bool,
    /// Also write report.html, a picture of the custody timeline.
    #[arg(long)]
    report: bool,
}

pub(super) async fn export(ctx: &Ctx, args: Export) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let log = ctx.log_verifier(None).await?;
    let options = crate::client::export::ExportOptions {
        archive: args.archive,
        report: args.report,
    };
    let done = crate::client::export::export(&ctx.client()?, &id, &log, &args.case, &args.out, options).await?;
    ctx.print(&done, || {
        format!(
            "exported case {} to {}: {} events, {} objects, proven against checkpoint size {}; the bundle verifies",
            done.case_id,
            done.path.display(),
            done.events,
            done.objects,
            done.checkpoint_size
        )
    });
    Ok(())
}

/// Arguments of `custos verify`.
#[derive(clap::Args, Debug)]
pub struct Verify {
    /// A bundle folder or .tar archive made by `custos export` or
    /// `custos disclose`.
    path: PathBuf,
    /// The log's verifier key (or a file holding it), obtained independently
    /// of the bundle.
    #[arg(long)]
    vkey: String,
    /// A witness's verifier key (or a file holding it) whose cosignature
    /// counts. Repeat for several.
    #[arg(long = "witness", value_name = "VKEY")]
    witnesses: Vec<String>,
    /// How many of the given witnesses must have cosigned the checkpoint
    /// (default: all of them).
    #[arg(long)]
    quorum: Option<usize>,
    /// Where to decrypt an export bundle to when an identity is given
    /// (default: ./CASE-decrypted). A disclosure is checked, not decrypted:
    /// its recipient's identity (an age identity file or a custos identity)
    /// lets verify compare the files themselves.
    #[arg(long)]
    out: Option<PathBuf>,
    /// For a disclosure sealed to a recipient whose key you do not have:
    /// check only the log entries and the ciphertexts, and say so. Without
    /// it, a check that could not look at the files is a failure.
    #[arg(long)]
    log_only: bool,
}

/// The result of `custos verify`, with what was decrypted.
#[derive(serde::Serialize)]
struct VerifyOutput {
    #[serde(flatten)]
    report: crate::bundle::VerifyReport,
    decrypted: Vec<crate::bundle::decrypt::DecryptedFile>,
}

pub(super) async fn verify(ctx: &Ctx, args: Verify) -> anyhow::Result<()> {
    use crate::bundle::{self, CheckLine, Policy};
    let log = crate::custody::checkpoint::LogVerifier::parse(&key_arg(&args.vkey)?)?;
    let witnesses = args
        .witnesses
        .iter()
        .map(|w| Ok(crate::custody::cosignature::WitnessVerifier::parse(&key_arg(w)?)?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let policy = Policy {
        quorum: args.quorum.unwrap_or(witnesses.len()),
        witnesses,
    };
    let unpacked;
    let dir = if args.path.is_file() {
        unpacked = tempfile::Builder::new().prefix("custos-verify-").tempdir()?;
        // A disclosure in the clear is evidence: not readable by others
        // (tempfile's folder follows the umask).
        crate::durable::create_private_dir(unpacked.path())?;
        bundle::unpack_archive(&args.path, unpacked.path())
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.path.display()))?
    } else {
        args.path.clone()
    };
    if bundle::disclosure::is_disclosure(&dir) {
        return verify_disclosure(ctx, &dir, &log, &policy, args.log_only);
    }
    let identity = match &ctx.identity {
        Some(_) => Some(ctx.load_identity()?),
        None => None,
    };
    let (mut report, verified) = bundle::verify_dir(&dir, &log, &policy);
    let mut decrypted = Vec::new();
    if let (Some(id), Some(v)) = (&identity, &verified) {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}-decrypted", v.case_id)));
        match bundle::decrypt::decrypt(v, &dir, id, &out) {
            Ok(files) => {
                report.checks.push(CheckLine {
                    check: "decrypt",
                    passed: true,
                    detail: format!("{} files decrypted into {}", files.len(), out.display()),
                });
                decrypted = files;
            }
            Err(problem) => {
                report.checks.push(CheckLine {
                    check: "decrypt",
                    passed: false,
                    detail: problem,
                });
                report.passed = false;
            }
        }
    }
    let output = VerifyOutput { report, decrypted };
    let report = &output.report;
    ctx.print(&output, || {
        let mut lines: Vec<String> = report
            .checks
            .iter()
            .map(|c| {
                format!(
                    "{:<11} {}  {}",
                    c.check,
                    if c.passed { "ok  " } else { "FAIL" },
                    c.detail
                )
            })
            .collect();
        lines.push(match report.failure() {
            None => format!(
                "VERIFIED: the bundle of case {} is intact and complete",
                report.case_id.as_deref().unwrap_or("?")
            ),
            Some(f) => format!("NOT VERIFIED: check {} failed", f.check),
        });
        lines.join("\n")
    });
    match report.failure() {
        None => Ok(()),
        Some(f) => anyhow::bail!("verification failed at check {}: {}", f.check, f.detail),
    }
}

/// The recipient's key for a disclosure: an age identity file, or a custos
/// identity file (whose age key a disclosure to its card is sealed to).
fn recipient_key(ctx: &Ctx) -> anyhow::Result<Option<age::x25519::Identity>> {
    let Some(path) = &ctx.identity else {
        return Ok(None);
    };
    let head = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if crate::identity::is_age_identity_file(&head) {
        crate::identity::check_private(path)?;
        let text = zeroize::Zeroizing::new(String::from_utf8(head).expect("checked UTF-8"));
        return Ok(Some(crate::identity::parse_age_identity_file(&text)?));
    }
    Ok(Some(ctx.load_identity()?.age_identity().clone()))
}

/// `custos verify` of a disclosure bundle: every check, and the logged
/// objects it holds. A sealed bundle checked without the recipient's key
/// is not a pass unless `log_only` asks for no more.
fn verify_disclosure(
    ctx: &Ctx,
    dir: &std::path::Path,
    log: &crate::custody::checkpoint::LogVerifier,
    policy: &crate::bundle::Policy,
    log_only: bool,
) -> anyhow::Result<()> {
    use crate::bundle::disclosure::DisclosureStatus;
    const NOT_CHECKED: &str = "the files were not checked: give the recipient's key with --identity";
    let recipient = recipient_key(ctx)?;
    let (report, _) = crate::bundle::disclosure::verify_dir(dir, log, policy, recipient.as_ref());
    let case = report.case_id.as_deref().unwrap_or("?");
    ctx.print(&report, || {
        let mut lines: Vec<String> = report
            .checks
            .iter()
            .map(|c| {
                let mark = match (c.passed, report.unchecked.contains(&c.check)) {
                    (false, _) => "FAIL",
                    (true, true) => "skip",
                    (true, false) => "ok  ",
                };
                format!("{:<11} {mark}  {}", c.check, c.detail)
            })
            .collect();
        if let Some(key) = &report.disclosed_by {
            lines.push(format!(
                "signed by:  key {key}, as the vault's log registered the lawyer; compare it with their card obtained another way"
            ));
        }
        if report.status != DisclosureStatus::Failed {
            lines.push(format!(
                "holds {} logged object{} of case {case}:",
                report.objects.len(),
                if report.objects.len() == 1 { "" } else { "s" },
            ));
            lines.extend(report.objects.iter().map(|o| {
                format!(
                    "  {}  {}  {}  received {}  entry {}{}",
                    o.object_id,
                    o.file.as_deref().unwrap_or("(file name not checked)"),
                    o.kind.map_or("(kind sealed)", |k| k.as_str()),
                    o.received,
                    o.stored_index,
                    if o.cleaned {
                        "  CLEANED COPY: metadata removed by the lawyer; not byte-comparable with the logged object"
                    } else {
                        ""
                    }
                )
            }));
        }
        let cleaned = report.objects.iter().any(|o| o.cleaned);
        lines.push(match (report.status, report.failure()) {
            (DisclosureStatus::Verified, _) if cleaned => format!(
                "VERIFIED: each file of this disclosure from case {case} is exactly a logged object, or (marked \
                 CLEANED COPY) a copy of one cleaned of identifying metadata with the SHA-256 the signed disclosure \
                 names"
            ),
            (DisclosureStatus::Verified, _) => {
                format!("VERIFIED: each file of this disclosure from case {case} is exactly a logged object")
            }
            (DisclosureStatus::FilesNotChecked, _) if log_only => format!(
                "LOG ONLY: the disclosure from case {case} is logged and its ciphertexts match; \
                 the files, their names and the summary were not checked"
            ),
            (DisclosureStatus::FilesNotChecked, _) => format!("NOT VERIFIED: {NOT_CHECKED}"),
            (_, f) => format!("NOT VERIFIED: check {} failed", f.map_or("?", |f| f.check)),
        });
        lines.join("\n")
    });
    match (report.status, report.failure()) {
        (DisclosureStatus::Verified, _) => Ok(()),
        (DisclosureStatus::FilesNotChecked, _) if log_only => Ok(()),
        (DisclosureStatus::FilesNotChecked, _) => anyhow::bail!("{NOT_CHECKED} (or --log-only to check the log alone)"),
        (_, Some(f)) => anyhow::bail!("verification failed at check {}: {}", f.check, f.detail),
        (_, None) => anyhow::bail!("verification failed"),
    }
}
