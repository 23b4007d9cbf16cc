//! `faultline token create|list|revoke`: API token management straight on the
//! store, so the first admin token can be made before any server runs.
//! The secret is printed once, as the last line of `create`, and never stored.

use clap::{Args, Subcommand, ValueEnum};
use faultline_core::UserId;
use faultline_server::clock::{Clock, SystemClock};
use faultline_store::{Store, TokenScope};

use crate::StoreArgs;

#[derive(Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Clone, Copy, ValueEnum)]
enum Scope {
    /// Read everything, change nothing.
    Read,
    /// Read and change everything.
    Admin,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (last line of output).
    Create {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum)]
        scope: Scope,
        /// A name to recognise it by in lists and timelines [default: <user>, else <scope>-<id>].
        #[arg(long)]
        name: Option<String>,
        /// The person it belongs to: a user of the response configuration
        /// (--response-config). Actions through it are recorded as this user.
        #[arg(long)]
        user: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by name or id.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        name_or_id: String,
    },
}

/// `--user`: must be a user of the response configuration, or the token
/// would act as somebody nobody can page, assign or recognise.
fn token_user(config: &faultline_server::Config, user: &str) -> anyhow::Result<UserId> {
    let id = UserId::new(user).map_err(|e| anyhow::anyhow!("--user {user:?}: {e}"))?;
    let Some(response) = &config.response else {
        anyhow::bail!("--user {user}: no response configuration to find the user in (give --response-config FILE or set FAULTLINE_RESPONSE_CONFIG)");
    };
    if !response.users.iter().any(|(u, _)| u == &id) {
        let known: Vec<&str> = response.users.iter().map(|(u, _)| u.as_str()).collect();
        anyhow::bail!(
            "--user {user} is not a user of the response configuration (users: {})",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        );
    }
    Ok(id)
}

pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match args.command {
        TokenCommand::Create { store, scope, name, user } => {
            let config = store.config_without_secrets()?;
            let user = user.map(|u| token_user(&config, &u)).transpose()?;
            let store = faultline_server::open_store(&config).await?;
            let scope = match scope {
                Scope::Read => TokenScope::Read,
                Scope::Admin => TokenScope::Admin,
            };
            let name = match (name, &user) {
                (Some(n), _) => n,
                (None, Some(u)) => u.to_string(),
                (None, None) => format!("{}-{}", scope.as_str(), now.as_millis() % 1_000_000),
            };
            let (record, secret) = faultline_server::auth::create_token(&store, &name, scope, user, now).await?;
            let of = record.user.as_ref().map(|u| format!(" for user {u}")).unwrap_or_default();
            println!("created {} token {:?}{of} ({}); it is shown only once:", record.scope.as_str(), record.name, record.id);
            println!("{secret}");
            store.close().await;
        }
        TokenCommand::List { store } => {
            let store = faultline_server::open_store(&store.config()?).await?;
            let mut table = comfy_table::Table::new();
            table.load_style(comfy_table::presets::NOTHING).set_header(["ID", "NAME", "USER", "SCOPE", "CREATED", "REVOKED"]);
            for t in store.list_tokens().await? {
                table.add_row([
                    t.id,
                    t.name,
                    t.user.map_or_else(|| "-".to_owned(), |u| u.to_string()),
                    t.scope.as_str().to_owned(),
                    t.created_at.to_string(),
                    t.revoked_at.map_or_else(|| "-".to_owned(), |r| r.to_string()),
                ]);
            }
            println!("{table}");
            store.close().await;
        }
        TokenCommand::Revoke { store, name_or_id } => {
            let store = faultline_server::open_store(&store.config()?).await?;
            if !store.revoke_token(&name_or_id, now).await? {
                anyhow::bail!("no live token named or with id {name_or_id:?}");
            }
            println!("revoked {name_or_id}");
            store.close().await;
        }
    }
    Ok(())
}
