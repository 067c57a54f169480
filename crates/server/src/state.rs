use crate::config::ServerConfig;
use crate::heartbeat::Heartbeats;
use crate::identity::KeyCache;
use std::sync::Arc;
use stevedore_api::Timestamp;
use stevedore_auth::Verifier;
use stevedore_model::arn::Scope;
use stevedore_store::Store;

/// Everything a request handler may touch.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub verifier: Verifier,
    pub config: ServerConfig,
    pub keys: KeyCache,
    pub heartbeats: Heartbeats,
    /// The endpoint URL agents and DiscoverPollEndpoint report.
    pub endpoint: String,
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
    /// Launches may use a task definition deregistered after it was
    /// chosen: the service controller running a deployment's revision, and
    /// UpdateService keeping the current one, as ECS allows. RunTask,
    /// StartTask and a newly named revision need an ACTIVE one.
    pub allow_inactive_task_definition: bool,
}

impl Cx {
    pub fn scope(&self) -> &Scope {
        &self.caller.scope
    }

    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }
}
