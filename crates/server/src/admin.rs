//! Stevedore's own administrative operations (not part of ECS): managing
//! access keys, and reading the controllers' debug counters. Same framing and SigV4 as ECS, under its own target prefix,
//! and only for admin keys. `stevedore keys ...` is the client.

use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::identity::{self, AccessKeyRecord};
use crate::state::Cx;
use serde::{Deserialize, Serialize};
use stevedore_model::keys;

pub const TARGET_PREFIX: &str = "StevedoreAdmin_20261122";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateAccessKeyRequest {
    account_id: String,
    user_name: Option<String>,
    #[serde(default)]
    admin: bool,
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeleteAccessKeyRequest {
    access_key_id: String,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::serialization(e.to_string()))
}

fn to_json<T: Serialize>(v: &T) -> ApiResult<Vec<u8>> {
    Ok(db::encode(v))
}

pub async fn dispatch(cx: Cx, op: &str, body: &[u8]) -> ApiResult<Vec<u8>> {
    if !cx.caller.admin {
        return Err(ApiError::access_denied(
            "Only an admin access key may use the admin API.",
        ));
    }
    let store = cx.store();
    match op {
        "CreateAccessKey" => {
            let req: CreateAccessKeyRequest = parse(body)?;
            if req.account_id.len() != 12 || !req.account_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::invalid(format!(
                    "accountId must be 12 digits; got '{}'.",
                    req.account_id
                )));
            }
            if let Some(u) = &req.user_name {
                if u.is_empty()
                    || u.len() > 64
                    || !u
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
                {
                    return Err(ApiError::invalid(format!(
                        "userName '{u}' must be 1-64 letters, digits or +=,.@_-."
                    )));
                }
            }
            let rec = identity::new_key(&req.account_id, req.user_name, req.admin, cx.now);
            identity::store_key(store, &rec).await?;
            to_json(&KeyView::of(&rec, true))
        }
        "ListAccessKeys" => {
            let _: serde_json::Value = parse(body)?;
            let keys: Vec<KeyView> = identity::all_keys(store)?
                .iter()
                .map(|k| KeyView::of(k, false))
                .collect();
            to_json(&serde_json::json!({ "accessKeys": keys }))
        }
        "DeleteAccessKey" => {
            let req: DeleteAccessKeyRequest = parse(body)?;
            if req.access_key_id == cx.caller.access_key_id {
                return Err(ApiError::invalid(
                    "A key cannot delete itself; use another admin key.",
                ));
            }
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
            to_json(&serde_json::json!({}))
        }
        "GetDebugCounters" => {
            let _: serde_json::Value = parse(body)?;
            use std::sync::atomic::Ordering::Relaxed;
            let c = &cx.state.counters;
            let stopped_index = store.count_prefix(keys::stopped_tasks_prefix())?;
            to_json(&serde_json::json!({
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
        _ => Err(ApiError::unknown_operation(format!(
            "Unknown operation {TARGET_PREFIX}.{op}."
        ))),
    }
}
