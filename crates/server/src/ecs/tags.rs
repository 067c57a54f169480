//! TagResource, UntagResource, ListTagsForResource for the resource types
//! this build has: clusters, task definitions and services.

use super::services::record::ServiceRecord;
use crate::db;
use crate::domain::clusters::is_active;
use crate::domain::task_definitions::TaskDefRecord;
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use stevedore_api::ecs::*;
use stevedore_model::arn::Arn;
use stevedore_model::{keys, tags as tag_rules};

enum Target {
    Cluster(String),
    TaskDefinition(String),
    Service(String),
}

fn target(cx: &Cx, arn: &str) -> ApiResult<Target> {
    let parsed = Arn::parse(arn).ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid resourceArn '{arn}': expected arn:aws:ecs:REGION:ACCOUNT:TYPE/NAME."
        ))
    })?;
    if !parsed.in_scope(cx.scope()) {
        return Err(ApiError::resource_not_found(format!(
            "The resource {arn} was not found."
        )));
    }
    match parsed.resource_type.as_str() {
        "cluster" => Ok(Target::Cluster(keys::cluster(cx.scope(), &parsed.resource))),
        "task-definition" => {
            let (family, rev) = parsed
                .resource
                .rsplit_once(':')
                .and_then(|(f, r)| r.parse::<i32>().ok().map(|r| (f.to_string(), r)))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "Invalid resourceArn '{arn}': a task definition ARN must end in family:revision."
                    ))
                })?;
            Ok(Target::TaskDefinition(keys::task_definition(cx.scope(), &family, rev)))
        }
        "service" => match parsed.resource.split_once('/') {
            Some((cluster, name)) if !cluster.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Target::Service(keys::service(cx.scope(), cluster, name)))
            }
            _ => Err(ApiError::invalid(format!(
                "Invalid resourceArn '{arn}': a service ARN must be arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME."
            ))),
        },
        other => Err(ApiError::invalid(format!(
            "Tagging '{other}' resources is not supported yet; clusters, task definitions and services can be tagged."
        ))),
    }
}

fn missing(arn: &str) -> ApiError {
    ApiError::resource_not_found(format!("The resource {arn} was not found."))
}

/// Applies `f` to the tags of the resource, with compare-and-set.
async fn edit<F>(cx: &Cx, arn: &str, f: F) -> ApiResult<()>
where
    F: Fn(&[Tag]) -> ApiResult<Vec<Tag>>,
{
    let t = target(cx, arn)?;
    for _ in 0..db::MAX_CAS_RETRIES {
        let ok = match &t {
            Target::Cluster(key) => {
                let v = db::get::<Cluster>(cx.store(), key)?.ok_or_else(|| missing(arn))?;
                if !is_active(&v.value) {
                    return Err(ApiError::cluster_inactive());
                }
                let mut c = v.value;
                c.tags = Some(f(c.tags.as_deref().unwrap_or_default())?);
                db::commit(
                    cx.store(),
                    vec![db::unchanged(key, v.mod_revision)],
                    vec![db::put(key, &c)],
                )
                .await?
            }
            Target::TaskDefinition(key) => {
                let v = db::get::<TaskDefRecord>(cx.store(), key)?.ok_or_else(|| missing(arn))?;
                let mut r = v.value;
                r.tags = f(&r.tags)?;
                db::commit(
                    cx.store(),
                    vec![db::unchanged(key, v.mod_revision)],
                    vec![db::put(key, &r)],
                )
                .await?
            }
            Target::Service(key) => {
                let v = db::get::<ServiceRecord>(cx.store(), key)?.ok_or_else(|| missing(arn))?;
                if v.value.service.status.as_deref() == Some("INACTIVE") {
                    return Err(missing(arn));
                }
                let mut r = v.value;
                r.service.tags = Some(f(r.service.tags.as_deref().unwrap_or_default())?);
                db::commit(
                    cx.store(),
                    vec![db::unchanged(key, v.mod_revision)],
                    vec![db::put(key, &r)],
                )
                .await?
            }
        };
        if ok {
            return Ok(());
        }
    }
    Err(db::contention())
}

pub async fn tag_resource(cx: Cx, req: TagResourceRequest) -> ApiResult<TagResourceResponse> {
    let arn = req.resource_arn.clone().unwrap_or_default();
    let new = req.tags.clone().unwrap_or_default();
    edit(&cx, &arn, |old| Ok(tag_rules::merge(old, &new)?)).await?;
    Ok(TagResourceResponse {})
}

pub async fn untag_resource(cx: Cx, req: UntagResourceRequest) -> ApiResult<UntagResourceResponse> {
    let arn = req.resource_arn.clone().unwrap_or_default();
    let remove = req.tag_keys.clone().unwrap_or_default();
    edit(&cx, &arn, |old| Ok(tag_rules::remove(old, &remove))).await?;
    Ok(UntagResourceResponse {})
}

pub async fn list_tags_for_resource(
    cx: Cx,
    req: ListTagsForResourceRequest,
) -> ApiResult<ListTagsForResourceResponse> {
    let arn = req.resource_arn.clone().unwrap_or_default();
    let tags = match target(&cx, &arn)? {
        Target::Cluster(key) => db::get::<Cluster>(cx.store(), &key)?
            .ok_or_else(|| missing(&arn))?
            .value
            .tags
            .unwrap_or_default(),
        Target::TaskDefinition(key) => {
            db::get::<TaskDefRecord>(cx.store(), &key)?
                .ok_or_else(|| missing(&arn))?
                .value
                .tags
        }
        Target::Service(key) => db::get::<ServiceRecord>(cx.store(), &key)?
            .ok_or_else(|| missing(&arn))?
            .value
            .service
            .tags
            .unwrap_or_default(),
    };
    Ok(ListTagsForResourceResponse { tags: Some(tags) })
}
