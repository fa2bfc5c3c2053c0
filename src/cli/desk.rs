//! `custos desk`: unlock the identity (at the terminal when there is one,
//! else in the desk's own form), start the desk on loopback, print its
//! one-time address and open the browser.

use std::net::SocketAddr;

use super::Ctx;
use crate::client::trust::TrustStore;
use crate::identity::{Identity, IdentityError};

/// Arguments of `custos desk`.
#[derive(clap::Args, Debug)]
pub struct Desk {
    /// Where the desk listens: a loopback address (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Print the address only; do not open the browser.
    #[arg(long)]
    no_open: bool,
}

pub(super) async fn desk(ctx: &Ctx, args: Desk) -> anyhow::Result<()> {
    let path = ctx
        .identity
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the desk needs --identity FILE (or CUSTOS_IDENTITY)"))?;
    // At the terminal if there is one (or CUSTOS_PASSPHRASE); with no way
    // to ask here, the desk asks in its own unlock form.
    let identity = match Identity::load(&path, || super::passphrase("Passphrase for the identity file: ")) {
        Ok(id) => Some(id),
        Err(IdentityError::NeedPassphrase) => None,
        Err(e) => return Err(e.into()),
    };
    let running = custos_desk::start(custos_desk::DeskOptions {
        server: ctx.server.clone(),
        proxy: ctx.proxy.clone(),
        identity_path: path,
        identity,
        listen: args.listen,
        trust: TrustStore::default_location(),
    })
    .await?;
    // One line, first on stdout, for people and for scripts.
    println!("desk: {}", running.url);
    if !args.no_open {
        open_browser(&running.url);
    }
    eprintln!("The desk runs until Ctrl-C. Its address works once; start it again for a new one.");
    stopped().await?;
    running.stop().await;
    Ok(())
}

/// Ctrl-C, or the terminal closing (SIGHUP), or a stop (SIGTERM): each
/// stops the desk the same way, so its scratch folder (ciphertext, an
/// auditor's unpacked bundles) is removed.
async fn stopped() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = hangup.recv() => Ok(()),
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Hand the address to the system's browser; say so if that fails (the
/// printed address still works).
fn open_browser(url: &str) {
    #[cfg(target_os = "macos")]
    let opener = ("open", vec![url]);
    #[cfg(windows)]
    let opener = ("cmd", vec!["/C", "start", "", url]);
    #[cfg(not(any(target_os = "macos", windows)))]
    let opener = ("xdg-open", vec![url]);
    // The browser (if this starts it) inherits this environment: never
    // the passphrase.
    let spawned = std::process::Command::new(opener.0)
        .args(&opener.1)
        .env_remove("CUSTOS_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("could not open a browser ({}: {e}); open the address above", opener.0);
    }
}
