use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// An agent with no poll or report for this long shows `agentConnected: false`.
pub const DEFAULT_AGENT_DISCONNECT_AFTER: Duration = Duration::from_secs(10);
/// After that much more time disconnected, its service tasks are replaced.
pub const DEFAULT_LOST_INSTANCE_GRACE: Duration = Duration::from_secs(20);
/// ECS counts a RUNNING task without health checks as healthy after 40 s.
pub const DEFAULT_TASK_HEALTHY_AFTER: Duration = Duration::from_secs(40);

/// ECS keeps a stopped task describable for an hour, then forgets it.
pub const DEFAULT_STOPPED_TASK_RETENTION: Duration = Duration::from_secs(3600);

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
    /// How long a STOPPED task stays describable before it is deleted.
    pub stopped_task_retention: Duration,
    /// Which state store backend to open (`--store`).
    pub store: StoreBackend,
    /// Where the master key for secret values comes from.
    pub master_key: MasterKeySource,
}

/// Where the master key that seals secret values (SSM SecureString,
/// Secrets Manager) comes from.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum MasterKeySource {
    /// `<data dir>/master.key`, created (mode 0600) on first start.
    #[default]
    DataDir,
    /// A file the operator keeps (`--master-key-file`), never created.
    File(PathBuf),
    /// The base64 key itself (`STEVEDORE_MASTER_KEY`).
    Base64(String),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::DataDir => f.write_str("DataDir"),
            MasterKeySource::File(p) => write!(f, "File({})", p.display()),
            MasterKeySource::Base64(_) => f.write_str("Base64(..)"),
        }
    }
}

/// The state store backend named by `--store`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreBackend {
    /// SQLite at `path`, or at `<data dir>/stevedore.db` when `None`.
    #[default]
    SqliteInDataDir,
    Sqlite(PathBuf),
}

/// Why a `--store` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreBackendError {
    #[error(
        "--store {0}: the etcd backend is not implemented yet (tracked in issue 15); \
         use `sqlite` or `sqlite:///path/to/state.db`"
    )]
    EtcdNotSupported(String),
    #[error("--store {0}: missing the database path; use `sqlite:///path/to/state.db`")]
    EmptySqlitePath(String),
    #[error("--store {0}: unknown store; use `sqlite` or `sqlite:///path/to/state.db`")]
    Unknown(String),
}

impl std::str::FromStr for StoreBackend {
    type Err = StoreBackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "sqlite" {
            return Ok(StoreBackend::SqliteInDataDir);
        }
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreBackendError::EmptySqlitePath(s.to_owned()));
            }
            return Ok(StoreBackend::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("etcd://") || s.starts_with("etcd+") || s == "etcd" {
            return Err(StoreBackendError::EtcdNotSupported(s.to_owned()));
        }
        Err(StoreBackendError::Unknown(s.to_owned()))
    }
}

impl ServerConfig {
    /// The SQLite file `--store` names (the only backend so far).
    pub fn db_path(&self) -> PathBuf {
        match &self.store {
            StoreBackend::SqliteInDataDir => self.data_dir.join("stevedore.db"),
            StoreBackend::Sqlite(path) => path.clone(),
        }
    }

    /// CloudWatch Logs events: always in the data directory, whichever
    /// `--store` holds the control-plane state.
    pub fn logs_db_path(&self) -> PathBuf {
        self.data_dir.join("logs.db")
    }

    /// The master key's file when it lives in the data directory.
    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.data_dir.join("credentials")
    }

    pub fn server_json_path(&self) -> PathBuf {
        self.data_dir.join("server.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_flag_parses_sqlite_and_refuses_etcd() {
        assert_eq!("sqlite".parse(), Ok(StoreBackend::SqliteInDataDir));
        assert_eq!(
            "sqlite:///var/lib/x.db".parse(),
            Ok(StoreBackend::Sqlite("/var/lib/x.db".into()))
        );
        let etcd = "etcd://10.0.0.1:2379".parse::<StoreBackend>().unwrap_err();
        assert_eq!(
            etcd,
            StoreBackendError::EtcdNotSupported("etcd://10.0.0.1:2379".into())
        );
        assert!(etcd.to_string().contains("issue 15"));
        assert_eq!(
            "sqlite://".parse::<StoreBackend>(),
            Err(StoreBackendError::EmptySqlitePath("sqlite://".into()))
        );
        assert_eq!(
            "postgres://x".parse::<StoreBackend>(),
            Err(StoreBackendError::Unknown("postgres://x".into()))
        );
    }
}
