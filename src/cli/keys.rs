//! `custos keygen`.

use std::path::PathBuf;

use age::secrecy::ExposeSecret;

use super::{passphrase, Ctx};
use crate::identity::{card_path, Identity};

/// Arguments of `custos keygen`.
#[derive(clap::Args, Debug)]
pub struct Keygen {
    /// Name shown on the card (for example "Aigerim K., lawyer").
    #[arg(long)]
    name: String,
    /// Where to write the identity; the card goes to FILE.pub.
    #[arg(long)]
    out: PathBuf,
    /// Store the identity unencrypted (for automation only).
    #[arg(long)]
    no_passphrase: bool,
}

pub(super) fn keygen(ctx: &Ctx, args: Keygen) -> anyhow::Result<()> {
    let id = Identity::generate(&args.name)?;
    let pass = if args.no_passphrase {
        None
    } else {
        let first = passphrase("New passphrase: ")?;
        if std::env::var_os("CUSTOS_PASSPHRASE").is_none() {
            let again = passphrase("Repeat passphrase: ")?;
            if again.expose_secret() != first.expose_secret() {
                anyhow::bail!("the passphrases differ");
            }
        }
        if first.expose_secret().is_empty() {
            anyhow::bail!("an empty passphrase protects nothing; use --no-passphrase if that is meant");
        }
        Some(first)
    };
    id.save(&args.out, pass)?;
    let card = card_path(&args.out);
    ctx.print(
        &serde_json::json!({ "key_id": id.key_id(), "identity": args.out, "card": card }),
        || {
            eprintln!("identity: {}\ncard:     {}", args.out.display(), card.display());
            id.key_id().to_string()
        },
    );
    Ok(())
}
