//! Starts the real `stevedore` binary on a free port with a temp data dir
//! and builds an aws-sdk-ecs client for it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestServer {
    pub child: Child,
    pub data_dir: PathBuf,
    pub endpoint: String,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in(&dir);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing data dir (used to restart after a crash).
    // Polls for a real server process, outside any runtime: wall time.
    #[allow(clippy::disallowed_methods)]
    pub fn start_in(dir: &Path) -> TestServer {
        let _ = std::fs::remove_file(dir.join("server.json"));
        let child = Command::new(env!("CARGO_BIN_EXE_stevedore"))
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn stevedore");
        let deadline = Instant::now() + Duration::from_secs(30);
        let endpoint = loop {
            if let Ok(bytes) = std::fs::read(dir.join("server.json")) {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                    break v["endpoint"].as_str().expect("endpoint").to_string();
                }
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        TestServer {
            child,
            data_dir: dir.to_path_buf(),
            endpoint,
            _tmp: None,
        }
    }

    pub fn admin_key(&self) -> (String, String) {
        let text = std::fs::read_to_string(self.data_dir.join("credentials")).expect("credentials");
        let get = |k: &str| {
            text.lines()
                .find_map(|l| {
                    l.split_once('=')
                        .filter(|(a, _)| a.trim() == k)
                        .map(|(_, v)| v.trim().to_string())
                })
                .expect("key in credentials")
        };
        (get("aws_access_key_id"), get("aws_secret_access_key"))
    }

    pub fn client(&self) -> aws_sdk_ecs::Client {
        let (id, secret) = self.admin_key();
        self.client_with(&id, &secret, "us-east-1")
    }

    pub fn client_with(&self, id: &str, secret: &str, region: &str) -> aws_sdk_ecs::Client {
        let creds = aws_credential_types::Credentials::new(id, secret, None, None, "test");
        let conf = aws_sdk_ecs::Config::builder()
            .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_sdk_ecs::config::Region::new(region.to_string()))
            .credentials_provider(creds)
            .build();
        aws_sdk_ecs::Client::from_conf(conf)
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
