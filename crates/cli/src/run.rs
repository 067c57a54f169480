//! `stevedore agent` and `stevedore up`: wiring the agent to the Docker
//! runtime, and the single-machine mode (server + embedded agent).

use crate::paths::{self, ServerInfo};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use stevedore_agent::{Agent, AgentConfig, AgentFlags, HttpControlPlane};
use stevedore_runtime::{ContainerRuntime, DockerRuntime};
use stevedore_server::ServerConfig;

/// Connects to Docker and makes the awsvpc pause image. Without the pause
/// image the agent still runs, but does not claim awsvpc support.
pub async fn docker_runtime() -> Result<(Arc<DockerRuntime>, Option<String>)> {
    let docker = DockerRuntime::connect().context("cannot connect to the Docker engine")?;
    docker
        .info()
        .await
        .context("the Docker engine does not answer; is dockerd running?")?;
    let pause = match docker.ensure_pause_image().await {
        Ok(img) => Some(img),
        Err(e) => {
            tracing::warn!(error = %e, "no pause image: awsvpc tasks are not supported on this host");
            None
        }
    };
    Ok((Arc::new(docker), pause))
}

/// The shared-credentials file, as the AWS SDKs read it: `[default]` or
/// `$AWS_PROFILE` of `$AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`.
pub fn shared_credentials() -> Option<(String, String)> {
    let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".aws").join("credentials")))?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let text = std::fs::read_to_string(path).ok()?;
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        if in_profile {
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => id = Some(v.trim().to_string()),
                    "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
    }
    Some((id?, secret?))
}

pub async fn run_agent(
    mut flags: AgentFlags,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    if flags.access_key_id.is_none() && env("AWS_ACCESS_KEY_ID").is_none() {
        if let Some((id, secret)) = shared_credentials() {
            flags.access_key_id = Some(id);
            flags.secret_access_key = Some(secret);
        }
    }
    if flags.default_data_dir.is_none() {
        flags.default_data_dir = Some(paths::data_dir(None)?.join("agent"));
    }
    let (docker, pause) = docker_runtime().await?;
    if flags.pause_image.is_none() {
        flags.pause_image = pause;
    }
    let config = AgentConfig::from_env_and_flags(flags, env)?;
    let control = Arc::new(HttpControlPlane::from_config(&config)?);
    tracing::info!(endpoint = %config.endpoint, cluster = %config.cluster, data_dir = %config.data_dir.display(), "stevedore agent starting");
    Agent::run(config, docker, control, shutdown).await?;
    Ok(())
}

/// `stevedore up`: the server, the cluster `default`, and an agent on the
/// local Docker engine, in one process.
pub async fn up(
    config: ServerConfig,
    flags: AgentFlags,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let data_dir = config.data_dir.clone();
    let (docker, pause) = docker_runtime().await?;
    let server = stevedore_server::Server::start(config).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let server_task = tokio::spawn(server.run(wait_stop(stop_rx.clone())));

    let info = ServerInfo::load(&data_dir)?;
    crate::client::call(
        &info,
        stevedore_api::ecs::TARGET_PREFIX,
        "CreateCluster",
        &serde_json::json!({ "clusterName": "default" }),
    )
    .await
    .context("cannot create the default cluster")?;

    let mut flags = flags;
    flags.endpoint = Some(info.endpoint.clone());
    flags.access_key_id = Some(info.access_key_id.clone());
    flags.secret_access_key = Some(info.secret_access_key.clone());
    flags.region = Some(info.region.clone());
    flags.cluster.get_or_insert_with(|| "default".to_string());
    flags.default_data_dir = Some(data_dir.join("agent"));
    if flags.pause_image.is_none() {
        flags.pause_image = pause;
    }
    let agent_config = AgentConfig::from_env_and_flags(flags, |k| std::env::var(k).ok())?;
    let control = Arc::new(HttpControlPlane::from_config(&agent_config)?);
    let agent_task = tokio::spawn(Agent::run(
        agent_config,
        docker,
        control,
        wait_stop(stop_rx.clone()),
    ));
    eprintln!(
        "stevedore is up: {}\n  eval \"$(stevedore env --data-dir {})\"",
        info.endpoint,
        data_dir.display()
    );
    shutdown.await;
    let _ = stop_tx.send(true);
    // The agent leaves containers running; the server drains requests.
    agent_task.await.context("agent task")??;
    server_task.await.context("server task")??;
    Ok(())
}
