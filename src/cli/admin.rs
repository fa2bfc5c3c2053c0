//! The operator's and admin's commands: `init`, `principal`, `backup` and
//! `restore`.

use std::path::{Path, PathBuf};

use super::{card_arg, Ctx};
use crate::identity::{Card, KeyId, Role};
use crate::wire::PrincipalBody;

/// Folder of admin cards read by `init` when no `--admin` is given.
const DEFAULT_ADMIN_CARDS: &str = "keys/admins";

/// Arguments of `custos init`.
#[derive(clap::Args, Debug)]
pub struct Init {
    /// Data directory to create the vault in.
    #[arg(long)]
    data: PathBuf,
    /// Log origin: a name for this vault's log, e.g. "vault.example.org/custos".
    #[arg(long)]
    origin: String,
    /// Admin card (a .pub file or the card line); repeatable. Without it,
    /// every keys/admins/*.pub is used.
    #[arg(long = "admin", value_name = "CARD")]
    admins: Vec<String>,
}

pub(super) async fn init(ctx: &Ctx, args: Init) -> anyhow::Result<()> {
    let mut cards: Vec<Card> = args.admins.iter().map(|a| card_arg(a)).collect::<Result<_, _>>()?;
    if cards.is_empty() {
        cards = read_card_folder(Path::new(DEFAULT_ADMIN_CARDS))?;
    }
    if cards.is_empty() {
        anyhow::bail!("no admin cards: pass --admin CARD or put cards in {DEFAULT_ADMIN_CARDS}/*.pub");
    }
    let mut ids: Vec<KeyId> = cards.iter().map(Card::key_id).collect();
    ids.sort();
    ids.dedup();
    if ids.len() != cards.len() {
        anyhow::bail!("the same admin card was given twice");
    }
    let verifier = crate::vault::init(&args.data, &args.origin, &cards).await?;
    ctx.print(
        &serde_json::json!({ "vkey": verifier.vkey(), "origin": args.origin, "data": args.data, "admins": ids }),
        || format!("vkey: {}", verifier.vkey()),
    );
    Ok(())
}

fn read_card_folder(dir: &Path) -> anyhow::Result<Vec<Card>> {
    if !dir.is_dir() {
        return Ok(vec![]);
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pub"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| crate::identity::read_card(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display())))
        .collect()
}

/// `custos principal ...`.
#[derive(clap::Subcommand, Debug)]
pub enum PrincipalCmd {
    /// Register a principal from its card.
    Add {
        /// The card (.pub file or the card line).
        card: String,
        /// Role in this vault.
        #[arg(long, value_parser = role_parser())]
        role: Role,
        /// New cases are wrapped to this principal (lawyers only).
        #[arg(long)]
        intake: bool,
    },
    /// List the registered principals.
    List,
    /// Remove a principal.
    Remove {
        /// Key id of the principal.
        key_id: KeyId,
    },
    /// Set the mail address a lawyer's digest goes to (the vault mails
    /// counts only, at fixed times, when the operator has set a schedule),
    /// or clear it. The address is logged: auditors read it.
    Contact {
        /// Key id of the lawyer.
        key_id: KeyId,
        /// The address (plain local@domain, ASCII).
        #[arg(
            long,
            value_name = "ADDR",
            required_unless_present = "clear",
            conflicts_with = "clear"
        )]
        email: Option<crate::identity::contact::EmailAddress>,
        /// Clear the address: no more digests for this lawyer.
        #[arg(long)]
        clear: bool,
    },
}

pub(super) async fn principal(ctx: &Ctx, cmd: PrincipalCmd) -> anyhow::Result<()> {
    let id = ctx.load_identity()?;
    let client = ctx.client()?;
    let log = ctx.log_verifier(None).await?;
    match cmd {
        PrincipalCmd::Add { card, role, intake } => {
            let card = card_arg(&card)?;
            let key_id = card.key_id();
            let receipt = client
                .add_principal(id.signing_key(), &PrincipalBody { card, role, intake })
                .await?;
            crate::client::flows::check_receipt(&receipt, &log, crate::custody::Action::PrincipalAdded)?;
            ctx.print(
                &serde_json::json!({ "key_id": key_id, "role": role, "intake": intake, "receipt": receipt }),
                || format!("added {key_id} as {role}{}", if intake { " (intake)" } else { "" }),
            );
        }
        PrincipalCmd::List => {
            let list = client.principals(id.signing_key()).await?;
            ctx.print(&list, || {
                list.iter()
                    .map(|p| {
                        format!(
                            "{}  {:<7}{}  {}",
                            p.key_id,
                            p.role.to_string(),
                            if p.intake { " intake" } else { "       " },
                            p.name
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        PrincipalCmd::Contact { key_id, email, .. } => {
            let receipt = client
                .set_contact(id.signing_key(), &key_id, email.as_ref().map(|a| a.as_str()))
                .await?;
            crate::client::flows::check_receipt(&receipt, &log, crate::custody::Action::PrincipalContactSet)?;
            ctx.print(
                &serde_json::json!({ "key_id": key_id, "email": email, "receipt": receipt }),
                || match &email {
                    Some(a) => format!("{key_id}'s digest goes to {a}"),
                    None => format!("{key_id} gets no digest"),
                },
            );
        }
        PrincipalCmd::Remove { key_id } => {
            let receipt = client.remove_principal(id.signing_key(), &key_id).await?;
            crate::client::flows::check_receipt(&receipt, &log, crate::custody::Action::PrincipalRemoved)?;
            ctx.print(&serde_json::json!({ "key_id": key_id, "receipt": receipt }), || {
                format!("removed {key_id}")
            });
        }
    }
    Ok(())
}

/// Arguments of `custos backup`.
#[derive(clap::Args, Debug)]
pub struct Backup {
    /// File to write the backup to (a tar file; never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Back up the stopped vault in this data directory directly, instead
    /// of asking the running server (--server, as an admin --identity).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Put this log key file (the vault's DATA/log.key) into the backup,
    /// encrypted with a passphrase (asked for, or CUSTOS_BACKUP_PASSPHRASE).
    /// Without it the backup holds no private key at all.
    #[arg(long, value_name = "LOG_KEY_FILE")]
    with_log_key: Option<PathBuf>,
    /// Leave the large chunks in the vault's S3 bucket: the backup lists
    /// each one's SHA-256 and length in its signed manifest, and a restore
    /// checks that the bucket holds every one. Refused for a vault whose
    /// chunks are on its disk.
    #[arg(long)]
    chunk_hashes_only: bool,
    /// With --data: the vault's settings (its custos.toml, CUSTOS_*
    /// variables, these flags) say where its chunks are.
    #[command(flatten)]
    config: crate::config::Layer,
}

/// Arguments of `custos restore`.
#[derive(clap::Args, Debug)]
pub struct Restore {
    /// The backup file.
    file: PathBuf,
    /// Folder to rebuild the vault in: new, or empty.
    #[arg(long)]
    data: PathBuf,
    /// The vault's log key file, kept apart from the backup. Without it the
    /// backup's own encrypted copy is used (made with --with-log-key; its
    /// passphrase is asked for, or read from CUSTOS_BACKUP_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    log_key: Option<PathBuf>,
    /// Where the restored vault keeps its large chunks (CUSTOS_* variables,
    /// these flags): with storage s3, a full backup's chunks are written to
    /// the bucket, and a backup of chunk hashes only is checked against it.
    #[command(flatten)]
    config: crate::config::Layer,
}

/// The passphrase that protects a backup's log key: CUSTOS_BACKUP_PASSPHRASE,
/// else asked for on the terminal (twice when it is being set).
fn backup_passphrase(confirm: bool) -> Result<age::secrecy::SecretString, crate::identity::IdentityError> {
    use age::secrecy::ExposeSecret;
    if let Ok(p) = std::env::var("CUSTOS_BACKUP_PASSPHRASE") {
        return Ok(p.into());
    }
    let first = super::passphrase_prompt("Passphrase for the backup's log key: ")?;
    if confirm {
        let again = super::passphrase_prompt("The same passphrase again: ")?;
        if again.expose_secret() != first.expose_secret() {
            return Err(crate::identity::IdentityError::Io(std::io::Error::other(
                "the two passphrases differ",
            )));
        }
        if first.expose_secret().chars().count() < 12 {
            return Err(crate::identity::IdentityError::Io(std::io::Error::other(
                "use a passphrase of 12 characters or more: it is all that protects the log key",
            )));
        }
    }
    Ok(first)
}

pub(super) async fn backup(ctx: &Ctx, args: Backup) -> anyhow::Result<()> {
    use crate::backup::{self, BackupChunks};
    let chunks = if args.chunk_hashes_only {
        BackupChunks::HashesOnly
    } else {
        BackupChunks::Included
    };
    if args.out.exists() {
        anyhow::bail!("{} exists; a backup never overwrites a file", args.out.display());
    }
    let mut partial = args.out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    let result = async {
        let mut file = crate::identity::private_file(&partial)?;
        let vkey = match &args.data {
            Some(dir) => {
                let (settings, _) = crate::config::load(Some(dir), args.config.clone())?;
                let vault = crate::vault::open_async_on(dir, settings.chunk_backend()?)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "{e}\n(is its server running? Then back it up through the server: \
                             custos backup --out FILE --identity ADMIN)"
                        )
                    })?;
                let vault = std::sync::Arc::new(vault);
                let snapshot = backup::snapshot_with(vault.clone(), chunks).await?;
                // Reads every chunk (from a bucket, perhaps, whose client
                // blocks): off the runtime's threads.
                tokio::task::block_in_place(|| snapshot.write(&vault.store, std::io::BufWriter::new(&mut file)))?;
                vault.description.vkey.clone()
            }
            None => {
                let admin = ctx.load_identity()?;
                let vkey = ctx.log_verifier(None).await?.vkey();
                let mut out = std::io::BufWriter::new(&mut file);
                ctx.client()?
                    .backup_chunks(admin.signing_key(), &mut out, args.chunk_hashes_only)
                    .await?;
                std::io::Write::flush(&mut out)?;
                vkey
            }
        };
        file.sync_all()?;
        drop(file);
        if let Some(key_file) = &args.with_log_key {
            // Checked against the vault's vkey before anything is asked;
            // the one read of the file below checks the backup against it.
            let key = crate::vault::read_key_file(key_file)?;
            let origin = crate::custody::checkpoint::LogVerifier::parse(&vkey)?.name().to_owned();
            let signer = crate::custody::checkpoint::LogSigner::new(&origin, key.clone())?;
            if signer.verifier().vkey() != vkey {
                anyhow::bail!("{} is not this vault's log key", key_file.display());
            }
            let encrypted = backup::encrypt_log_key(&key, backup_passphrase(true)?)?;
            backup::append_log_key(&partial, &encrypted)?;
        }
        let (manifest, with_key) = backup::verify_file(&partial, Some(&vkey))?;
        std::fs::rename(&partial, &args.out)?;
        crate::durable::sync_parent(&args.out)?;
        anyhow::Ok((manifest, with_key))
    }
    .await;
    let (manifest, with_key) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let bytes = std::fs::metadata(&args.out)?.len();
    ctx.print(
        &serde_json::json!({
            "file": args.out,
            "bytes": bytes,
            "log_size": manifest.log_size,
            "checkpoint": manifest.checkpoint,
            "chunk_files": manifest.chunk_files,
            "chunks_in_bucket": manifest.bucket.as_ref().map(|b| serde_json::json!({
                "bucket": b.bucket, "chunks": b.chunks.len(),
            })),
            "created": manifest.created,
            "log_key_included": with_key,
        }),
        || {
            format!(
                "backup written and verified: {} ({}), log of {} entries, {}{}",
                args.out.display(),
                super::bar::human(bytes),
                manifest.log_size,
                match &manifest.bucket {
                    Some(b) => format!(
                        "{} chunks left in the bucket {:?}, listed by hash (a restore checks the bucket holds them)",
                        b.chunks.len(),
                        b.bucket
                    ),
                    None => format!("{} chunk files", manifest.chunk_files),
                },
                if with_key {
                    "; holds the log key, encrypted with your passphrase"
                } else {
                    "; holds no private key (keep log.key apart, safely)"
                }
            )
        },
    );
    Ok(())
}

pub(super) async fn restore(ctx: &Ctx, args: Restore) -> anyhow::Result<()> {
    use crate::backup::{self, LogKeySource};
    let key = match &args.log_key {
        Some(path) => LogKeySource::File(path),
        None => LogKeySource::Backup(Box::new(|| backup_passphrase(false))),
    };
    // A restore writes and fsyncs a whole vault, and may prompt for the
    // log key's passphrase: it runs where blocking is allowed.
    let (settings, _) = crate::config::load(None, args.config)?;
    let chunks = settings.chunk_backend()?;
    let r = tokio::task::block_in_place(|| backup::restore_on(&args.file, &args.data, key, chunks))?;
    ctx.print(&r, || {
        format!(
            "restored into {}: log of {} entries (snapshot of {}); audit passed: {} entries, {} chains, \
             {} signatures, {} objects ({}) re-hashed, {} principals.\n\
             The restored log ends at entry {}. If the vault signed checkpoints beyond it after this \
             backup, auditors will see the restored vault fork from them when it grows: tell them \
             which entries were lost (SECURITY.md, \"If the vault will not start\").",
            r.data.display(),
            r.log_size,
            r.snapshot_created,
            r.audit.entries,
            r.audit.chains,
            r.audit.signatures,
            r.audit.objects,
            super::bar::human(r.audit.object_bytes),
            r.audit.principals,
            r.log_size,
        )
    });
    Ok(())
}

/// `--role`: the registry's roles, listed in help (the core crate, where
/// `Role` lives, knows nothing of clap).
fn role_parser() -> impl clap::builder::TypedValueParser<Value = Role> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Role::ALL.map(Role::as_str))
        .map(|r| r.parse::<Role>().expect("one of the listed roles"))
}
