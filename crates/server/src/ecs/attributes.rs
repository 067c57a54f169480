//! Custom attributes on container instances (PutAttributes,
//! DeleteAttributes, ListAttributes) and UpdateContainerInstancesState.
//! Attributes live on the instance record, so placement and the
//! ListContainerInstances filter see a change as soon as it is committed.

use super::instances::view;
use crate::db;
use crate::domain::clusters::load_active;
use crate::domain::instances::{all_instances, load_instance, InstanceRecord};
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use stevedore_api::ecs::*;

/// ECS allows 10 custom attributes per resource.
const MAX_CUSTOM_ATTRIBUTES: usize = 10;

fn is_agent_attribute(name: &str) -> bool {
    name.starts_with("ecs.") || name.starts_with("com.amazonaws.ecs.")
}

fn validate_attribute(a: &Attribute) -> ApiResult<()> {
    let name = a.name.as_deref().unwrap_or("");
    let ok_name = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_/\\.".contains(c));
    if !ok_name {
        return Err(ApiError::invalid(format!(
            "Invalid attribute name '{name}': 1 to 128 letters, numbers, hyphens, underscores, slashes, backslashes or periods."
        )));
    }
    if is_agent_attribute(name) {
        return Err(ApiError::invalid(format!(
            "Attribute '{name}' is managed by the agent; custom attributes cannot start with 'ecs.' or 'com.amazonaws.ecs.'."
        )));
    }
    if let Some(v) = &a.value {
        let ok_value = !v.is_empty()
            && v.len() <= 128
            && !v.starts_with(' ')
            && !v.ends_with(' ')
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@/\\: ".contains(c));
        if !ok_value {
            return Err(ApiError::invalid(format!(
                "Invalid value '{v}' for attribute '{name}': 1 to 128 letters, numbers, hyphens, underscores, periods, at signs, slashes, backslashes, colons or spaces, not starting or ending with a space."
            )));
        }
    }
    if let Some(t) = &a.target_type {
        if *t != TargetType::ContainerInstance {
            return Err(ApiError::invalid("targetType must be container-instance."));
        }
    }
    Ok(())
}

/// Groups the attributes by the instance they target.
fn by_target(
    cx: &Cx,
    cluster: &str,
    attrs: &[Attribute],
) -> ApiResult<Vec<(String, Vec<Attribute>)>> {
    let mut out: Vec<(String, Vec<Attribute>)> = Vec::new();
    for a in attrs {
        validate_attribute(a)?;
        let target = a.target_id.as_deref().ok_or_else(|| {
            ApiError::invalid("Every attribute needs a targetId (a container instance ARN or id).")
        })?;
        let (key, _) =
            load_instance(cx.store(), cx.scope(), cluster, target)?.ok_or_else(|| {
                ApiError::new(
                    stevedore_api::ecs::ErrorCode::TargetNotFoundException,
                    format!("Could not find container instance {target} in cluster {cluster}."),
                )
            })?;
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(a.clone()),
            None => out.push((key, vec![a.clone()])),
        }
    }
    Ok(out)
}

fn clean(a: &Attribute) -> Attribute {
    Attribute {
        name: a.name.clone(),
        value: a.value.clone(),
        target_type: None,
        target_id: None,
    }
}

async fn edit(cx: &Cx, cluster: &str, attrs: &[Attribute], put: bool) -> ApiResult<()> {
    if attrs.is_empty() || attrs.len() > 10 {
        return Err(ApiError::invalid(
            "attributes must hold 1 to 10 attributes.",
        ));
    }
    for (key, list) in by_target(cx, cluster, attrs)? {
        let mut done = false;
        for _ in 0..db::MAX_CAS_RETRIES {
            let v = db::get::<InstanceRecord>(cx.store(), &key)?.ok_or_else(|| {
                ApiError::new(
                    stevedore_api::ecs::ErrorCode::TargetNotFoundException,
                    "The container instance was removed.",
                )
            })?;
            let mut rec = v.value;
            let current = rec.instance.attributes.get_or_insert_with(Vec::new);
            for a in &list {
                current.retain(|x| x.name != a.name);
                if put {
                    current.push(clean(a));
                }
            }
            let custom = current
                .iter()
                .filter(|a| !is_agent_attribute(a.name.as_deref().unwrap_or("")))
                .count();
            if custom > MAX_CUSTOM_ATTRIBUTES {
                return Err(ApiError::new(
 stevedore_api::ecs::ErrorCode::AttributeLimitExceededException,
                    format!("A container instance can have at most {MAX_CUSTOM_ATTRIBUTES} custom attributes."),
                ));
            }
            if db::commit(
                cx.store(),
                vec![db::unchanged(&key, v.mod_revision)],
                vec![db::put(&key, &rec)],
            )
            .await?
            {
                done = true;
                break;
            }
        }
        if !done {
            return Err(db::contention());
        }
    }
    Ok(())
}

pub async fn put_attributes(cx: Cx, req: PutAttributesRequest) -> ApiResult<PutAttributesResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let name = cluster.cluster_name.clone().unwrap_or_default();
    let attrs = req.attributes.clone().unwrap_or_default();
    edit(&cx, &name, &attrs, true).await?;
    Ok(PutAttributesResponse {
        attributes: Some(attrs),
    })
}

pub async fn delete_attributes(
    cx: Cx,
    req: DeleteAttributesRequest,
) -> ApiResult<DeleteAttributesResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let name = cluster.cluster_name.clone().unwrap_or_default();
    let attrs = req.attributes.clone().unwrap_or_default();
    edit(&cx, &name, &attrs, false).await?;
    Ok(DeleteAttributesResponse {
        attributes: Some(attrs),
    })
}

pub async fn list_attributes(
    cx: Cx,
    req: ListAttributesRequest,
) -> ApiResult<ListAttributesResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let name = cluster.cluster_name.clone().unwrap_or_default();
    let limit = db::max_results(req.max_results, 100, 100)?;
    if req.target_type.as_ref() != Some(&TargetType::ContainerInstance) {
        return Err(ApiError::invalid("targetType must be container-instance."));
    }
    if req.attribute_value.is_some() && req.attribute_name.is_none() {
        return Err(ApiError::invalid(
            "attributeValue can only be given with attributeName.",
        ));
    }
    // (instance ARN, attribute) pairs in a stable order: instance key order,
    // then attribute name. The token is "instanceArn attributeName".
    let mut all: Vec<(String, Attribute)> = Vec::new();
    for v in all_instances(cx.store(), cx.scope(), &name)? {
        if v.value.instance.status.as_deref() == Some("INACTIVE") {
            continue;
        }
        let arn = v
            .value
            .instance
            .container_instance_arn
            .clone()
            .unwrap_or_default();
        let mut attrs = v.value.instance.attributes.clone().unwrap_or_default();
        attrs.sort_by(|a, b| a.name.cmp(&b.name));
        for a in attrs {
            let name_ok = req
                .attribute_name
                .as_deref()
                .is_none_or(|n| a.name.as_deref() == Some(n));
            let value_ok = req
                .attribute_value
                .as_deref()
                .is_none_or(|v| a.value.as_deref() == Some(v));
            if name_ok && value_ok {
                all.push((arn.clone(), a));
            }
        }
    }
    let start = match req.next_token.as_deref() {
        None => 0,
        Some(t) => {
            let after = db::decode_token(t)?;
            all.iter()
                .position(|(arn, a)| format!("{arn} {}", a.name.as_deref().unwrap_or("")) > after)
                .unwrap_or(all.len())
        }
    };
    let page: Vec<&(String, Attribute)> = all.iter().skip(start).take(limit).collect();
    let next_token = if start + page.len() < all.len() {
        page.last()
            .map(|(arn, a)| db::encode_token(&format!("{arn} {}", a.name.as_deref().unwrap_or(""))))
    } else {
        None
    };
    Ok(ListAttributesResponse {
        attributes: Some(
            page.into_iter()
                .map(|(arn, a)| Attribute {
                    name: a.name.clone(),
                    value: a.value.clone(),
                    target_type: Some(TargetType::ContainerInstance),
                    target_id: Some(arn.clone()),
                })
                .collect(),
        ),
        next_token,
    })
}

pub async fn update_container_instances_state(
    cx: Cx,
    req: UpdateContainerInstancesStateRequest,
) -> ApiResult<UpdateContainerInstancesStateResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let name = cluster.cluster_name.clone().unwrap_or_default();
    let status = match req.status.as_ref().map(|s| s.as_str()) {
        Some("ACTIVE") => "ACTIVE",
        Some("DRAINING") => "DRAINING",
        other => {
            return Err(ApiError::invalid(format!(
                "status must be ACTIVE or DRAINING; got {}.",
                other.unwrap_or("nothing")
            )))
        }
    };
    let given = req.container_instances.clone().unwrap_or_default();
    if given.is_empty() || given.len() > 10 {
        return Err(ApiError::invalid(
            "containerInstances must name 1 to 10 container instances.",
        ));
    }
    let mut out = Vec::new();
    let mut failures = Vec::new();
    'each: for g in &given {
        for _ in 0..db::MAX_CAS_RETRIES {
            let Some((key, v)) = load_instance(cx.store(), cx.scope(), &name, g)? else {
                failures.push(Failure {
                    arn: Some(g.clone()),
                    reason: Some("MISSING".into()),
                    detail: None,
                });
                continue 'each;
            };
            let mut rec = v.value;
            match rec.instance.status.as_deref() {
                Some("ACTIVE") | Some("DRAINING") => {}
                other => {
                    failures.push(Failure {
                        arn: rec.instance.container_instance_arn.clone(),
                        reason: Some("INACTIVE".into()),
                        detail: Some(format!(
                            "The container instance is {}; only ACTIVE and DRAINING instances can change state.",
                            other.unwrap_or("unknown")
                        )),
                    });
                    continue 'each;
                }
            }
            if rec.instance.status.as_deref() != Some(status) {
                rec.instance.status = Some(status.to_string());
                rec.instance.version = Some(rec.instance.version.unwrap_or(0) + 1);
                if !db::commit(
                    cx.store(),
                    vec![db::unchanged(&key, v.mod_revision)],
                    vec![db::put(&key, &rec)],
                )
                .await?
                {
                    continue;
                }
            }
            out.push(view(&cx, &rec, false)?);
            continue 'each;
        }
        return Err(db::contention());
    }
    Ok(UpdateContainerInstancesStateResponse {
        container_instances: Some(out),
        failures: Some(failures),
    })
}
