//! Where the data directory is and what the server left in it.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use stevedore_server::config::{DEFAULT_LISTEN, DEFAULT_REGION};

/// `--data-dir`, else `$XDG_DATA_HOME/stevedore` (`~/.local/share/stevedore`).
pub fn data_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(d) => Ok(d),
        None => Ok(dirs::data_dir()
            .context("cannot find the user's data directory; pass --data-dir")?
            .join("stevedore")),
    }
}

pub struct ServerInfo {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl ServerInfo {
    /// Reads `server.json` (written when the server binds) and the admin
    /// credentials. Without `server.json` the documented defaults apply.
    pub fn load(dir: &Path) -> Result<ServerInfo> {
        let (endpoint, region) = match std::fs::read(dir.join("server.json")) {
            Ok(bytes) => {
                let v: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
                    format!("{} is not valid JSON", dir.join("server.json").display())
                })?;
                (
                    v["endpoint"].as_str().unwrap_or_default().to_string(),
                    v["region"].as_str().unwrap_or(DEFAULT_REGION).to_string(),
                )
            }
            Err(_) => (
                format!("http://{DEFAULT_LISTEN}"),
                DEFAULT_REGION.to_string(),
            ),
        };
        let creds_path = dir.join("credentials");
        let creds = std::fs::read_to_string(&creds_path).with_context(|| {
            format!(
                "cannot read {}: start `stevedore server` once with this data directory first",
                creds_path.display()
            )
        })?;
        let mut akid = None;
        let mut secret = None;
        let mut in_default = false;
        for line in creds.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_default = line == "[default]";
                continue;
            }
            if !in_default {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => akid = Some(v.trim().to_string()),
                    "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        Ok(ServerInfo {
            endpoint,
            region,
            access_key_id: akid.context("credentials file has no [default] aws_access_key_id")?,
            secret_access_key: secret
                .context("credentials file has no [default] aws_secret_access_key")?,
        })
    }

    pub fn exports(&self) -> String {
        format!(
            "export AWS_ENDPOINT_URL={}\nexport AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\nexport AWS_DEFAULT_REGION={}\nexport AWS_REGION={}\n",
            self.endpoint, self.access_key_id, self.secret_access_key, self.region, self.region
        )
    }
}
