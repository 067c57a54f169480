//! The HTTP server: start-up, the listener, background tasks and graceful
//! shutdown. Requests are framed, authenticated and routed by the service
//! table in `crate::edge`; handlers never see HTTP types.

use crate::config::{MasterKeySource, ServerConfig};
use crate::heartbeat::Heartbeats;
use crate::identity::{self, KeyCache};
use crate::logs;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stevedore_api::Timestamp;
use stevedore_auth::Verifier;
use stevedore_logstore_sqlite::SqliteLogStore;
use stevedore_seal::MasterKey;
use stevedore_store_sqlite::SqliteStore;
use tokio_util::sync::CancellationToken;

/// The largest request body we read. ECS's biggest inputs (task
/// definitions) are capped at 64 KiB; PutLogEvents carries up to 1 MiB of
/// message text (plus 26 bytes per event), which JSON framing and escaping
/// inflate, so 8 MiB leaves room for any legitimate call while bounding
/// memory per request. Oversized log batches are then refused by the Logs
/// handler with the Logs API's own error.
const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("cannot open the store: {0}")]
    Store(#[from] stevedore_store::StoreError),
    #[error("cannot open the log store: {0}")]
    LogStore(#[from] stevedore_logstore::LogStoreError),
    #[error("cannot load the master key: {0}")]
    MasterKey(#[from] stevedore_seal::SealError),
    #[error("bootstrap failed: {0}")]
    Bootstrap(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

pub struct Server {
    pub local_addr: SocketAddr,
    pub state: Arc<AppState>,
    listener: tokio::net::TcpListener,
}

impl Server {
    /// Opens the store, makes sure the admin key exists, binds, and records
    /// the bound endpoint in `DIR/server.json` for `stevedore env` and tests.
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| ServerError::DataDir(config.data_dir.display().to_string(), e))?;
        let store = SqliteStore::open(&config.db_path())?;
        let logs = SqliteLogStore::open(&config.logs_db_path())?;
        let now = Timestamp::now();
        identity::ensure_admin_key(
            store.as_ref(),
            &config.account_id,
            &config.credentials_path(),
            now,
        )
        .await
        .map_err(|e| ServerError::Bootstrap(e.message))?;
        crate::live_tasks::ensure_index(store.as_ref())
            .await
            .map_err(|e| ServerError::Bootstrap(e.message))?;
        logs::move_legacy_events(store.as_ref(), logs.as_ref())
            .await
            .map_err(|e| ServerError::Bootstrap(e.message))?;
        crate::history::ensure_index(store.as_ref())
            .await
            .map_err(|e| ServerError::Bootstrap(e.message))?;
        if config.accept_any_credentials {
            tracing::warn!(
                account = %config.account_id,
                "--accept-any-credentials is on: signatures are NOT checked against secrets and every caller acts as this account. Use only for local test tooling."
            );
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| ServerError::Bind(config.listen, e))?;
        let local_addr = listener.local_addr().map_err(ServerError::Serve)?;
        let info = serde_json::json!({
            "endpoint": format!("http://{local_addr}"),
            "region": config.region,
            "pid": std::process::id(),
        });
        identity::write_private(
            &config.server_json_path(),
            serde_json::to_string_pretty(&info)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(|e| ServerError::Bootstrap(format!("cannot write server.json: {e}")))?;
        let master_key = Arc::new(match &config.master_key {
            MasterKeySource::DataDir => MasterKey::load_or_create(&config.master_key_path())?,
            MasterKeySource::File(path) => MasterKey::read(path)?,
            MasterKeySource::Base64(text) => MasterKey::from_base64(text)?,
        });
        let heartbeats = Heartbeats::new(config.agent_disconnect_after);
        let state = Arc::new(AppState {
            store,
            logs,
            verifier: Verifier::new(Duration::from_secs(15 * 60)),
            config,
            keys: KeyCache::default(),
            heartbeats,
            endpoint: format!("http://{local_addr}"),
            counters: Arc::default(),
            master_key,
        });
        Ok(Server {
            local_addr,
            state,
            listener,
        })
    }

    /// Serves until `shutdown` resolves, then stops accepting and drains
    /// in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        tracing::info!(endpoint = %format!("http://{}", self.local_addr), "stevedore server listening");
        use axum::serve::ListenerExt;
        // Responses are small and written whole; Nagle would only add delay.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        // One root token for the background tasks; each gets a child. They
        // are cancelled, never aborted, so none stops inside a write.
        let root = CancellationToken::new();
        // Log retention is enforced on read; this reclaims the space.
        let sweeper = tokio::spawn(logs::run_sweeper(
            self.state.store.clone(),
            self.state.logs.clone(),
            logs::SWEEP_INTERVAL,
            root.child_token(),
        ));
        let controller = tokio::spawn(stevedore_ctlrt::run(
            crate::controller::ServiceController::new(self.state.clone()),
            Arc::new(crate::controller::ServiceController::changes(&self.state)),
            Arc::new(stevedore_ctlrt::AlwaysLeader),
            stevedore_ctlrt::Config::default(),
            root.child_token(),
        ));
        // Same gate and shutdown tree as the service controller: in HA only
        // the leader deletes history.
        let retention = self.state.config.stopped_task_retention;
        let gc = tokio::spawn(stevedore_ctlrt::run(
            crate::history::GcController::new(
                self.state.store.clone(),
                retention,
                crate::history::wall_clock(),
                self.state.counters.clone(),
            ),
            Arc::new(stevedore_ctlrt::NoChanges),
            Arc::new(stevedore_ctlrt::AlwaysLeader),
            crate::history::GcController::config(retention),
            root.child_token(),
        ));
        let result = axum::serve(listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServerError::Serve);
        // In-flight requests have drained; now let the background tasks
        // finish their current write and stop.
        root.cancel();
        for (name, task) in [
            ("log sweeper", sweeper),
            ("service controller", controller),
            ("stopped-task collector", gc),
        ] {
            if let Err(e) = task.await {
                tracing::error!(task = name, error = %e, "background task panicked");
            }
        }
        result
    }
}

/// Starts a server and serves until `shutdown`.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::start(config).await?.run(shutdown).await
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/_stevedore/health", axum::routing::get(|| async { "ok" }))
        .fallback(crate::edge::handle)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}
