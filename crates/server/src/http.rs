//! AWS JSON 1.1 over HTTP: `POST /` with `X-Amz-Target: Prefix.Operation`.
//! The request is authenticated, routed by target prefix, parsed into the
//! operation's typed input and answered with its typed output; handlers
//! never see HTTP types.

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::heartbeat::Heartbeats;
use crate::identity::{self, KeyCache, StoreLookup};
use crate::state::{AppState, Caller, Cx};
use crate::{admin, agent_api, ecs, logs};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use stevedore_api::Timestamp;
use stevedore_auth::{AuthError, RequestParts, Verifier};
use stevedore_logstore_sqlite::SqliteLogStore;
use stevedore_model::arn::Scope;
use stevedore_store_sqlite::SqliteStore;
use tokio_util::sync::CancellationToken;

const JSON_11: &str = "application/x-amz-json-1.1";
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
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = process(state, &method, &uri, &headers, &body).await;
    let (status, body, error_type) = match result {
        Ok(bytes) => (StatusCode::OK, bytes, None),
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(code = %e.code, message = %e.message, "request failed");
            } else {
                tracing::debug!(code = %e.code, message = %e.message, "request refused");
            }
            let body = serde_json::to_vec(&serde_json::json!({
                "__type": e.code,
                "message": e.message,
            }))
            .unwrap_or_default();
            (
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
                Some(e.code),
            )
        }
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(JSON_11));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Some(code) = error_type {
        if let Ok(v) = HeaderValue::from_str(&code) {
            h.insert("x-amzn-errortype", v);
        }
    }
    resp
}

async fn process(
    state: Arc<AppState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let caller = authenticate(&state, method, uri, headers, body)?;

    if method != Method::POST || uri.path() != "/" {
        return Err(ApiError::unknown_operation(format!(
            "Only POST / is served here (got {method} {}).",
            uri.path()
        )));
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unknown_operation("Missing X-Amz-Target header."))?;
    let (prefix, op_name) = target
        .split_once('.')
        .ok_or_else(|| ApiError::unknown_operation(format!("Unknown operation {target}.")))?;

    let cx = Cx {
        state: state.clone(),
        caller: Arc::new(caller.0),
        now: Timestamp::now(),
        allow_inactive_task_definition: false,
    };
    let service = caller.1;
    if prefix == stevedore_api::ecs::TARGET_PREFIX {
        require_service(&service, stevedore_api::ecs::SIGNING_NAME)?;
        let op = stevedore_api::ecs::Operation::from_name(op_name)
            .ok_or_else(|| ApiError::unknown_operation(format!("Unknown operation {target}.")))?;
        ecs::dispatch(cx, op, body).await
    } else if prefix == stevedore_api::logs::TARGET_PREFIX {
        require_service(&service, stevedore_api::logs::SIGNING_NAME)?;
        let op = stevedore_api::logs::Operation::from_name(op_name)
            .ok_or_else(|| ApiError::unknown_operation(format!("Unknown operation {target}.")))?;
        logs::dispatch(cx, op, body).await
    } else if prefix == stevedore_api::agent::TARGET_PREFIX {
        require_service(&service, stevedore_api::ecs::SIGNING_NAME)?;
        agent_api::dispatch(cx, op_name, body).await
    } else if prefix == admin::TARGET_PREFIX {
        admin::dispatch(cx, op_name, body).await
    } else {
        Err(ApiError::unknown_operation(format!(
            "Unknown operation {target}."
        )))
    }
}

fn require_service(signed_for: &str, expected: &str) -> Result<(), ApiError> {
    if signed_for == expected {
        Ok(())
    } else {
        Err(ApiError {
            code: "InvalidSignatureException".into(),
            message: format!(
                "Credential should be scoped to correct service: '{expected}' (the request was signed for '{signed_for}')."
            ),
            status: 403,
        })
    }
}

fn auth_error(e: AuthError) -> ApiError {
    ApiError {
        code: e.code().into(),
        message: e.to_string(),
        status: e.http_status(),
    }
}

/// SigV4 for every request: the caller's account comes from the key, the
/// region from the credential scope. Returns the caller and the service the
/// request was signed for.
fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Caller, String), ApiError> {
    let header_pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let parts = RequestParts {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        headers: &header_pairs,
        body,
    };
    let now = SystemTime::now();
    if state.config.accept_any_credentials {
        let v = state.verifier.parse_only(&parts, now).map_err(auth_error)?;
        let account = state.config.account_id.clone();
        return Ok((
            Caller {
                principal_arn: format!("arn:aws:iam::{account}:root"),
                scope: Scope::new(account, v.region),
                access_key_id: v.access_key_id,
                admin: true,
            },
            v.service,
        ));
    }
    let lookup = StoreLookup {
        cache: &state.keys,
        store: state.store.as_ref(),
        found: RefCell::new(None),
        failed: RefCell::new(None),
    };
    let verified = state.verifier.verify(&parts, now, &lookup);
    if let Some(e) = lookup.failed.into_inner() {
        return Err(e);
    }
    let v = verified.map_err(auth_error)?;
    let rec = lookup
        .found
        .into_inner()
        .ok_or_else(|| ApiError::server("verified a key that was not looked up"))?;
    Ok((
        Caller {
            principal_arn: rec.principal_arn(),
            scope: Scope::new(rec.account_id.clone(), v.region),
            access_key_id: v.access_key_id,
            admin: rec.admin,
        },
        v.service,
    ))
}
