use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// An agent with no poll or report for this long shows `agentConnected: false`.
pub const DEFAULT_AGENT_DISCONNECT_AFTER: Duration = Duration::from_secs(10);
/// After that much more time disconnected, its service tasks are replaced.
pub const DEFAULT_LOST_INSTANCE_GRACE: Duration = Duration::from_secs(20);
/// ECS counts a RUNNING task without health checks as healthy after 40 s.
pub const DEFAULT_TASK_HEALTHY_AFTER: Duration = Duration::from_secs(40);

/// The documented default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6789";
pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Region reported in `server.json` and `stevedore env`; requests may be
    /// signed for any region and land in that region's namespace.
    pub region: String,
    /// Account of the bootstrap admin key, and of every request when
    /// `accept_any_credentials` is on.
    pub account_id: String,
    /// Accept any well-formed SigV4 signature without checking the secret.
    /// For local test tooling only; never the default.
    pub accept_any_credentials: bool,
    pub agent_disconnect_after: Duration,
    pub lost_instance_grace: Duration,
    pub task_healthy_after: Duration,
}

impl ServerConfig {
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("stevedore.db")
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.data_dir.join("credentials")
    }

    pub fn server_json_path(&self) -> PathBuf {
        self.data_dir.join("server.json")
    }
}
