//! `custos witness serve`: run a C2SP tlog-witness for other organisations'
//! logs (or your own, from another machine and another operator).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::Ctx;
use crate::custody::checkpoint::LogVerifier;

/// Default address of `custos witness serve`.
const DEFAULT_WITNESS_LISTEN: &str = "127.0.0.1:8631";

/// `custos witness ...`.
#[derive(clap::Subcommand, Debug)]
pub enum WitnessCmd {
    /// Serve add-checkpoint: cosign each log checkpoint that is consistent
    /// with the last one this witness cosigned.
    Serve(WitnessServe),
}

/// Arguments of `custos witness serve`.
#[derive(clap::Args, Debug)]
pub struct WitnessServe {
    /// Folder for the witness key (made on first run) and its state.
    #[arg(long, env = "CUSTOS_WITNESS_DATA")]
    data: PathBuf,
    /// The witness's name, a schema-less URL such as witness.example.org/w1.
    #[arg(long)]
    name: String,
    /// Verifier key of a log to witness (or a file holding it). Repeat for several.
    #[arg(long = "log", value_name = "VKEY", required = true)]
    logs: Vec<String>,
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_WITNESS_LISTEN)]
    listen: SocketAddr,
}

pub(super) async fn witness(_ctx: &Ctx, cmd: WitnessCmd) -> anyhow::Result<()> {
    let WitnessCmd::Serve(args) = cmd;
    let logs = args
        .logs
        .iter()
        .map(|l| {
            let text = if std::path::Path::new(l).is_file() {
                std::fs::read_to_string(l)?
            } else {
                l.clone()
            };
            Ok(LogVerifier::parse(&text)?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let witness = Arc::new(crate::witness::Witness::open(&args.data, &args.name, &logs)?);
    let vkey = witness.verifier().vkey();
    std::fs::write(args.data.join("witness.vkey"), format!("{vkey}\n"))?;
    let (listener, addr) = crate::api::bind(args.listen).await?;
    // The one line scripts wait for: where to push and which key to trust.
    println!("witness listening on http://{addr} with vkey {vkey}");
    tracing::info!(%addr, %vkey, logs = logs.len(), "witness is serving");
    crate::witness::serve(
        witness,
        listener,
        crate::witness::LIMITS,
        super::serve::shutdown_signal(),
    )
    .await?;
    Ok(())
}
