//! What the files a submitter sends say about them, shown before sending,
//! and the choice to send cleaned copies (`--clean`, `--clean-file`, or a
//! question on the terminal). Nothing is cleaned without that choice.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::client::flows::SubmitFile;
use crate::client::metadata::{self, FileFindings};
use crate::envelope::ObjectKind;
use crate::meta::Report;

/// The cleaning flags of `submit` and `submitter add`.
#[derive(clap::Args, Debug, Default)]
pub struct CleanArgs {
    /// Send a copy of every file without identifying metadata (place,
    /// device, serial numbers, names, software, capture time).
    #[arg(long)]
    clean: bool,
    /// Send a cleaned copy of this file only; repeatable.
    #[arg(long = "clean-file", value_name = "FILE")]
    clean_file: Vec<PathBuf>,
}

/// The base name the label gives a file.
fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
}

/// The same file, however it was spelled.
fn same(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Examine every file, print what each reveals (on stderr: stdout is the
/// command's result), and settle the choice for each: `Some(true)` a
/// cleaned copy, `Some(false)` as is after being examined, `None` for a
/// statement that reveals nothing (its label is not asked about).
pub(super) fn choose(files: &[SubmitFile], args: &CleanArgs) -> anyhow::Result<(Vec<Option<bool>>, Vec<FileFindings>)> {
    for c in &args.clean_file {
        if !files.iter().any(|f| same(&f.path, c)) {
            anyhow::bail!("--clean-file {}: not one of the files being sent", c.display());
        }
    }
    let reports: Vec<Report> = files
        .iter()
        .map(|f| metadata::examine(&f.path))
        .collect::<Result<_, _>>()?;
    for (f, r) in files.iter().zip(&reports) {
        let lines = metadata::plain_lines(r);
        if lines.is_empty() {
            continue;
        }
        eprintln!("{} reveals:", f.path.display());
        for l in lines {
            eprintln!("  {l}");
        }
    }
    let revealing = reports.iter().any(|r| !r.findings.is_empty());
    let asked = args.clean || !args.clean_file.is_empty();
    // Without a choice: ask on a terminal, else send as is and say so.
    let mut clean_revealing = false;
    if !asked && revealing {
        if std::io::stdin().is_terminal() {
            clean_revealing = ask()?;
        } else {
            eprintln!(
                "sending as is: no --clean or --clean-file was given (a file sent as is stays evidence of when and where)"
            );
        }
    }
    let mut choices = Vec::new();
    for (f, r) in files.iter().zip(&reports) {
        let explicit = args.clean_file.iter().any(|c| same(&f.path, c));
        // `--clean` covers every file but text, which hides nothing: a
        // file custos cannot clean stops the command below rather than go
        // out as is while the person believes it cleaned.
        let wanted = explicit
            || (args.clean && (r.format.is_some() || !is_plain_text(&f.path)?))
            || (clean_revealing && !r.findings.is_empty());
        if wanted {
            match r.format {
                None => anyhow::bail!(
                    "{}: cannot send a cleaned copy of this file (not a format custos can clean, or too large to examine); send it as is or convert it first",
                    f.path.display(),
                ),
                Some(_) => {
                    // Made once now so that a file that cannot be cleaned
                    // stops the command before anything is sent.
                    metadata::cleaned(&f.path)?;
                }
            }
        }
        let examined = f.kind != ObjectKind::Statement || !r.findings.is_empty() || wanted;
        choices.push(examined.then_some(wanted));
    }
    let shown = files
        .iter()
        .zip(reports)
        .zip(&choices)
        .map(|((f, r), c)| FileFindings {
            name: name_of(&f.path),
            findings: r.findings,
            cleaned: Some(c.unwrap_or(false)),
        })
        .collect();
    Ok((choices, shown))
}

/// Text files at most this large are read whole to see that they are text.
const MAX_TEXT_BYTES: u64 = 16 * 1024 * 1024;

/// Whether `path` is plain text (UTF-8 without NUL bytes, within
/// [`MAX_TEXT_BYTES`]): a format with no place to hide metadata, whose
/// words are all the person wrote.
fn is_plain_text(path: &Path) -> anyhow::Result<bool> {
    if std::fs::metadata(path)?.len() > MAX_TEXT_BYTES {
        return Ok(false);
    }
    let bytes = zeroize::Zeroizing::new(std::fs::read(path)?);
    Ok(!bytes.contains(&0) && std::str::from_utf8(&bytes).is_ok())
}

/// Ask once: as is, cleaned, or stop.
fn ask() -> anyhow::Result<bool> {
    eprint!(
        "Send these files [a]s is (they stay evidence of when and where), as [c]leaned copies \
         (location, device and names removed; pixels and text unchanged), or [s]top? "
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    match line.trim().to_lowercase().chars().next() {
        Some('a') => Ok(false),
        Some('c') => Ok(true),
        _ => anyhow::bail!("stopped: nothing was sent"),
    }
}

/// One line per file for the human summary: "name: cleaned copy" or "as is".
pub(super) fn summary(shown: &[FileFindings]) -> String {
    shown
        .iter()
        .filter(|f| !f.findings.is_empty() || f.cleaned == Some(true))
        .map(|f| {
            let how = if f.cleaned == Some(true) {
                "sent as a cleaned copy"
            } else {
                "sent as is"
            };
            format!("\n{}: {how}", f.name)
        })
        .collect()
}
