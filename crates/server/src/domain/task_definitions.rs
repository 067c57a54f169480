//! Task definition records and reference resolution, shared by
//! RegisterTaskDefinition and friends, launches, the agent protocol and the
//! controllers.

use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use stevedore_api::ecs::{Tag, TaskDefinition, TaskDefinitionStatus};
use stevedore_model::arn::{task_definition_ref, Scope, TaskDefRef};
use stevedore_model::keys;
use stevedore_store::Store;

/// A stored revision: the definition as DescribeTaskDefinition shows it,
/// and its tags (shown only with `include: ["TAGS"]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefRecord {
    pub definition: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

pub fn status_of(td: &TaskDefinition) -> TaskDefinitionStatus {
    td.status.clone().unwrap_or(TaskDefinitionStatus::Active)
}

/// Finds the revision a reference names. A bare family means its latest
/// ACTIVE revision.
pub fn resolve(
    store: &dyn Store,
    scope: &Scope,
    given: &str,
) -> ApiResult<Option<(String, Versioned<TaskDefRecord>)>> {
    match task_definition_ref(scope, given) {
        TaskDefRef::Foreign => Ok(None),
        TaskDefRef::Malformed => Err(ApiError::client(format!(
            "Invalid task definition '{given}': give a family, family:revision (revision > 0), or a task definition ARN."
        ))),
        TaskDefRef::Revision(family, rev) => {
            let key = keys::task_definition(scope, &family, rev);
            Ok(db::get(store, &key)?.map(|v| (key, v)))
        }
        TaskDefRef::Family(family) => {
            let prefix = keys::task_definition_family_prefix(scope, &family);
            let page = db::page(store, &prefix, None, 1, true, |kv| {
                let r: TaskDefRecord = db::decode(kv)?;
                Ok(status_of(&r.definition) == TaskDefinitionStatus::Active)
            })?;
            match page.kvs.into_iter().next() {
                None => Ok(None),
                Some(kv) => Ok(Some((
                    kv.key.clone(),
                    Versioned {
                        value: db::decode(&kv)?,
                        mod_revision: kv.mod_revision,
                    },
                ))),
            }
        }
    }
}
