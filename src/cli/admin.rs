//! The operator's and admin's commands: `init` and `principal`.

use std::path::{Path, PathBuf};

use super::{card_arg, Ctx};
use crate::api::wire::PrincipalBody;
use crate::identity::{Card, KeyId, Role};

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
        #[arg(long, value_enum)]
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
