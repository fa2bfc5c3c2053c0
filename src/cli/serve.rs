//! `custos serve`, and `serve --dev`, which sets up a demo vault with an
//! admin, an intake lawyer and an auditor so the whole flow can be tried at
//! once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Ctx;
use crate::api::{self, AppState};
use crate::client::Client;
use crate::config;
use crate::identity::{Identity, IdentityError, Role};
use crate::wire::PrincipalBody;

/// Data directory of the demo vault.
const DEV_DIR: &str = "custos-dev";
/// Origin of the demo vault's log.
const DEV_ORIGIN: &str = "localhost/custos-dev";
/// Name of the demo vault's witness; its key and state live in
/// `custos-dev/witness`, its vkey in `custos-dev/witness/witness.vkey`.
const DEV_WITNESS: &str = "localhost/custos-dev-witness";

/// Arguments of `custos serve`.
#[derive(clap::Args, Debug)]
pub struct Serve {
    /// Data directory of the vault (made by custos init).
    #[arg(long, env = "CUSTOS_DATA", required_unless_present = "dev")]
    data: Option<PathBuf>,
    /// Run a demo vault in ./custos-dev with demo identities, ready to try.
    #[arg(long, conflicts_with = "data")]
    dev: bool,
    #[command(flatten)]
    config: config::Layer,
}

/// `custos config`.
#[derive(clap::Subcommand, Debug)]
pub enum ConfigCmd {
    /// Validate the settings `custos serve` would run with (custos.toml in
    /// the data directory, CUSTOS_* variables, these flags) and print them,
    /// each with where it came from. Exits 1 if any is invalid.
    Check {
        /// Data directory whose custos.toml to read.
        #[arg(long, env = "CUSTOS_DATA")]
        data: Option<PathBuf>,
        #[command(flatten)]
        config: config::Layer,
    },
}

pub(super) fn config(ctx: &Ctx, cmd: ConfigCmd) -> anyhow::Result<()> {
    let ConfigCmd::Check { data, config: flags } = cmd;
    let file = data.as_ref().map(|d| d.join(config::CONFIG_FILE));
    let (settings, sources) = config::load(data.as_deref(), flags)?;
    let warnings = settings.warnings();
    let file = file.filter(|f| f.exists());
    ctx.print(
        &serde_json::json!({
            "file": file.as_ref().map(|f| f.display().to_string()),
            "settings": settings.to_json(),
            "sources": sources,
            "warnings": warnings,
        }),
        || {
            let head = match &file {
                Some(f) => format!("# effective settings; file: {}", f.display()),
                None => "# effective settings; no custos.toml read".to_owned(),
            };
            format!("{head}\n{}", settings.to_toml(&sources).trim_end())
        },
    );
    if !ctx.json {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(())
}

pub(super) async fn serve(_ctx: &Ctx, args: Serve) -> anyhow::Result<()> {
    let dir = match (&args.data, args.dev) {
        (Some(d), false) => d.clone(),
        _ => {
            let dir = PathBuf::from(DEV_DIR);
            prepare_dev(&dir).await?;
            dir
        }
    };
    let (mut settings, _) = config::load(Some(&dir), args.config.clone())?;
    super::init_tracing(&settings.log);
    for w in settings.warnings() {
        tracing::warn!("{w}");
    }
    let vault = crate::vault::open_async_on(&dir, settings.chunk_backend()?).await?;
    let vkey = vault.description.vkey.clone();
    // The demo runs its own witness, so that witnessed receipts and
    // `audit --witness` can be tried; a real one is another organisation's.
    let dev_witness = if args.dev {
        let log = crate::custody::checkpoint::LogVerifier::parse(&vkey)?;
        let (witness, url) = start_dev_witness(&dir, &log).await?;
        settings.witnesses.push(crate::config::WitnessConfig {
            url,
            verifier: witness.clone(),
        });
        Some(witness)
    } else {
        None
    };
    let mut state = AppState::new(vault, &settings);
    // The relay's credentials are read now, once: a missing or readable
    // file stops the server here, not at the first digest.
    state.digests = crate::digest::Digests::from_settings(&settings)?;
    if let Some(d) = &state.digests {
        tracing::info!(interval_secs = d.interval_secs, "digests are mailed at fixed times");
    }
    let state = Arc::new(state);
    let (listener, addr) = api::bind(settings.listen).await?;
    let metrics = match settings.metrics_listen {
        Some(m) => {
            let (listener, addr) = api::bind(m).await?;
            tracing::info!(%addr, "metrics are served");
            Some(tokio::spawn(api::serve_metrics(
                state.clone(),
                listener,
                std::future::pending(),
            )))
        }
        None => None,
    };
    tracing::info!(%addr, %vkey, "custos is serving");
    let server = tokio::spawn(api::serve(state.clone(), listener, shutdown_signal()));
    if let Some(witness) = dev_witness {
        register_dev_principals(&dir, &format!("http://{addr}")).await?;
        print_dev_help(&dir, addr, &vkey, &witness);
    }
    let served = server.await;
    if let Some(m) = metrics {
        m.abort();
    }
    served??;
    // How many durable flushes served this run's writes (group commit).
    tracing::info!(flushes = state.vault.store.flush_count(), "custos stopped");
    Ok(())
}

pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn identity_path(dir: &Path, who: &str) -> PathBuf {
    dir.join("identities").join(who)
}

fn load(dir: &Path, who: &str) -> Result<Identity, IdentityError> {
    Identity::load(&identity_path(dir, who), || Err(IdentityError::NeedPassphrase))
}

/// Create the demo identities and vault on first run.
async fn prepare_dev(dir: &Path) -> anyhow::Result<()> {
    if dir.join("vault.json").exists() {
        return Ok(());
    }
    crate::durable::create_private_dir(&dir.join("identities"))?;
    for (who, name) in [
        ("admin", "Demo Admin"),
        ("lawyer", "Demo Lawyer"),
        ("auditor", "Demo Auditor"),
    ] {
        let path = identity_path(dir, who);
        if !path.exists() {
            Identity::generate(name)?.save(&path, None)?;
        }
    }
    let admin = load(dir, "admin")?;
    crate::vault::init(dir, DEV_ORIGIN, &[admin.card()]).await?;
    Ok(())
}

/// Register the demo lawyer (intake) and auditor through the API, signed by
/// the demo admin, exactly as a real admin would.
async fn register_dev_principals(dir: &Path, url: &str) -> anyhow::Result<()> {
    let admin = load(dir, "admin")?;
    let client = Client::new(url)?;
    let known = client.principals(admin.signing_key()).await?;
    for (who, role, intake) in [("lawyer", Role::Lawyer, true), ("auditor", Role::Auditor, false)] {
        let id = load(dir, who)?;
        if !known.iter().any(|p| p.key_id == id.key_id()) {
            client
                .add_principal(
                    admin.signing_key(),
                    &PrincipalBody {
                        card: id.card(),
                        role,
                        intake,
                    },
                )
                .await?;
        }
    }
    Ok(())
}

/// Start the demo's witness on a free loopback port; returns its key and
/// the URL the vault pushes checkpoints to. It stops with the process.
async fn start_dev_witness(
    dir: &Path,
    log: &crate::custody::checkpoint::LogVerifier,
) -> anyhow::Result<(crate::custody::cosignature::WitnessVerifier, String)> {
    let witness_dir = dir.join("witness");
    let witness = Arc::new(crate::witness::Witness::open(
        &witness_dir,
        DEV_WITNESS,
        std::slice::from_ref(log),
    )?);
    let verifier = witness.verifier();
    std::fs::write(witness_dir.join("witness.vkey"), format!("{}\n", verifier.vkey()))?;
    let (listener, addr) = api::bind("127.0.0.1:0".parse().expect("an address")).await?;
    tokio::spawn(crate::witness::serve(
        witness,
        listener,
        crate::witness::LIMITS,
        std::future::pending(),
    ));
    Ok((verifier, format!("http://{addr}")))
}

/// The demo's first steps, for the address it actually listens on.
fn print_dev_help(dir: &Path, addr: SocketAddr, vkey: &str, witness: &crate::custody::cosignature::WitnessVerifier) {
    let ids = dir.join("identities");
    let ids = ids.display();
    // Commands name the vault only when it is not where they look by default.
    let custos = if format!("http://{addr}") == super::DEFAULT_SERVER {
        "cargo run --release --".to_owned()
    } else {
        format!("cargo run --release -- --server http://{addr}")
    };
    let lines = [
        String::new(),
        format!(
            "custos demo vault: http://{addr}   data: {}/   (demo keys, unencrypted: never use for real cases)",
            dir.display()
        ),
        format!("log vkey:     {vkey}"),
        format!("witness vkey: {}   (also in {}/witness/witness.vkey)", witness.vkey(), dir.display()),
        String::new(),
        format!("Submitter's web page (Russian, Kazakh, English): http://{addr}/"),
        String::new(),
        "In another terminal:".into(),
        format!("  {}", super::DEMO_STATEMENT),
        format!("  {}", super::DEMO_REPORT),
        format!("  {custos} submit --statement statement.txt --medical report.txt"),
        format!("  {custos} --identity {ids}/lawyer cases"),
        format!("  {custos} --identity {ids}/lawyer get CASE --out case"),
        format!(
            "  {custos} --identity {ids}/auditor audit --state audit-state.json --witness {}/witness/witness.vkey --quorum 1",
            dir.display()
        ),
        format!("  {custos} --identity {ids}/admin principal list"),
    ];
    eprintln!("{}", lines.join("\n"));
}
