//! Container instances: RegisterContainerInstance (the agent's call),
//! DescribeContainerInstances, ListContainerInstances,
//! DeregisterContainerInstance, DiscoverPollEndpoint.

use crate::db;
use crate::domain::clusters::load_active;
use crate::domain::instances::{counts_of, counts_on_instance, load_instance, InstanceRecord};
use crate::domain::placement;
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use std::collections::BTreeMap;
use stevedore_api::ecs::*;
use stevedore_model::{keys, tags as tag_rules};

/// The instance as DescribeContainerInstances shows it: live resources,
/// task counts and connectivity.
pub(crate) fn view(cx: &Cx, rec: &InstanceRecord, with_tags: bool) -> ApiResult<ContainerInstance> {
    let arn = rec
        .instance
        .container_instance_arn
        .clone()
        .unwrap_or_default();
    let tasks = crate::live_tasks::live_tasks(cx.store(), cx.scope(), &rec.cluster_name)?;
    Ok(view_with(cx, rec, with_tags, counts_of(&tasks, &arn)))
}

/// `view` with the counts already known, so describing many instances
/// reads the cluster's tasks once rather than once per instance.
pub(crate) fn view_with(
    cx: &Cx,
    rec: &InstanceRecord,
    with_tags: bool,
    (running, pending): (i32, i32),
) -> ContainerInstance {
    let mut ci = rec.instance.clone();
    ci.remaining_resources = Some(rec.remaining());
    let arn = ci.container_instance_arn.clone().unwrap_or_default();
    ci.running_tasks_count = Some(running);
    ci.pending_tasks_count = Some(pending);
    ci.agent_connected = Some(cx.state.heartbeats.connected(&arn));
    if !with_tags {
        ci.tags = None;
    } else if ci.tags.is_none() {
        ci.tags = Some(Vec::new());
    }
    ci
}

fn resource_named<'a>(resources: &'a [Resource], name: &str) -> Option<&'a Resource> {
    resources.iter().find(|r| r.name.as_deref() == Some(name))
}

fn validate_resources(resources: &[Resource]) -> ApiResult<()> {
    for name in ["CPU", "MEMORY"] {
        let r = resource_named(resources, name).ok_or_else(|| {
            ApiError::invalid(format!(
                "totalResources must include {name} (type INTEGER)."
            ))
        })?;
        let v = r
            .integer_value
            .map(i64::from)
            .or(r.long_value)
            .unwrap_or(-1);
        if v < 0 {
            return Err(ApiError::invalid(format!(
                "totalResources {name} must be a non-negative integerValue."
            )));
        }
    }
    for name in ["PORTS", "PORTS_UDP"] {
        if let Some(r) = resource_named(resources, name) {
            for p in r.string_set_value.as_deref().unwrap_or_default() {
                if p.parse::<u16>().is_err() {
                    return Err(ApiError::invalid(format!(
                        "totalResources {name} contains '{p}', which is not a port number."
                    )));
                }
            }
        }
    }
    for r in resources {
        let n = r.name.as_deref().unwrap_or("");
        if !matches!(n, "CPU" | "MEMORY" | "PORTS" | "PORTS_UDP") {
            return Err(ApiError::unsupported(format!(
                "Resource '{n}' is not supported; Stevedore accounts for CPU, MEMORY, PORTS and PORTS_UDP."
            )));
        }
    }
    Ok(())
}

/// Facts an EC2 instance identity document gives, if one was sent.
fn identity_document(doc: Option<&str>) -> ApiResult<(Option<String>, Vec<Attribute>)> {
    let Some(doc) = doc.filter(|d| !d.is_empty()) else {
        return Ok((None, Vec::new()));
    };
    let v: serde_json::Value = serde_json::from_str(doc).map_err(|e| {
        ApiError::invalid(format!("instanceIdentityDocument is not valid JSON: {e}"))
    })?;
    let attr = |name: &str, field: &str| {
        v.get(field).and_then(|x| x.as_str()).map(|val| Attribute {
            name: Some(name.to_string()),
            value: Some(val.to_string()),
            ..Default::default()
        })
    };
    let attrs = [
        attr("ecs.availability-zone", "availabilityZone"),
        attr("ecs.instance-type", "instanceType"),
        attr("ecs.ami-id", "imageId"),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok((
        v.get("instanceId")
            .and_then(|x| x.as_str())
            .map(String::from),
        attrs,
    ))
}

pub async fn register(
    cx: Cx,
    req: RegisterContainerInstanceRequest,
) -> ApiResult<RegisterContainerInstanceResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let resources = req.total_resources.clone().unwrap_or_default();
    validate_resources(&resources)?;
    if req.platform_devices.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::unsupported(
            "platformDevices (GPUs) are not supported yet; register without them.",
        ));
    }
    let tags = tag_rules::validate(req.tags.as_deref().unwrap_or_default())?;
    let (iid_instance, iid_attrs) = identity_document(req.instance_identity_document.as_deref())?;
    let scope = cx.scope().clone();
    let mut attributes: Vec<Attribute> = req.attributes.clone().unwrap_or_default();
    for a in iid_attrs {
        if !attributes.iter().any(|x| x.name == a.name) {
            attributes.push(a);
        }
    }
    for a in attributes.iter_mut() {
        a.target_type = None;
        a.target_id = None;
    }

    for _ in 0..db::MAX_CAS_RETRIES {
        let (key, rec, rev) = match req.container_instance_arn.as_deref() {
            Some(given) => {
                let (key, v) = load_instance(cx.store(), &scope, &cluster_name, given)?.ok_or_else(|| {
                    ApiError::invalid(format!(
                        "Container instance {given} is not registered in cluster {cluster_name}; register without containerInstanceArn."
                    ))
                })?;
                if v.value.instance.status.as_deref() == Some("INACTIVE") {
                    return Err(ApiError::client(format!(
                        "Container instance {given} was deregistered; register it again without containerInstanceArn."
                    )));
                }
                let mut rec = v.value;
                rec.instance.registered_resources = Some(resources.clone());
                rec.instance.version_info = req.version_info.clone();
                // Attributes set with PutAttributes survive re-registration;
                // the agent's own attributes are replaced.
                let mut merged = attributes.clone();
                for old in rec.instance.attributes.clone().unwrap_or_default() {
                    if !merged.iter().any(|a| a.name == old.name) && !is_agent_attribute(&old) {
                        merged.push(old);
                    }
                }
                rec.instance.attributes = Some(merged);
                if !tags.is_empty() {
                    rec.instance.tags = Some(tags.clone());
                }
                rec.instance.version = Some(rec.instance.version.unwrap_or(0) + 1);
                (key, rec, v.mod_revision)
            }
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                let arn = scope.container_instance_arn(&cluster_name, &id);
                let ec2_id = iid_instance
                    .clone()
                    .unwrap_or_else(|| format!("i-{}", &id[..17]));
                let rec = InstanceRecord {
                    instance: ContainerInstance {
                        container_instance_arn: Some(arn),
                        ec2_instance_id: Some(ec2_id),
                        version: Some(1),
                        version_info: req.version_info.clone(),
                        registered_resources: Some(resources.clone()),
                        status: Some("ACTIVE".into()),
                        attributes: Some(attributes.clone()),
                        registered_at: Some(cx.now),
                        tags: Some(tags.clone()),
                        attachments: Some(Vec::new()),
                        ..Default::default()
                    },
                    cluster_name: cluster_name.clone(),
                    report_seq: 0,
                    allocations: BTreeMap::new(),
                };
                (keys::instance(&scope, &cluster_name, &id), rec, 0)
            }
        };
        if db::commit(
            cx.store(),
            vec![db::unchanged(&key, rev)],
            vec![db::put(&key, &rec)],
        )
        .await?
        {
            if let Some(arn) = rec.instance.container_instance_arn.as_deref() {
                cx.state.heartbeats.seen(arn);
            }
            return Ok(RegisterContainerInstanceResponse {
                container_instance: Some(view(&cx, &rec, true)?),
            });
        }
    }
    Err(db::contention())
}

fn is_agent_attribute(a: &Attribute) -> bool {
    let n = a.name.as_deref().unwrap_or("");
    n.starts_with("ecs.") || n.starts_with("com.amazonaws.ecs.")
}

pub async fn describe(
    cx: Cx,
    req: DescribeContainerInstancesRequest,
) -> ApiResult<DescribeContainerInstancesResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let given = req.container_instances.clone().unwrap_or_default();
    if given.len() > 100 {
        return Err(ApiError::invalid(
            "containerInstances can name at most 100 instances.",
        ));
    }
    let include = req.include.clone().unwrap_or_default();
    if include.contains(&ContainerInstanceField::ContainerInstanceHealth) {
        return Err(ApiError::unsupported(
            "include CONTAINER_INSTANCE_HEALTH is not supported yet.",
        ));
    }
    let with_tags = include.contains(&ContainerInstanceField::Tags);
    let tasks = crate::live_tasks::live_tasks(cx.store(), cx.scope(), &cluster_name)?;
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for g in &given {
        match load_instance(cx.store(), cx.scope(), &cluster_name, g)? {
            Some((_, v)) => {
                let arn = v
                    .value
                    .instance
                    .container_instance_arn
                    .clone()
                    .unwrap_or_default();
                out.push(view_with(&cx, &v.value, with_tags, counts_of(&tasks, &arn)))
            }
            None => failures.push(super::missing(g, |id| {
                cx.scope().container_instance_arn(&cluster_name, id)
            })),
        }
    }
    Ok(DescribeContainerInstancesResponse {
        container_instances: Some(out),
        failures: Some(failures),
    })
}

pub async fn list(
    cx: Cx,
    req: ListContainerInstancesRequest,
) -> ApiResult<ListContainerInstancesResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let limit = db::max_results(req.max_results, 100, 100)?;
    let filter = match req.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(f) => Some(placement::parse_filter(f)?),
        None => None,
    };
    let tasks = match filter {
        Some(_) => crate::live_tasks::live_tasks(cx.store(), cx.scope(), &cluster_name)?,
        None => Vec::new(),
    };
    let status = req.status.clone();
    let prefix = keys::cluster_children_prefix(cx.scope(), &cluster_name, keys::KIND_INSTANCE);
    let page = db::page(
        cx.store(),
        &prefix,
        req.next_token.as_deref(),
        limit,
        false,
        |kv| {
            let r: InstanceRecord = db::decode(kv)?;
            let s = r.instance.status.as_deref().unwrap_or("");
            let status_ok = match &status {
                Some(want) => s == want.as_str(),
                None => s != "INACTIVE",
            };
            let filter_ok = filter.as_ref().is_none_or(|f| {
                f.matches(&placement::snapshot_instance(
                    &cx.state.heartbeats,
                    &r,
                    &tasks,
                ))
            });
            Ok(status_ok && filter_ok)
        },
    )?;
    let mut arns = Vec::new();
    for kv in &page.kvs {
        let r: InstanceRecord = db::decode(kv)?;
        arns.push(r.instance.container_instance_arn.unwrap_or_default());
    }
    Ok(ListContainerInstancesResponse {
        container_instance_arns: Some(arns),
        next_token: page.next_token,
    })
}

pub async fn deregister(
    cx: Cx,
    req: DeregisterContainerInstanceRequest,
) -> ApiResult<DeregisterContainerInstanceResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let given = req.container_instance.clone().unwrap_or_default();
    for _ in 0..db::MAX_CAS_RETRIES {
        let (key, v) = load_instance(cx.store(), cx.scope(), &cluster_name, &given)?
            .ok_or_else(|| ApiError::invalid(format!("Container instance {given} not found.")))?;
        let mut rec = v.value;
        let arn = rec
            .instance
            .container_instance_arn
            .clone()
            .unwrap_or_default();
        let (running, pending) = counts_on_instance(cx.store(), cx.scope(), &cluster_name, &arn)?;
        if running + pending > 0 && req.force != Some(true) {
            return Err(ApiError::invalid(format!(
                "Container instance {arn} still has {} tasks. Stop them first, or pass force to deregister anyway (the tasks keep running, unmanaged).",
                running + pending
            )));
        }
        rec.instance.status = Some("INACTIVE".into());
        rec.instance.version = Some(rec.instance.version.unwrap_or(0) + 1);
        if db::commit(
            cx.store(),
            vec![db::unchanged(&key, v.mod_revision)],
            vec![db::put(&key, &rec)],
        )
        .await?
        {
            return Ok(DeregisterContainerInstanceResponse {
                container_instance: Some(view(&cx, &rec, false)?),
            });
        }
    }
    Err(db::contention())
}

pub async fn discover_poll_endpoint(
    cx: Cx,
    req: DiscoverPollEndpointRequest,
) -> ApiResult<DiscoverPollEndpointResponse> {
    if req.cluster.is_some() {
        load_active(cx.store(), cx.scope(), req.cluster.as_deref())?;
    }
    let ep = cx.state.endpoint.clone();
    Ok(DiscoverPollEndpointResponse {
        endpoint: Some(ep.clone()),
        telemetry_endpoint: Some(ep.clone()),
        service_connect_endpoint: Some(ep),
    })
}
