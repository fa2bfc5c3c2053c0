//! The `custos` command: argument parsing and output, one file per role.
//! Each command loads what it needs and calls one function of `client`,
//! `vault` or `api`; nothing here is logic that tests could not reach.

mod admin;
mod auditor;
pub mod bar;
mod cleaning;
mod desk;
mod keys;
mod lawyer;
mod serve;
mod storage;
mod submitter;
mod witness;

use std::path::PathBuf;
use std::process::ExitCode;

use age::secrecy::SecretString;
use clap::{Parser, Subcommand};

use crate::client::trust::TrustStore;
use crate::client::{Client, ClientError};
use crate::custody::checkpoint::LogVerifier;
use crate::identity::{Card, Identity, IdentityError};

pub use crate::config::DEFAULT_LISTEN;

/// Where commands look for the vault unless told (`serve`'s default).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8630";
/// The walkthrough's first steps, as `serve --dev` prints them and the
/// README shows them (a test runs the README's).
const DEMO_STATEMENT: &str =
    "echo \"On 3 May two officers beat me in room 12 of the district station.\" > statement.txt";
const DEMO_REPORT: &str = "echo \"4 May, city hospital: bruises on both forearms and the back.\" > report.txt";

/// custos: an encrypted vault for complaints of torture and ill-treatment,
/// with a custody log that anyone holding the public key can verify.
#[derive(Parser, Debug)]
#[command(name = "custos", version, about, long_about = None)]
pub struct Cli {
    /// Vault URL.
    #[arg(long, global = true, env = "CUSTOS_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// Reach the vault through this proxy: socks5h://HOST:PORT (Tor:
    /// socks5h://127.0.0.1:9050, Tor Browser: socks5h://127.0.0.1:9150)
    /// or http://HOST:PORT. Without it, ALL_PROXY is used if set. Needed
    /// for an onion address, which is refused without one.
    #[arg(long, global = true, env = "CUSTOS_PROXY", hide_env_values = true)]
    proxy: Option<String>,
    /// Identity file of the principal acting (lawyer, auditor, admin).
    #[arg(long, global = true, env = "CUSTOS_IDENTITY")]
    identity: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Show no progress bars (they are shown on stderr, only when it is a
    /// terminal, for transfers of 4 MiB or more). The variable takes
    /// 1/0, true/false, yes/no, on/off.
    #[arg(long, short, global = true, env = "CUSTOS_QUIET", value_parser = clap::builder::BoolishValueParser::new())]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a principal identity file and its public card (FILE.pub).
    Keygen(keys::Keygen),
    /// Create a vault in a data directory; prints the log's verifier key.
    Init(admin::Init),
    /// Run the vault server.
    Serve(serve::Serve),
    /// Check the server's settings.
    #[command(subcommand)]
    Config(serve::ConfigCmd),
    /// Write a verified backup of the vault: ciphertext, log, registry and
    /// settings (no private key unless asked).
    Backup(admin::Backup),
    /// Rebuild a vault from a backup into a new folder, then audit it.
    Restore(admin::Restore),
    /// Manage the registry of principals (admin).
    #[command(subcommand)]
    Principal(admin::PrincipalCmd),
    /// Submit a complaint with evidence, encrypted on this device.
    Submit(submitter::Submit),
    /// Come back to a case with its codename: status, add, replies, withdraw.
    #[command(subcommand)]
    Submitter(submitter::SubmitterCmd),
    /// List the cases this identity can open, with their workflow.
    Cases(lawyer::Cases),
    /// A case's workflow: status, tags, assignee and notes, sealed to its
    /// lawyers.
    #[command(subcommand)]
    Case(lawyer::CaseCmd),
    /// Download, verify and decrypt a case.
    Get(lawyer::Get),
    /// Send the submitter a message, encrypted to them and the case.
    Reply(lawyer::Reply),
    /// Give another lawyer access to a case.
    Grant(lawyer::Grant),
    /// Take a principal's access to a case away.
    Revoke(lawyer::Revoke),
    /// Give chosen files of a case to an outside body, provably: encrypted
    /// to its age key (or in the clear), with what checks them offline.
    Disclose(lawyer::Disclose),
    /// Print one line per new case, file or message in the cases this
    /// identity holds, as they come, until Ctrl-C.
    Watch(lawyer::Watch),
    /// Open the desk: a local app in the browser for lawyers, auditors and
    /// admins, the keys kept in this process. Prints "desk: URL".
    Desk(desk::Desk),
    /// Read the custody log.
    #[command(subcommand)]
    Log(auditor::LogCmd),
    /// Verify the whole custody log: chains, signatures, checkpoint.
    Audit(auditor::Audit),
    /// Write a case's chain of custody as a self-contained bundle.
    Export(auditor::Export),
    /// Verify an export or disclosure bundle offline against the log's key.
    Verify(auditor::Verify),
    /// Run a witness that cosigns other logs' checkpoints.
    #[command(subcommand)]
    Witness(witness::WitnessCmd),
    /// Where the vault's ciphertext chunks are kept: move them to S3.
    #[command(subcommand)]
    Storage(storage::StorageCmd),
}

/// Parse arguments, run, and turn the result into an exit code with one
/// clear line on stderr on failure.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    // The server sets its log up from its own settings (custos.toml).
    if !matches!(cli.command, Command::Serve(_)) {
        let server = matches!(cli.command, Command::Witness(_));
        init_tracing(&std::env::var("CUSTOS_LOG").unwrap_or_else(|_| (if server { "info" } else { "warn" }).into()));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let trust = TrustStore::default_location();
    let server = cli.server.clone();
    let pinned_before = matches!(trust.pin(&server), Ok(Some(_)));
    let result = rt.block_on(dispatch(cli));
    if !pinned_before {
        if let Ok(Some(pin)) = trust.pin(&server) {
            eprintln!(
                "note: first contact with the vault at {server}: its log key ({}) and admin cards are now \
                 remembered in {}; a vault at this address with another key will be refused",
                pin.vkey,
                trust.pin_path(&server).display()
            );
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Help and version go to stdout with exit 0; every other parse failure
/// keeps the contract of every failure: one `error:` line, exit 1.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        kind => {
            let rendered = e.render().to_string();
            let line = if kind == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                // "Usage: custos principal <COMMAND>" names what needs one.
                let usage = rendered.lines().find_map(|l| l.trim().strip_prefix("Usage:"));
                let words = usage.map(|u| {
                    u.split_whitespace()
                        .take_while(|w| !w.starts_with(['[', '<']))
                        .collect::<Vec<_>>()
                        .join(" ")
                });
                let command = words.unwrap_or_else(|| "custos".into());
                format!("{command} needs a command (add --help to see them)")
            } else {
                usage_line(&rendered)
            };
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

/// clap's message in one line: its lines up to the usage, without the
/// `error:` prefix, the tips and the pointer to `--help`.
fn usage_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") {
            break;
        }
        if line.is_empty() || line.starts_with("tip:") || line.starts_with("For more information") {
            continue;
        }
        parts.push(line.strip_prefix("error:").unwrap_or(line).trim());
    }
    format!("{} (add --help for usage)", parts.join(" "))
}

/// An error and its causes on one line, each said once: a cause whose
/// text its parent already includes is left out, and line breaks inside a
/// message become spaces.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain().map(|c| c.to_string().replace('\n', " ")) {
        if cause.is_empty() || line.contains(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line
}

/// Log to stderr through `filter` (an invalid filter logs warnings only).
fn init_tracing(filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let proxy = cli
        .proxy
        .clone()
        .or_else(|| std::env::var("ALL_PROXY").ok())
        .or_else(|| std::env::var("all_proxy").ok())
        .filter(|p| !p.is_empty());
    if proxy.is_none() {
        // Other tools honour these; custos does not, and says so rather
        // than connect directly behind the user's back.
        if let Some(name) = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
            .into_iter()
            .find(|v| std::env::var_os(v).is_some_and(|p| !p.is_empty()))
        {
            eprintln!("note: {name} is set, but custos reaches the vault directly: it uses only --proxy, CUSTOS_PROXY or ALL_PROXY");
        }
    }
    let ctx = Ctx {
        server: cli.server.clone(),
        // The standard variable last, as curl reads it (either case).
        proxy,
        identity: cli.identity.clone(),
        json: cli.json,
        progress: !cli.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    match cli.command {
        Command::Keygen(c) => keys::keygen(&ctx, c),
        Command::Init(c) => admin::init(&ctx, c).await,
        Command::Serve(c) => serve::serve(&ctx, c).await,
        Command::Config(c) => serve::config(&ctx, c),
        Command::Backup(c) => admin::backup(&ctx, c).await,
        Command::Restore(c) => admin::restore(&ctx, c).await,
        Command::Storage(c) => storage::storage(&ctx, c).await,
        Command::Principal(c) => admin::principal(&ctx, c).await,
        Command::Submit(c) => submitter::submit(&ctx, c).await,
        Command::Submitter(c) => submitter::submitter(&ctx, c).await,
        Command::Reply(c) => lawyer::reply(&ctx, c).await,
        Command::Cases(c) => lawyer::cases(&ctx, c).await,
        Command::Case(c) => lawyer::case(&ctx, c).await,
        Command::Get(c) => lawyer::get(&ctx, c).await,
        Command::Grant(c) => lawyer::grant(&ctx, c).await,
        Command::Revoke(c) => lawyer::revoke(&ctx, c).await,
        Command::Disclose(c) => lawyer::disclose(&ctx, c).await,
        Command::Watch(c) => lawyer::watch(&ctx, c).await,
        Command::Desk(c) => desk::desk(&ctx, c).await,
        Command::Log(c) => auditor::log(&ctx, c).await,
        Command::Audit(c) => auditor::audit(&ctx, c).await,
        Command::Export(c) => auditor::export(&ctx, c).await,
        Command::Verify(c) => auditor::verify(&ctx, c).await,
        Command::Witness(c) => witness::witness(&ctx, c).await,
    }
}

/// Settings shared by every command.
struct Ctx {
    server: String,
    /// The proxy every connection to the vault goes through, if any.
    proxy: Option<String>,
    identity: Option<PathBuf>,
    json: bool,
    /// Draw progress bars for long transfers.
    progress: bool,
}

impl Ctx {
    fn client(&self) -> Result<Client, ClientError> {
        // The last checkpoint accepted from each vault is kept beside the
        // pins, so a later one must extend it.
        let client = Client::through(&self.server, self.proxy.as_deref())?.with_pins(TrustStore::default_location());
        Ok(if self.progress {
            client.with_progress(std::sync::Arc::new(bar::TerminalBar))
        } else {
            client
        })
    }

    fn load_identity(&self) -> anyhow::Result<Identity> {
        let path = self
            .identity
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("this command needs --identity FILE (or CUSTOS_IDENTITY)"))?;
        Ok(Identity::load(path, || {
            passphrase("Passphrase for the identity file: ")
        })?)
    }

    /// The log key: given, else pinned for this server, else pinned now.
    /// The vault's key is compared with the pin first, so that a new vault
    /// at a pinned address is named as such, with what to do about it.
    async fn log_verifier(&self, vkey: Option<&str>) -> anyhow::Result<LogVerifier> {
        if let Some(v) = vkey {
            return Ok(LogVerifier::parse(v)?);
        }
        let trust = TrustStore::default_location();
        let params = self.client()?.intake().await?;
        Ok(trust.check(&self.server, &params, &[])?.log)
    }

    /// Print `value` as JSON, or the human text.
    fn print(&self, value: &impl serde::Serialize, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).expect("serialisable"));
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }
}

/// A passphrase from `CUSTOS_PASSPHRASE` or a prompt on the terminal.
fn passphrase(prompt: &str) -> Result<SecretString, IdentityError> {
    if let Ok(p) = std::env::var("CUSTOS_PASSPHRASE") {
        return Ok(SecretString::from(p));
    }
    passphrase_prompt(prompt)
}

/// A passphrase asked for on the terminal; none when there is no terminal.
fn passphrase_prompt(prompt: &str) -> Result<SecretString, IdentityError> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(IdentityError::NeedPassphrase);
    }
    rpassword::prompt_password(prompt)
        .map(SecretString::from)
        .map_err(IdentityError::Io)
}

/// A card given on the command line: a file holding one, or the line itself.
fn card_arg(arg: &str) -> anyhow::Result<Card> {
    if arg.starts_with("custos-card-v1 ") {
        return Ok(arg.parse()?);
    }
    crate::identity::read_card(std::path::Path::new(arg)).map_err(|e| anyhow::anyhow!("{arg}: {e}"))
}
