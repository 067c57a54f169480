//! The domain layer: what the ECS operations and the controllers share.
//! Reads of clusters, container instances, tasks and task definitions;
//! placing and committing tasks (`launch`); asking tasks to stop (`stop`).
//!
//! Nothing here knows who is calling: no caller identity or request context in this
//! layer. Callers pass the store, the tenant's scope, `now` and whatever
//! configuration a function needs, so a controller uses the same code as a
//! request without pretending to be one. Authorisation stays in the
//! handlers. Handler modules in `ecs/` import this layer, never each
//! other's launch or placement code.

pub mod clusters;
pub mod instances;
pub mod launch;
pub mod placement;
pub mod stop;
pub mod task_definitions;
pub mod tasks;
