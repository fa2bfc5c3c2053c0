//! `custos storage migrate --to s3`: move a stopped vault's ciphertext
//! chunks from its data directory to an S3 bucket (a Garage cluster),
//! each checked on both sides, then switch the vault to the bucket.

use std::path::PathBuf;

use super::Ctx;
use crate::client::progress::Progress;
use crate::config::{self, StorageKind};
use crate::store::ChunkBackend;

/// `custos storage`.
#[derive(clap::Subcommand, Debug)]
pub enum StorageCmd {
    /// Copy the stopped vault's chunks from its data directory to the S3
    /// bucket its settings name (s3_endpoint, s3_bucket, s3_region,
    /// s3_credentials_file), each checked against its hash after it is
    /// read back; then switch the vault to the bucket and remove the
    /// copies on disk. Serve it afterwards with storage = "s3".
    Migrate {
        /// Where the chunks go: s3.
        #[arg(long, value_name = "s3")]
        to: StorageKind,
        /// The vault's data directory (its server stopped).
        #[arg(long, env = "CUSTOS_DATA")]
        data: PathBuf,
        #[command(flatten)]
        config: config::Layer,
    },
}

pub(super) async fn storage(ctx: &Ctx, cmd: StorageCmd) -> anyhow::Result<()> {
    let StorageCmd::Migrate {
        to,
        data,
        config: flags,
    } = cmd;
    if to != StorageKind::S3 {
        anyhow::bail!("--to takes s3: chunks go from the data directory to a bucket");
    }
    let (mut settings, _) = config::load(Some(&data), flags)?;
    settings.storage = StorageKind::S3;
    let ChunkBackend::S3(location) = settings.chunk_backend()? else {
        anyhow::bail!(
            "set s3_endpoint, s3_bucket, s3_region and s3_credentials_file (in custos.toml, as CUSTOS_S3_* \
             variables or as flags) to say where the chunks go"
        );
    };
    let progress = ctx.progress;
    let migrated = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        // A migration stopped after the switch is finished on the bucket.
        let vault = match crate::vault::open(&data) {
            Err(crate::vault::VaultError::Store(crate::store::StoreError::Misplaced(_))) => {
                crate::vault::open_on(&data, ChunkBackend::S3(location.clone()))
            }
            opened => opened,
        }
        .map_err(|e| anyhow::anyhow!("{e}\n(a migration needs the vault's server stopped)"))?;
        let total = vault.store.large_chunks()?.iter().map(|(_, len)| len).sum::<u64>();
        let mut meter = if progress {
            super::bar::TerminalBar.begin("migrate", total)
        } else {
            Box::new(NoMeter)
        };
        let log = vault.description.vkey.clone();
        Ok(vault
            .store
            .migrate_chunks_to_s3(&location, &log, |n| meter.advance(n))?)
    })
    .await??;
    ctx.print(&migrated, || {
        format!(
            "{} chunks ({} bytes) are in the bucket, each read back and checked; the vault now keeps its \
             chunks there. Serve it with storage = \"s3\" and the same s3_* settings.",
            migrated.chunks, migrated.bytes
        )
    });
    Ok(())
}

/// No bar: `--quiet`, `--json` or no terminal.
struct NoMeter;

impl crate::client::progress::Meter for NoMeter {
    fn advance(&mut self, _: u64) {}
}
