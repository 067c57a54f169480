use std::net::SocketAddr;
use std::path::PathBuf;

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
