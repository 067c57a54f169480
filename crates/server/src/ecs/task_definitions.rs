//! Task definitions: Register, Describe, List, ListFamilies, Deregister,
//! Delete.

use crate::db::{self, Versioned};
use crate::domain::task_definitions::{resolve, status_of, TaskDefRecord};
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use serde::{Deserialize, Serialize};
use stevedore_api::ecs::*;
use stevedore_model::arn::{task_definition_ref, Scope, TaskDefRef};
use stevedore_model::{keys, tags as tag_rules, taskdef};

/// Per-family bookkeeping: revisions are never reused, even after
/// deletion, and ListTaskDefinitionFamilies filters on `active_revisions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyRecord {
    pub latest_revision: i32,
    pub active_revisions: i32,
}

fn not_found() -> ApiError {
    ApiError::client("Unable to describe task definition.")
}

pub async fn register(
    cx: Cx,
    mut req: RegisterTaskDefinitionRequest,
) -> ApiResult<RegisterTaskDefinitionResponse> {
    // Deployment tools that copy a definition send "" for a role it never
    // had; ECS reads that as no role and does not echo it back.
    for role in [&mut req.task_role_arn, &mut req.execution_role_arn] {
        if role.as_deref() == Some("") {
            *role = None;
        }
    }
    if req.trusted_execution_configuration.is_some() {
        return Err(ApiError::unsupported(
            "trustedExecutionConfiguration is not supported: Stevedore runs containers without trusted execution environments. Leave trustedExecutionConfiguration out.",
        ));
    }
    let sizes = taskdef::validate(&req)?;
    let tags = tag_rules::validate(req.tags.as_deref().unwrap_or_default())?;
    let scope = cx.scope().clone();
    let family = req.family.clone().unwrap_or_default();
    let family_key = keys::family(&scope, &family);
    for _ in 0..db::MAX_CAS_RETRIES {
        let fam: Option<Versioned<FamilyRecord>> = db::get(cx.store(), &family_key)?;
        let (mut rec, fam_rev) = match fam {
            Some(v) => (v.value, v.mod_revision),
            None => (FamilyRecord::default(), 0),
        };
        let revision = rec.latest_revision + 1;
        let definition = taskdef::build(
            &req,
            &sizes,
            &scope,
            revision,
            cx.now,
            &cx.caller.principal_arn,
        );
        let td_key = keys::task_definition(&scope, &family, revision);
        rec.latest_revision = revision;
        rec.active_revisions += 1;
        let record = TaskDefRecord {
            definition,
            tags: tags.clone(),
        };
        let ok = db::commit(
            cx.store(),
            vec![
                db::unchanged(&family_key, fam_rev),
                db::unchanged(&td_key, 0),
            ],
            vec![db::put(&family_key, &rec), db::put(&td_key, &record)],
        )
        .await?;
        if ok {
            return Ok(RegisterTaskDefinitionResponse {
                task_definition: Some(record.definition),
                // ECS leaves `tags` out of the answer when none were given.
                tags: (!record.tags.is_empty()).then_some(record.tags),
            });
        }
    }
    Err(db::contention())
}

pub async fn describe(
    cx: Cx,
    req: DescribeTaskDefinitionRequest,
) -> ApiResult<DescribeTaskDefinitionResponse> {
    let given = req.task_definition.as_deref().unwrap_or_default();
    let (_, v) = resolve(cx.store(), cx.scope(), given)?.ok_or_else(not_found)?;
    let with_tags = req
        .include
        .as_deref()
        .unwrap_or_default()
        .contains(&TaskDefinitionField::Tags);
    Ok(DescribeTaskDefinitionResponse {
        task_definition: Some(v.value.definition),
        tags: with_tags.then_some(v.value.tags),
    })
}

pub async fn list(
    cx: Cx,
    req: ListTaskDefinitionsRequest,
) -> ApiResult<ListTaskDefinitionsResponse> {
    let limit = db::max_results(req.max_results, 100, 100)?;
    let status = req.status.clone().unwrap_or(TaskDefinitionStatus::Active);
    let reverse = matches!(req.sort, Some(SortOrder::Desc));
    // Despite its name, ECS matches `familyPrefix` as the whole family:
    // `web` lists web:N but not webx:N (a prefix only in ListTaskDefinitionFamilies).
    let prefix = match &req.family_prefix {
        Some(family) => keys::task_definition_family_prefix(cx.scope(), family),
        None => keys::task_definitions_prefix(cx.scope()),
    };
    let page = db::page(
        cx.store(),
        &prefix,
        req.next_token.as_deref(),
        limit,
        reverse,
        |kv| {
            let r: TaskDefRecord = db::decode(kv)?;
            Ok(status_of(&r.definition) == status)
        },
    )?;
    let mut arns = Vec::with_capacity(page.kvs.len());
    for kv in &page.kvs {
        let r: TaskDefRecord = db::decode(kv)?;
        arns.push(r.definition.task_definition_arn.unwrap_or_default());
    }
    Ok(ListTaskDefinitionsResponse {
        task_definition_arns: Some(arns),
        next_token: page.next_token,
    })
}

pub async fn list_families(
    cx: Cx,
    req: ListTaskDefinitionFamiliesRequest,
) -> ApiResult<ListTaskDefinitionFamiliesResponse> {
    let limit = db::max_results(req.max_results, 100, 100)?;
    let status = req
        .status
        .clone()
        .unwrap_or(TaskDefinitionFamilyStatus::All);
    let base = keys::families_prefix(cx.scope());
    let mut prefix = base.clone();
    if let Some(p) = &req.family_prefix {
        prefix.push_str(p);
    }
    let page = db::page(
        cx.store(),
        &prefix,
        req.next_token.as_deref(),
        limit,
        false,
        |kv| {
            let f: FamilyRecord = db::decode(kv)?;
            Ok(match status {
                TaskDefinitionFamilyStatus::Active => f.active_revisions > 0,
                TaskDefinitionFamilyStatus::Inactive => f.active_revisions == 0,
                _ => true,
            })
        },
    )?;
    Ok(ListTaskDefinitionFamiliesResponse {
        families: Some(
            page.kvs
                .iter()
                .map(|kv| keys::suffix(&kv.key, &base).to_string())
                .collect(),
        ),
        next_token: page.next_token,
    })
}

fn require_revision(scope: &Scope, given: &str) -> ApiResult<()> {
    match task_definition_ref(scope, given) {
        // ECS's own fixed answer for a bare family here.
        TaskDefRef::Family(_) => Err(ApiError::client("Revision is missing.")),
        _ => Ok(()),
    }
}

pub async fn deregister(
    cx: Cx,
    req: DeregisterTaskDefinitionRequest,
) -> ApiResult<DeregisterTaskDefinitionResponse> {
    let given = req.task_definition.as_deref().unwrap_or_default();
    let scope = cx.scope().clone();
    require_revision(&scope, given)?;
    for _ in 0..db::MAX_CAS_RETRIES {
        let (key, v) = resolve(cx.store(), &scope, given)?.ok_or_else(not_found)?;
        let mut rec = v.value;
        if status_of(&rec.definition) != TaskDefinitionStatus::Active {
            return Ok(DeregisterTaskDefinitionResponse {
                task_definition: Some(rec.definition),
            });
        }
        let family = rec.definition.family.clone().unwrap_or_default();
        let family_key = keys::family(&scope, &family);
        let fam: Versioned<FamilyRecord> = db::get(cx.store(), &family_key)?
            .ok_or_else(|| ApiError::server(format!("family record {family} is missing")))?;
        let mut f = fam.value;
        f.active_revisions = (f.active_revisions - 1).max(0);
        rec.definition.status = Some(TaskDefinitionStatus::Inactive);
        rec.definition.deregistered_at = Some(cx.now);
        let ok = db::commit(
            cx.store(),
            vec![
                db::unchanged(&key, v.mod_revision),
                db::unchanged(&family_key, fam.mod_revision),
            ],
            vec![db::put(&key, &rec), db::put(&family_key, &f)],
        )
        .await?;
        if ok {
            return Ok(DeregisterTaskDefinitionResponse {
                task_definition: Some(rec.definition),
            });
        }
    }
    Err(db::contention())
}

pub async fn delete(
    cx: Cx,
    req: DeleteTaskDefinitionsRequest,
) -> ApiResult<DeleteTaskDefinitionsResponse> {
    let given = req.task_definitions.clone().unwrap_or_default();
    if given.is_empty() || given.len() > 10 {
        return Err(ApiError::invalid(format!(
            "taskDefinitions must name 1 to 10 task definitions; {} were given.",
            given.len()
        )));
    }
    let scope = cx.scope().clone();
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    'each: for g in &given {
        let fail = |reason: &str, detail: Option<String>| Failure {
            arn: Some(g.clone()),
            reason: Some(reason.to_string()),
            detail,
        };
        if let TaskDefRef::Family(_) | TaskDefRef::Malformed = task_definition_ref(&scope, g) {
            failures.push(fail(
                "INVALID_PARAMETER",
                Some("Give family:revision or the full task definition ARN.".into()),
            ));
            continue;
        }
        for _ in 0..db::MAX_CAS_RETRIES {
            let Some((key, v)) = resolve(cx.store(), &scope, g)? else {
                failures.push(fail("MISSING", None));
                continue 'each;
            };
            let mut rec = v.value;
            match status_of(&rec.definition) {
                TaskDefinitionStatus::Active => {
                    failures.push(fail(
                        "TASK_DEFINITION_ACTIVE",
                        Some(
                            "The task definition is ACTIVE. Deregister it before deleting it."
                                .into(),
                        ),
                    ));
                    continue 'each;
                }
                TaskDefinitionStatus::DeleteInProgress => {
                    deleted.push(rec.definition);
                    continue 'each;
                }
                _ => {}
            }
            rec.definition.status = Some(TaskDefinitionStatus::DeleteInProgress);
            rec.definition.delete_requested_at = Some(cx.now);
            if db::commit(
                cx.store(),
                vec![db::unchanged(&key, v.mod_revision)],
                vec![db::put(&key, &rec)],
            )
            .await?
            {
                deleted.push(rec.definition);
                continue 'each;
            }
        }
        return Err(db::contention());
    }
    Ok(DeleteTaskDefinitionsResponse {
        task_definitions: Some(deleted),
        failures: Some(failures),
    })
}
