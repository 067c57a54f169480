//! Log groups: CreateLogGroup, DeleteLogGroup, DescribeLogGroups,
//! PutRetentionPolicy, DeleteRetentionPolicy.

use super::records::{
    blocking, load_group, GroupRecord, RetentionIndex, StreamRecord, RETENTION_DAYS,
};
use super::{already_exists, check_group_name, group_not_found, Empty};
use crate::db::{self, commit, contention, put, unchanged, MAX_CAS_RETRIES};
use crate::error::ApiResult;
use crate::state::Cx;
use stevedore_api::logs::{
    CreateLogGroupRequest, DeleteLogGroupRequest, DeleteRetentionPolicyRequest,
    DescribeLogGroupsRequest, DescribeLogGroupsResponse, LogGroup, LogGroupClass,
    PutRetentionPolicyRequest,
};
use stevedore_model::keys;
use stevedore_store::{Compare, Op};

pub async fn create_log_group(cx: Cx, req: CreateLogGroupRequest) -> ApiResult<Empty> {
    let name = req.log_group_name.unwrap_or_default();
    check_group_name(&name)?;
    if req.kms_key_id.is_some() {
        return Err(super::invalid(
            "kmsKeyId is not supported by Stevedore: log data is stored unencrypted in the server's store.",
        ));
    }
    if req.deletion_protection_enabled == Some(true) {
        return Err(super::invalid(
            "deletionProtectionEnabled is not supported by Stevedore.",
        ));
    }
    match req.log_group_class {
        None | Some(LogGroupClass::Standard) => {}
        Some(other) => {
            return Err(super::invalid(format!(
                "logGroupClass {other:?} is not supported by Stevedore; only STANDARD is."
            )))
        }
    }
    let scope = cx.scope();
    let key = keys::log_group(scope, &name);
    let record = GroupRecord {
        name: name.clone(),
        creation_time: cx.now.as_millis(),
        retention_in_days: None,
        tags: req.tags.unwrap_or_default(),
    };
    let ok = commit(
        cx.store(),
        vec![Compare::absent(key.clone())],
        vec![put(key, &record)],
    )
    .await?;
    if ok {
        Ok(Empty {})
    } else {
        Err(already_exists("The specified log group already exists"))
    }
}

pub async fn delete_log_group(cx: Cx, req: DeleteLogGroupRequest) -> ApiResult<Empty> {
    let name = req.log_group_name.unwrap_or_default();
    let scope = cx.scope();
    for _ in 0..MAX_CAS_RETRIES {
        let Some(group) = load_group(cx.store(), scope, &name)? else {
            return Err(group_not_found());
        };
        let key = keys::log_group(scope, &name);
        let ops = vec![
            Op::Delete { key: key.clone() },
            Op::DeletePrefix {
                prefix: keys::log_streams_prefix(scope, &name),
            },
            Op::Delete {
                key: keys::log_retention_index(scope, &name),
            },
        ];
        if commit(cx.store(), vec![unchanged(key, group.mod_revision)], ops).await? {
            // Every stream's log-store name starts with its KV key, so the
            // group's stream prefix covers them all (see delete_log_stream).
            let prefix = keys::log_streams_prefix(scope, &name);
            blocking(&cx.state.logs, move |logs| logs.delete_prefix(&prefix)).await?;
            return Ok(Empty {});
        }
    }
    Err(contention())
}

pub async fn describe_log_groups(
    cx: Cx,
    req: DescribeLogGroupsRequest,
) -> ApiResult<DescribeLogGroupsResponse> {
    if req
        .account_identifiers
        .as_ref()
        .is_some_and(|a| !a.is_empty())
        || req.include_linked_accounts == Some(true)
    {
        return Err(super::invalid(
            "Cross-account observability (accountIdentifiers, includeLinkedAccounts) is not supported by Stevedore.",
        ));
    }
    if req.log_group_name_prefix.is_some() && req.log_group_name_pattern.is_some() {
        return Err(super::invalid(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
        ));
    }
    if req.log_group_identifiers.is_some()
        && (req.log_group_name_prefix.is_some() || req.log_group_name_pattern.is_some())
    {
        return Err(super::invalid(
            "logGroupIdentifiers cannot be combined with logGroupNamePrefix or logGroupNamePattern.",
        ));
    }
    let limit = db::max_results(req.limit, 50, 50)?;
    let scope = cx.scope().clone();
    let groups_prefix = keys::log_groups_prefix(&scope);
    let prefix = format!(
        "{groups_prefix}{}",
        req.log_group_name_prefix.as_deref().unwrap_or("")
    );
    let pattern = req.log_group_name_pattern.map(|p| p.to_lowercase());
    let wanted: Option<Vec<String>> = req.log_group_identifiers.map(|ids| {
        ids.into_iter()
            .map(|id| {
                super::group_name(&cx, None, Some(id)).unwrap_or_else(|_| "\u{0}".to_string())
            })
            .collect()
    });
    let class_ok = matches!(req.log_group_class, None | Some(LogGroupClass::Standard));
    let page = db::page(
        cx.store(),
        &prefix,
        req.next_token.as_deref(),
        limit,
        false,
        |kv| {
            let name = keys::suffix(&kv.key, &groups_prefix);
            Ok(class_ok
                && pattern
                    .as_ref()
                    .is_none_or(|p| name.to_lowercase().contains(p.as_str()))
                && wanted.as_ref().is_none_or(|w| w.iter().any(|n| n == name)))
        },
    )?;
    let mut out = Vec::with_capacity(page.kvs.len());
    for kv in &page.kvs {
        let g: GroupRecord = db::decode(kv)?;
        let mut stored = 0i64;
        for s in db::all_versioned::<StreamRecord>(
            cx.store(),
            &keys::log_streams_prefix(&scope, &g.name),
        )? {
            stored += cx
                .logs()
                .stats(&s.value.log_name(&scope, &g.name))?
                .stored_bytes;
        }
        let arn = g.arn(&scope);
        out.push(LogGroup {
            arn: Some(format!("{arn}:*")),
            log_group_arn: Some(arn),
            creation_time: Some(g.creation_time),
            log_group_name: Some(g.name.clone()),
            metric_filter_count: Some(0),
            retention_in_days: g.retention_in_days,
            stored_bytes: Some(stored),
            log_group_class: Some(LogGroupClass::Standard),
            deletion_protection_enabled: Some(false),
            ..Default::default()
        });
    }
    Ok(DescribeLogGroupsResponse {
        log_groups: Some(out),
        next_token: page.next_token,
    })
}

pub async fn put_retention_policy(cx: Cx, req: PutRetentionPolicyRequest) -> ApiResult<Empty> {
    let days = req.retention_in_days.unwrap_or_default();
    if !RETENTION_DAYS.contains(&days) {
        return Err(super::invalid(format!(
            "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            RETENTION_DAYS
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    set_retention(cx, req.log_group_name.unwrap_or_default(), Some(days)).await
}

pub async fn delete_retention_policy(
    cx: Cx,
    req: DeleteRetentionPolicyRequest,
) -> ApiResult<Empty> {
    set_retention(cx, req.log_group_name.unwrap_or_default(), None).await
}

async fn set_retention(cx: Cx, name: String, days: Option<i32>) -> ApiResult<Empty> {
    let scope = cx.scope();
    for _ in 0..MAX_CAS_RETRIES {
        let Some(mut group) = load_group(cx.store(), scope, &name)? else {
            return Err(group_not_found());
        };
        let key = keys::log_group(scope, &name);
        let rev = group.mod_revision;
        group.value.retention_in_days = days;
        let index_key = keys::log_retention_index(scope, &name);
        let index_op = match days {
            Some(days) => put(
                index_key,
                &RetentionIndex {
                    account: scope.account.clone(),
                    region: scope.region.clone(),
                    group: name.clone(),
                    days,
                },
            ),
            None => Op::Delete { key: index_key },
        };
        let ops = vec![put(key.clone(), &group.value), index_op];
        if commit(cx.store(), vec![unchanged(key, rev)], ops).await? {
            return Ok(Empty {});
        }
    }
    Err(contention())
}
