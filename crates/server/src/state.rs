use crate::config::ServerConfig;
use crate::domain::launch::LaunchEnv;
use crate::heartbeat::Heartbeats;
use crate::identity::KeyCache;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use stevedore_api::Timestamp;
use stevedore_auth::Verifier;
use stevedore_logstore::LogStore;
use stevedore_model::arn::Scope;
use stevedore_store::Store;

/// Everything a request handler may touch.
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// CloudWatch Logs events, outside the KV store and its mirror.
    pub logs: Arc<dyn LogStore>,
    pub verifier: Verifier,
    pub config: ServerConfig,
    pub keys: KeyCache,
    pub heartbeats: Heartbeats,
    /// The endpoint URL agents and DiscoverPollEndpoint report.
    pub endpoint: String,
    pub counters: Arc<Counters>,
    /// Seals and opens secret values; nothing stores them unsealed.
    pub master_key: Arc<stevedore_seal::MasterKey>,
}

/// What the background controllers did, for the admin API's
/// `GetDebugCounters`: tests and operators check that a pass costs the same
/// however long the server has run.
#[derive(Debug, Default)]
pub struct Counters {
    pub service_passes: AtomicU64,
    /// Task records the last service-controller pass read.
    pub service_task_records_read: AtomicU64,
    pub gc_passes: AtomicU64,
    pub gc_tasks_deleted: AtomicU64,
}

/// Who is calling, established by SigV4 before any handler runs.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    pub principal_arn: String,
    pub access_key_id: String,
    pub admin: bool,
}

/// Per-request context handed to operation handlers. `now` is taken once at
/// the edge so a handler never reads the clock itself.
#[derive(Clone)]
pub struct Cx {
    pub state: Arc<AppState>,
    pub caller: Arc<Caller>,
    pub now: Timestamp,
}

impl Cx {
    pub fn scope(&self) -> &Scope {
        &self.caller.scope
    }

    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    /// What the domain's launch path needs from this request: the
    /// caller's tenant and the request's clock, no caller identity.
    pub fn launch_env(&self) -> LaunchEnv<'_> {
        LaunchEnv {
            store: self.store(),
            scope: self.scope(),
            now: self.now,
            heartbeats: &self.state.heartbeats,
        }
    }

    pub fn logs(&self) -> &dyn LogStore {
        self.state.logs.as_ref()
    }
}
