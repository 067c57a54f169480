//! The `stevedore` binary.

mod client;
mod paths;

// The API's hot path allocates many small, short-lived objects (headers,
// JSON values); mimalloc handles that pattern with less contention than the
// system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use stevedore_server::config::{DEFAULT_ACCOUNT_ID, DEFAULT_LISTEN, DEFAULT_REGION};
use stevedore_server::ServerConfig;

#[derive(Parser)]
#[command(
    name = "stevedore",
    version,
    about = "A self-hosted container orchestrator that speaks the Amazon ECS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: the ECS API endpoint and its state store.
    Server(ServerArgs),
    /// Print `export` lines that point the aws CLI and SDKs at a server.
    Env {
        #[arg(long, env = "STEVEDORE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Manage access keys (the server must be running; uses the admin key).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN, env = "STEVEDORE_LISTEN")]
    listen: SocketAddr,
    /// Where state lives (default: $XDG_DATA_HOME/stevedore, i.e. ~/.local/share/stevedore).
    #[arg(long, env = "STEVEDORE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Region written to server.json and printed by `stevedore env`.
    #[arg(long, default_value = DEFAULT_REGION)]
    region: String,
    /// Account of the bootstrap admin key (and of every caller with --accept-any-credentials).
    #[arg(long, default_value = DEFAULT_ACCOUNT_ID)]
    account_id: String,
    /// Accept any well-formed SigV4 signature without checking secrets. Local test tooling only.
    #[arg(long)]
    accept_any_credentials: bool,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an access key bound to an account; prints it as JSON.
    Create {
        #[arg(long, env = "STEVEDORE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// 12-digit account id the key acts as.
        #[arg(long)]
        account_id: String,
        /// Make the key an IAM-style user instead of the account root.
        #[arg(long)]
        user_name: Option<String>,
        /// Allow the key to manage other keys.
        #[arg(long)]
        admin: bool,
    },
    /// List access keys (without secrets).
    List {
        #[arg(long, env = "STEVEDORE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Delete an access key.
    Delete {
        #[arg(long, env = "STEVEDORE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        access_key_id: String,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
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
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: draining in-flight requests");
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Server(args) => {
                init_tracing();
                let data_dir = paths::data_dir(args.data_dir)?;
                if args.account_id.len() != 12
                    || !args.account_id.bytes().all(|b| b.is_ascii_digit())
                {
                    bail!("--account-id must be 12 digits");
                }
                let config = ServerConfig {
                    listen: args.listen,
                    data_dir,
                    region: args.region,
                    account_id: args.account_id,
                    accept_any_credentials: args.accept_any_credentials,
                };
                stevedore_server::serve(config, shutdown_signal()).await?;
                Ok(())
            }
            Command::Env { data_dir } => {
                let dir = paths::data_dir(data_dir)?;
                let info = paths::ServerInfo::load(&dir)?;
                print!("{}", info.exports());
                Ok(())
            }
            Command::Keys { command } => keys(command).await,
        }
    })
}

async fn keys(command: KeysCommand) -> Result<()> {
    let (dir, op, body) = match command {
        KeysCommand::Create {
            data_dir,
            account_id,
            user_name,
            admin,
        } => (
            data_dir,
            "CreateAccessKey",
            serde_json::json!({ "accountId": account_id, "userName": user_name, "admin": admin }),
        ),
        KeysCommand::List { data_dir } => (data_dir, "ListAccessKeys", serde_json::json!({})),
        KeysCommand::Delete {
            data_dir,
            access_key_id,
        } => (
            data_dir,
            "DeleteAccessKey",
            serde_json::json!({ "accessKeyId": access_key_id }),
        ),
    };
    let dir = paths::data_dir(dir)?;
    let info = paths::ServerInfo::load(&dir)?;
    let out = client::call(&info, stevedore_server::admin::TARGET_PREFIX, op, &body).await?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
