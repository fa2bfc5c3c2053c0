//! `custos serve`, and `serve --dev`, which sets up a demo vault with an
//! admin, an intake lawyer and an auditor so the whole flow can be tried at
//! once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Ctx, DEFAULT_LISTEN};
use crate::api::wire::PrincipalBody;
use crate::api::{self, AppState};
use crate::client::Client;
use crate::identity::{Identity, IdentityError, Role};

/// Data directory of the demo vault.
const DEV_DIR: &str = "custos-dev";
/// Origin of the demo vault's log.
const DEV_ORIGIN: &str = "localhost/custos-dev";

/// Arguments of `custos serve`.
#[derive(clap::Args, Debug)]
pub struct Serve {
    /// Data directory of the vault (made by custos init).
    #[arg(long, env = "CUSTOS_DATA", required_unless_present = "dev")]
    data: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "CUSTOS_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Public base URL clients use (scheme://host[:port]) when behind a
    /// proxy or an onion service; repeat it for a vault reached at several
    /// addresses (in the env variable, separate them with commas).
    #[arg(long, env = "CUSTOS_PUBLIC_URL", value_delimiter = ',')]
    public_url: Vec<String>,
    /// Run a demo vault in ./custos-dev with demo identities, ready to try.
    #[arg(long, conflicts_with = "data")]
    dev: bool,
    /// A witness to send every new checkpoint to, as URL,VKEY (its
    /// add-checkpoint prefix and its cosigning key). Repeat for several.
    #[arg(long = "witness", value_name = "URL,VKEY")]
    witnesses: Vec<crate::witness::push::WitnessConfig>,
    /// Proof-of-work difficulty for opening a case, in leading zero bits
    /// (each step doubles the sender's cost; 18 is about a second in a browser).
    #[arg(long, env = "CUSTOS_STAMP_BITS", default_value_t = crate::stamp::DEFAULT_BITS,
          value_parser = clap::value_parser!(u8).range(0..=crate::stamp::MAX_BITS as i64))]
    stamp_bits: u8,
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
    let vault = crate::vault::open(&dir)?;
    let vkey = vault.description.vkey.clone();
    let state = Arc::new(AppState {
        vault,
        public_urls: args
            .public_url
            .iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect(),
        witnesses: crate::witness::push::Witnesses::new(args.witnesses),
        stamp_bits: args.stamp_bits,
        client_timeout: api::CLIENT_TIMEOUT,
    });
    let (listener, addr) = api::bind(args.listen).await?;
    tracing::info!(%addr, %vkey, "custos is serving");
    let server = tokio::spawn(api::serve(state.clone(), listener, shutdown_signal()));
    if args.dev {
        register_dev_principals(&dir, &format!("http://{addr}")).await?;
        print_dev_help(&dir, addr, &vkey);
    }
    server.await??;
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
    crate::vault::create_private_dir(&dir.join("identities"))?;
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

fn print_dev_help(dir: &Path, addr: SocketAddr, vkey: &str) {
    let ids = dir.join("identities");
    let ids = ids.display();
    let lines = [
        String::new(),
        format!(
            "custos demo vault: http://{addr}   data: {}/   (demo keys, unencrypted: never use for real cases)",
            dir.display()
        ),
        format!("log vkey: {vkey}"),
        String::new(),
        format!("Submitter's web page (Russian, Kazakh, English): http://{addr}/"),
        String::new(),
        "In another terminal:".into(),
        "  echo 'what happened ...' > statement.txt".into(),
        "  cargo run --release -- submit --statement statement.txt --evidence photo.jpg".into(),
        format!("  cargo run --release -- --identity {ids}/lawyer cases"),
        format!("  cargo run --release -- --identity {ids}/lawyer get CASE_ID --out retrieved"),
        format!("  cargo run --release -- --identity {ids}/auditor audit --state audit-state.json"),
        format!("  cargo run --release -- --identity {ids}/admin principal list"),
    ];
    eprintln!("{}", lines.join("\n"));
}
