//! The `stevedore` binary.

mod client;
mod paths;
mod run;

// The API's hot path allocates many small, short-lived objects (headers,
// JSON values); mimalloc handles that pattern with less contention than the
// system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use stevedore_server::config::MasterKeySource;
use stevedore_server::config::{
    StoreBackend, DEFAULT_ACCOUNT_ID, DEFAULT_AGENT_DISCONNECT_AFTER, DEFAULT_LISTEN,
    DEFAULT_LOST_INSTANCE_GRACE, DEFAULT_REGION, DEFAULT_TASK_HEALTHY_AFTER,
};
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
    /// Run the server and an agent on the local Docker engine, with the
    /// cluster `default`: the single-machine mode.
    Up {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Run a host agent that joins a cluster as a container instance.
    Agent {
        /// The server's URL (or ECS_BACKEND_HOST).
        #[arg(long)]
        endpoint: Option<String>,
        /// Cluster to join (or ECS_CLUSTER; default `default`).
        #[arg(long)]
        cluster: Option<String>,
        /// Agent state: identity and checkpoint (or ECS_DATADIR; default $XDG_DATA_HOME/stevedore/agent).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// SigV4 signing region (or AWS_REGION / AWS_DEFAULT_REGION).
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        agent: AgentArgs,
    },
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
    /// Seconds without a poll or report before an agent counts as disconnected.
    #[arg(long, default_value_t = DEFAULT_AGENT_DISCONNECT_AFTER.as_secs(), env = "STEVEDORE_AGENT_DISCONNECT_AFTER")]
    agent_disconnect_after: u64,
    /// Further seconds disconnected before its service tasks are replaced elsewhere.
    #[arg(long, default_value_t = DEFAULT_LOST_INSTANCE_GRACE.as_secs(), env = "STEVEDORE_LOST_INSTANCE_GRACE")]
    lost_instance_grace: u64,
    /// Seconds a RUNNING task without health checks must run to count as healthy (ECS: 40).
    #[arg(long, default_value_t = DEFAULT_TASK_HEALTHY_AFTER.as_secs(), env = "STEVEDORE_TASK_HEALTHY_AFTER")]
    task_healthy_after: u64,
    /// How long a stopped task stays describable before it is deleted: seconds, or a
    /// duration like 90s, 30m, 1h (ECS: 1h; config::DEFAULT_STOPPED_TASK_RETENTION).
    #[arg(long, default_value = "1h", value_parser = parse_retention, env = "STEVEDORE_STOPPED_TASK_RETENTION")]
    stopped_task_retention: Duration,
    /// State store: `sqlite` (the data dir's stevedore.db) or
    /// `sqlite:///path/to/state.db`. `etcd://...` is refused until issue 15.
    #[arg(long, default_value = "sqlite", env = "STEVEDORE_STORE")]
    store: StoreBackend,
    /// The master key that seals secret values (base64 of 32 random bytes, mode 0600).
    /// Default: <data-dir>/master.key, created on first start. STEVEDORE_MASTER_KEY
    /// may carry the key itself instead.
    #[arg(long, env = "STEVEDORE_MASTER_KEY_FILE", conflicts_with = "master_key")]
    master_key_file: Option<PathBuf>,
    #[arg(
        long,
        env = "STEVEDORE_MASTER_KEY",
        hide = true,
        hide_env_values = true
    )]
    master_key: Option<String>,
}

/// Agent settings that are flags as well as ECS agent environment variables.
#[derive(clap::Args, Default)]
struct AgentArgs {
    /// MiB of memory not offered to tasks (ECS_RESERVED_MEMORY).
    #[arg(long)]
    reserved_memory: Option<i64>,
    /// Image pull behaviour: default, always, once, prefer-cached (ECS_IMAGE_PULL_BEHAVIOR).
    #[arg(long)]
    image_pull_behavior: Option<String>,
    /// Stop timeout for containers without their own, e.g. 30s (ECS_CONTAINER_STOP_TIMEOUT).
    #[arg(long)]
    container_stop_timeout: Option<String>,
    /// Allow privileged containers (off by default; ECS_DISABLE_PRIVILEGED=false also allows).
    #[arg(long)]
    allow_privileged: bool,
}

impl AgentArgs {
    fn flags(self) -> Result<stevedore_agent::AgentFlags> {
        use stevedore_agent::config::{parse_go_duration, parse_pull_behavior};
        Ok(stevedore_agent::AgentFlags {
            reserved_memory_mib: self.reserved_memory,
            pull_behavior: self
                .image_pull_behavior
                .as_deref()
                .map(parse_pull_behavior)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--image-pull-behavior: {e}"))?,
            container_stop_timeout: self
                .container_stop_timeout
                .as_deref()
                .map(parse_go_duration)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--container-stop-timeout: {e}"))?,
            allow_privileged: self.allow_privileged.then_some(true),
            ..Default::default()
        })
    }
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

/// `--stopped-task-retention`: bare seconds (like the other timing flags) or
/// a duration string. Zero would delete a task in the pass that sees it stop,
/// before any caller could read why it stopped, so it is refused.
fn parse_retention(v: &str) -> Result<Duration, String> {
    let d = match v.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => stevedore_agent::config::parse_go_duration(v)?,
    };
    if d < Duration::from_secs(1) {
        return Err(format!(
            "{v:?} is too short; give at least 1s (the default, as on ECS, is 1h)"
        ));
    }
    Ok(d)
}

impl ServerArgs {
    fn config(self) -> Result<ServerConfig> {
        let data_dir = paths::data_dir(self.data_dir)?;
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("--account-id must be 12 digits");
        }
        Ok(ServerConfig {
            listen: self.listen,
            data_dir,
            region: self.region,
            account_id: self.account_id,
            accept_any_credentials: self.accept_any_credentials,
            agent_disconnect_after: Duration::from_secs(self.agent_disconnect_after.max(1)),
            lost_instance_grace: Duration::from_secs(self.lost_instance_grace),
            task_healthy_after: Duration::from_secs(self.task_healthy_after),
            stopped_task_retention: self.stopped_task_retention,
            store: self.store,
            master_key: match (self.master_key_file, self.master_key) {
                (Some(path), _) => MasterKeySource::File(path),
                (None, Some(key)) => MasterKeySource::Base64(key),
                (None, None) => MasterKeySource::DataDir,
            },
        })
    }
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
                stevedore_server::serve(args.config()?, shutdown_signal()).await?;
                Ok(())
            }
            Command::Up { server, agent } => {
                init_tracing();
                run::up(server.config()?, agent.flags()?, shutdown_signal()).await
            }
            Command::Agent {
                endpoint,
                cluster,
                data_dir,
                region,
                agent,
            } => {
                init_tracing();
                let mut flags = agent.flags()?;
                flags.endpoint = endpoint;
                flags.cluster = cluster;
                flags.data_dir = data_dir;
                flags.region = region;
                run::run_agent(flags, shutdown_signal()).await
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
