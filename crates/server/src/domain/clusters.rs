//! Cluster reads every cluster-scoped operation starts with.

use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use stevedore_api::ecs::Cluster;
use stevedore_model::arn::{cluster_ref, ClusterRef, Scope};
use stevedore_model::keys;
use stevedore_store::Store;

/// A cluster's `status` is a plain string in the ECS model (no enum), so
/// its values are named here once.
pub const ACTIVE: &str = "ACTIVE";
pub const INACTIVE: &str = "INACTIVE";

pub fn is_active(c: &Cluster) -> bool {
    c.status.as_deref() == Some(ACTIVE)
}

/// The cluster a `cluster` parameter names (default: `default`), in any
/// status; `None` if it does not exist or belongs to another tenant.
pub fn load_any(
    store: &dyn Store,
    scope: &Scope,
    given: Option<&str>,
) -> ApiResult<Option<Versioned<Cluster>>> {
    match cluster_ref(scope, given) {
        ClusterRef::Foreign => Ok(None),
        ClusterRef::Name(name) => db::get(store, &keys::cluster(scope, &name)),
    }
}

/// Loads an ACTIVE cluster named by a `cluster` parameter, or answers as
/// ECS does for missing and inactive clusters.
pub fn load_active(
    store: &dyn Store,
    scope: &Scope,
    given: Option<&str>,
) -> ApiResult<Versioned<Cluster>> {
    let v = load_any(store, scope, given)?.ok_or_else(ApiError::cluster_not_found)?;
    if !is_active(&v.value) {
        return Err(ApiError::cluster_inactive());
    }
    Ok(v)
}
