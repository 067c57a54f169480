//! Stevedore's own administrative operations (not part of ECS): managing
//! access keys, and reading the controllers' debug counters. Same framing and SigV4 as ECS, under its own target prefix,
//! and only for admin keys. `stevedore keys ...` is the client.

use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::identity::{self, AccessKeyRecord};
use crate::operation::{call, Wire};
use crate::state::Cx;
use serde::{Deserialize, Serialize};
use stevedore_api::{Validate, ValidationError};
use stevedore_model::keys;

pub const TARGET_PREFIX: &str = "StevedoreAdmin_20261122";

/// The admin API's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateAccessKey,
    ListAccessKeys,
    DeleteAccessKey,
    GetDebugCounters,
}

impl Operation {
    pub fn from_name(name: &str) -> Option<Operation> {
        match name {
            "CreateAccessKey" => Some(Operation::CreateAccessKey),
            "ListAccessKeys" => Some(Operation::ListAccessKeys),
            "DeleteAccessKey" => Some(Operation::DeleteAccessKey),
            "GetDebugCounters" => Some(Operation::GetDebugCounters),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateAccessKeyRequest {
    account_id: String,
    user_name: Option<String>,
    #[serde(default)]
    admin: bool,
}

fn invalid(field: &str, message: String) -> ValidationError {
    ValidationError {
        field: field.to_string(),
        message,
    }
}

impl Validate for CreateAccessKeyRequest {
    fn validate(&self, _path: &str) -> Result<(), ValidationError> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "accountId",
                format!("accountId must be 12 digits; got '{}'.", self.account_id),
            ));
        }
        if let Some(u) = &self.user_name {
            if u.is_empty()
                || u.len() > 64
                || !u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
            {
                return Err(invalid(
                    "userName",
                    format!("userName '{u}' must be 1-64 letters, digits or +=,.@_-."),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyView {
    access_key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_access_key: Option<String>,
    account_id: String,
    principal_arn: String,
    admin: bool,
}

impl KeyView {
    fn of(rec: &AccessKeyRecord, with_secret: bool) -> Self {
        KeyView {
            access_key_id: rec.access_key_id.clone(),
            secret_access_key: with_secret.then(|| rec.secret_access_key.clone()),
            account_id: rec.account_id.clone(),
            principal_arn: rec.principal_arn(),
            admin: rec.admin,
        }
    }
}

/// ListAccessKeys and GetDebugCounters take no input; anything given is
/// refused by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoInput {}

impl Validate for NoInput {
    fn validate(&self, _path: &str) -> Result<(), ValidationError> {
        Ok(())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListAccessKeysResponse {
    access_keys: Vec<KeyView>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeleteAccessKeyRequest {
    access_key_id: String,
}

impl Validate for DeleteAccessKeyRequest {
    fn validate(&self, _path: &str) -> Result<(), ValidationError> {
        if self.access_key_id.is_empty() {
            return Err(invalid(
                "accessKeyId",
                "accessKeyId must name an access key.".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct Empty {}

pub(crate) async fn dispatch(cx: Cx, op: Operation, wire: Wire<'_>) -> ApiResult<Vec<u8>> {
    if !cx.caller.admin {
        return Err(ApiError::access_denied(
            "Only an admin access key may use the admin API.",
        ));
    }
    match op {
        Operation::CreateAccessKey => call(cx, wire, create_access_key).await,
        Operation::ListAccessKeys => call(cx, wire, list_access_keys).await,
        Operation::DeleteAccessKey => call(cx, wire, delete_access_key).await,
        Operation::GetDebugCounters => call(cx, wire, get_debug_counters).await,
    }
}

async fn create_access_key(cx: Cx, req: CreateAccessKeyRequest) -> ApiResult<KeyView> {
    let rec = identity::new_key(&req.account_id, req.user_name, req.admin, cx.now);
    identity::store_key(cx.store(), &rec).await?;
    Ok(KeyView::of(&rec, true))
}

async fn list_access_keys(cx: Cx, _req: NoInput) -> ApiResult<ListAccessKeysResponse> {
    let access_keys = identity::all_keys(cx.store())?
        .iter()
        .map(|k| KeyView::of(k, false))
        .collect();
    Ok(ListAccessKeysResponse { access_keys })
}

async fn delete_access_key(cx: Cx, req: DeleteAccessKeyRequest) -> ApiResult<Empty> {
    if req.access_key_id == cx.caller.access_key_id {
        return Err(ApiError::invalid(
            "A key cannot delete itself; use another admin key.",
        ));
    }
    let store = cx.store();
    let key = keys::access_key(&req.access_key_id);
    let Some(kv) = store.get(&key)? else {
        return Err(ApiError::resource_not_found(format!(
            "Access key {} does not exist.",
            req.access_key_id
        )));
    };
    if !db::commit(
        store,
        vec![db::unchanged(&key, kv.mod_revision)],
        vec![stevedore_store::Op::Delete { key }],
    )
    .await?
    {
        return Err(db::contention());
    }
    Ok(Empty {})
}

async fn get_debug_counters(cx: Cx, _req: NoInput) -> ApiResult<serde_json::Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let store = cx.store();
    let c = &cx.state.counters;
    let stopped_index = store.count_prefix(keys::stopped_tasks_prefix())?;
    Ok(serde_json::json!({
        "serviceController": {
            "passes": c.service_passes.load(Relaxed),
            "taskRecordsReadLastPass": c.service_task_records_read.load(Relaxed),
        },
        "stoppedTaskCollector": {
            "passes": c.gc_passes.load(Relaxed),
            "tasksDeleted": c.gc_tasks_deleted.load(Relaxed),
        },
        "store": {
            "taskRecords": crate::history::count_task_records(store)?,
            "stoppedTaskIndexEntries": stopped_index,
        },
    }))
}
