//! CreateService, UpdateService, DeleteService, DescribeServices,
//! ListServices.

use super::record::{self, ServiceRecord};
use super::{
    cluster_name_for, is_replica, load_service, merge_deployment_configuration, new_deployment,
    refuse_unsupported, view, RevisionConfig,
};
use crate::db;
use crate::domain::clusters::{load_active, load_any};
use crate::domain::launch::{self, LaunchRequest, Target};
use crate::domain::placement::parse_placement;
use crate::domain::tasks::tasks_in_cluster;
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use stevedore_api::ecs::*;
use stevedore_controllers::state::{DeploymentStatus, Outcome, Throttle};
use stevedore_model::{keys, tags as tag_rules};

fn valid_service_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a revision resolves to after RunTask's validation.
struct Resolved {
    cluster: Cluster,
    task_definition: String,
    config: RevisionConfig,
    fargate: bool,
}

/// The launch a service's tasks get: its revision, group and placement.
/// Validating a revision is preparing this launch; nothing is placed.
struct Revision<'a> {
    cluster: Option<String>,
    service_name: &'a str,
    task_definition: String,
    /// UpdateService keeping the current revision may keep one
    /// deregistered since, as in ECS; naming one needs it ACTIVE.
    allow_inactive_task_definition: bool,
    launch_type: Option<LaunchType>,
    capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    network_configuration: Option<NetworkConfiguration>,
    platform_version: Option<String>,
    placement_strategy: Vec<PlacementStrategy>,
    placement_constraints: Vec<PlacementConstraint>,
}

/// Validates a revision (task definition, launch type or capacity
/// providers, network configuration, platform version, placement) the way
/// RunTask validates a launch.
fn resolve_revision(cx: &Cx, r: Revision<'_>) -> ApiResult<Resolved> {
    let strategy = r.capacity_provider_strategy.filter(|s| !s.is_empty());
    let l = launch::prepare(
        &cx.launch_env(),
        LaunchRequest {
            allow_inactive_task_definition: r.allow_inactive_task_definition,
            launch_type: r.launch_type.clone(),
            capacity_provider_strategy: strategy.clone(),
            platform_version: r.platform_version,
            group: Some(record::service_group(r.service_name)),
            network_configuration: r.network_configuration.clone(),
            placement_strategy: r.placement_strategy,
            placement_constraints: r.placement_constraints,
            ..LaunchRequest::new(
                r.cluster,
                r.task_definition,
                Target::Cluster {
                    count: 0,
                    client_token: None,
                },
            )
        },
    )?;
    let mut config = RevisionConfig {
        network_configuration: r.network_configuration,
        ..Default::default()
    };
    if let Some(s) = strategy {
        config.capacity_provider_strategy = Some(s);
    } else if let Some(lt) = r.launch_type {
        config.launch_type = Some(lt);
    } else if l.capacity_provider.is_some() {
        config.capacity_provider_strategy = l.cluster.default_capacity_provider_strategy.clone();
    } else {
        config.launch_type = Some(l.launch_type.clone());
    }
    config.platform_version = l.platform_version.clone();
    Ok(Resolved {
        cluster: l.cluster,
        task_definition: l.td.task_definition_arn.clone().unwrap_or_default(),
        config,
        fargate: l.launch_type == LaunchType::Fargate,
    })
}

fn check_grace(g: Option<i32>) -> ApiResult<()> {
    match g {
        Some(g) if g < 0 => Err(ApiError::invalid(format!(
            "healthCheckGracePeriodSeconds must be between 0 and 2147483647; it was {g}."
        ))),
        _ => Ok(()),
    }
}

fn check_placement_for(replica: bool, strategies: Option<&[PlacementStrategy]>) -> ApiResult<()> {
    if !replica && strategies.is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid(
            "placementStrategy cannot be used with the DAEMON scheduling strategy: a daemon runs one task on every instance.",
        ));
    }
    Ok(())
}

pub async fn create_service(cx: Cx, req: CreateServiceRequest) -> ApiResult<CreateServiceResponse> {
    let name = req.service_name.clone().unwrap_or_default();
    if !valid_service_name(&name) {
        return Err(ApiError::invalid(format!(
            "serviceName '{name}' is invalid: use 1 to 255 letters, digits, hyphens and underscores."
        )));
    }
    refuse_unsupported(
        req.load_balancers.as_deref(),
        req.service_registries.as_deref(),
        req.service_connect_configuration.as_ref(),
        req.volume_configurations.as_deref(),
        req.vpc_lattice_configurations.as_deref(),
        req.deployment_controller.as_ref(),
        req.availability_zone_rebalancing.as_ref(),
        req.enable_execute_command,
        req.monitoring.as_ref(),
        req.gateway_connectors.is_some(),
    )?;
    if req.role.is_some() {
        return Err(ApiError::invalid(
            "role can only be given together with loadBalancers, which Stevedore does not support. Leave role out.",
        ));
    }
    let Some(td_ref) = req.task_definition.as_deref().filter(|t| !t.is_empty()) else {
        return Err(ApiError::invalid(
            "taskDefinition is required: give a family, family:revision or task definition ARN.",
        ));
    };
    let strategy = req
        .scheduling_strategy
        .clone()
        .unwrap_or(SchedulingStrategy::Replica);
    let replica = strategy == SchedulingStrategy::Replica;
    let desired = if replica {
        match req.desired_count {
            None => {
                return Err(ApiError::invalid(
                    "desiredCount is required for the REPLICA scheduling strategy: give the number of tasks to keep running (0 or more).",
                ))
            }
            Some(n) if n < 0 => {
                return Err(ApiError::invalid(format!(
                    "desiredCount must be 0 or more; it was {n}."
                )))
            }
            Some(n) => n,
        }
    } else {
        if req.desired_count.is_some() {
            return Err(ApiError::invalid(
                "desiredCount cannot be given for the DAEMON scheduling strategy: a daemon runs one task on every instance. Leave desiredCount out.",
            ));
        }
        0
    };
    check_placement_for(replica, req.placement_strategy.as_deref())?;
    check_grace(req.health_check_grace_period_seconds)?;
    let deployment_configuration =
        merge_deployment_configuration(None, req.deployment_configuration.as_ref(), replica)?;
    let strategies = req.placement_strategy.clone().unwrap_or_default();
    let constraints = req.placement_constraints.clone().unwrap_or_default();
    let r = resolve_revision(
        &cx,
        Revision {
            cluster: req.cluster.clone(),
            service_name: &name,
            task_definition: td_ref.to_string(),
            allow_inactive_task_definition: false,
            launch_type: req.launch_type.clone(),
            capacity_provider_strategy: req.capacity_provider_strategy.clone(),
            network_configuration: req.network_configuration.clone(),
            platform_version: req.platform_version.clone(),
            placement_strategy: strategies.clone(),
            placement_constraints: constraints.clone(),
        },
    )?;
    if !replica && r.fargate {
        return Err(ApiError::invalid(
            "The DAEMON scheduling strategy is not supported with FARGATE (launch type or capacity provider): there are no instances to run one task on each. Use REPLICA, or the EC2 launch type.",
        ));
    }
    let tags = tag_rules::validate(req.tags.as_deref().unwrap_or_default())?;
    let scope = cx.scope().clone();
    let cluster_name = r.cluster.cluster_name.clone().unwrap_or_default();
    let now = cx.now.as_millis();
    let service = Service {
        service_arn: Some(record::service_arn(&scope, &cluster_name, &name)),
        service_name: Some(name.clone()),
        cluster_arn: r.cluster.cluster_arn.clone(),
        status: Some("ACTIVE".into()),
        desired_count: Some(desired),
        launch_type: r.config.launch_type.clone(),
        capacity_provider_strategy: r.config.capacity_provider_strategy.clone(),
        platform_version: r.config.platform_version.clone(),
        platform_family: r.config.platform_version.as_ref().map(|_| "Linux".into()),
        task_definition: Some(r.task_definition.clone()),
        deployment_configuration: Some(deployment_configuration),
        deployment_controller: Some(DeploymentController {
            r#type: Some(DeploymentControllerType::Ecs),
        }),
        network_configuration: r.config.network_configuration.clone(),
        placement_constraints: Some(constraints),
        placement_strategy: Some(strategies),
        health_check_grace_period_seconds: Some(req.health_check_grace_period_seconds.unwrap_or(0)),
        scheduling_strategy: Some(strategy),
        propagate_tags: Some(req.propagate_tags.clone().unwrap_or(PropagateTags::None)),
        enable_ecs_managed_tags: Some(req.enable_ecs_managed_tags.unwrap_or(false)),
        enable_execute_command: Some(false),
        availability_zone_rebalancing: Some(AvailabilityZoneRebalancing::Disabled),
        tags: Some(tags),
        created_at: Some(cx.now),
        created_by: Some(cx.caller.principal_arn.clone()),
        ..Default::default()
    };
    let mut rec = ServiceRecord {
        service,
        controller: Default::default(),
        client_token: req.client_token.clone().filter(|t| !t.is_empty()),
    };
    let first = new_deployment(&mut rec, now, r.task_definition.clone(), &r.config);
    rec.controller.deployments = vec![first];
    let key = keys::service(&scope, &cluster_name, &name);
    let index = keys::controller_service(&scope, &cluster_name, &name);
    for _ in 0..db::MAX_CAS_RETRIES {
        let existing = db::get::<ServiceRecord>(cx.store(), &key)?;
        if let Some(e) = &existing {
            if e.value.service.status.as_deref() != Some("INACTIVE") {
                if rec.client_token.is_some() && e.value.client_token == rec.client_token {
                    let tasks = tasks_in_cluster(cx.store(), &scope, &cluster_name)?;
                    return Ok(CreateServiceResponse {
                        service: Some(view(&scope, &e.value, &tasks, true)),
                    });
                }
                return Err(ApiError::invalid("Creation of service was not idempotent."));
            }
        }
        let rev = existing.map_or(0, |e| e.mod_revision);
        if db::commit(
            cx.store(),
            vec![db::unchanged(&key, rev)],
            vec![db::put(&key, &rec), db::put(&index, &serde_json::json!({}))],
        )
        .await?
        {
            return Ok(CreateServiceResponse {
                service: Some(view(&scope, &rec, &[], true)),
            });
        }
    }
    Err(db::contention())
}

pub async fn update_service(cx: Cx, req: UpdateServiceRequest) -> ApiResult<UpdateServiceResponse> {
    let given = req.service.clone().unwrap_or_default();
    refuse_unsupported(
        req.load_balancers.as_deref(),
        req.service_registries.as_deref(),
        req.service_connect_configuration.as_ref(),
        req.volume_configurations.as_deref(),
        req.vpc_lattice_configurations.as_deref(),
        req.deployment_controller.as_ref(),
        req.availability_zone_rebalancing.as_ref(),
        req.enable_execute_command,
        req.monitoring.as_ref(),
        req.gateway_connectors.is_some(),
    )?;
    check_grace(req.health_check_grace_period_seconds)?;
    if let Some(n) = req.desired_count {
        if n < 0 {
            return Err(ApiError::invalid(format!(
                "desiredCount must be 0 or more; it was {n}."
            )));
        }
    }
    let scope = cx.scope().clone();
    let cluster_name = cluster_name_for(&scope, req.cluster.as_deref(), Some(&given))?;
    let cluster = load_active(cx.store(), cx.scope(), Some(&cluster_name))?.value;
    let now = cx.now.as_millis();
    for _ in 0..db::MAX_CAS_RETRIES {
        let (key, v) = load_service(cx.store(), &scope, &cluster_name, &given)?
            .ok_or_else(ApiError::service_not_found)?;
        let mut rec = v.value;
        if rec.service.status.as_deref() != Some("ACTIVE") {
            return Err(ApiError::service_not_active());
        }
        let name = rec.name().to_string();
        let replica = is_replica(&rec.service);
        if !replica && req.desired_count.is_some() {
            return Err(ApiError::invalid(
                "desiredCount cannot be changed for a DAEMON service: it runs one task on every instance.",
            ));
        }
        check_placement_for(replica, req.placement_strategy.as_deref())?;
        let s = &mut rec.service;
        if req.deployment_configuration.is_some() {
            s.deployment_configuration = Some(merge_deployment_configuration(
                s.deployment_configuration.as_ref(),
                req.deployment_configuration.as_ref(),
                replica,
            )?);
        }
        if let Some(ps) = &req.placement_strategy {
            s.placement_strategy = Some(ps.clone());
        }
        if let Some(pc) = &req.placement_constraints {
            s.placement_constraints = Some(pc.clone());
        }
        if let Some(n) = req.desired_count {
            s.desired_count = Some(n);
        }
        if let Some(g) = req.health_check_grace_period_seconds {
            s.health_check_grace_period_seconds = Some(g);
        }
        if let Some(p) = &req.propagate_tags {
            s.propagate_tags = Some(p.clone());
        }
        if let Some(m) = req.enable_ecs_managed_tags {
            s.enable_ecs_managed_tags = Some(m);
        }
        // The revision as it would be after this update.
        let primary = rec.controller.primary().cloned();
        let current_cfg = primary.as_ref().map(RevisionConfig::of).unwrap_or_default();
        let current_td = primary
            .as_ref()
            .map(|d| d.task_definition.clone())
            .or_else(|| rec.service.task_definition.clone())
            .unwrap_or_default();
        let mut launch_type = current_cfg.launch_type.clone();
        let mut cps = current_cfg.capacity_provider_strategy.clone();
        if let Some(s) = req.capacity_provider_strategy.as_ref() {
            cps = Some(s.clone()).filter(|s| !s.is_empty());
            launch_type = None;
        }
        let network = req
            .network_configuration
            .clone()
            .or(current_cfg.network_configuration.clone());
        let platform_version = req
            .platform_version
            .clone()
            .or(current_cfg.platform_version.clone());
        let revision_touched = req.task_definition.is_some()
            || req.capacity_provider_strategy.is_some()
            || req.network_configuration.is_some()
            || req.platform_version.is_some()
            || req.force_new_deployment == Some(true);
        if req.placement_strategy.is_some() || req.placement_constraints.is_some() {
            parse_placement(
                rec.service
                    .placement_strategy
                    .as_deref()
                    .unwrap_or_default(),
                rec.service
                    .placement_constraints
                    .as_deref()
                    .unwrap_or_default(),
            )?;
        }
        let mut new_revision = None;
        if revision_touched {
            let td_ref = req.task_definition.clone().unwrap_or(current_td.clone());
            let r = resolve_revision(
                &cx,
                Revision {
                    cluster: Some(cluster_name.clone()),
                    service_name: &name,
                    task_definition: td_ref,
                    // Keeping the current revision works even if it was
                    // deregistered since, as in ECS; naming one needs it ACTIVE.
                    allow_inactive_task_definition: req.task_definition.is_none(),
                    launch_type: launch_type.clone(),
                    capacity_provider_strategy: cps.clone(),
                    network_configuration: network.clone(),
                    // Keep LATEST/1.4.0 for Fargate; a launch type without
                    // platform versions had none stored.
                    platform_version: platform_version.clone(),
                    placement_strategy: rec.service.placement_strategy.clone().unwrap_or_default(),
                    placement_constraints: rec
                        .service
                        .placement_constraints
                        .clone()
                        .unwrap_or_default(),
                },
            )?;
            let changed = r.task_definition != current_td || r.config != current_cfg;
            if changed || req.force_new_deployment == Some(true) {
                new_revision = Some(r);
            }
        }
        if let Some(r) = new_revision {
            let new = new_deployment(&mut rec, now, r.task_definition.clone(), &r.config);
            let new_id = new.id.clone();
            for d in rec.controller.deployments.iter_mut() {
                if d.status == DeploymentStatus::Primary {
                    d.status = DeploymentStatus::Active;
                    d.updated_at = now;
                    if d.outcome == Outcome::InProgress {
                        d.outcome = Outcome::Stopped;
                        d.outcome_reason = Some(format!("Superseded by deployment {new_id}."));
                        d.finished_at = Some(now);
                    }
                }
            }
            rec.controller.deployments.insert(0, new);
            rec.controller.throttle = Throttle::default();
            rec.controller.steady = false;
            let s = &mut rec.service;
            s.task_definition = Some(r.task_definition);
            s.launch_type = r.config.launch_type.clone();
            s.capacity_provider_strategy = r.config.capacity_provider_strategy.clone();
            s.network_configuration = r.config.network_configuration.clone();
            s.platform_version = r.config.platform_version.clone();
            s.platform_family = r.config.platform_version.as_ref().map(|_| "Linux".into());
        } else if req.desired_count.is_some() {
            // A scale changes what the controller converges to.
            rec.controller.steady = false;
        }
        if db::commit(
            cx.store(),
            vec![db::unchanged(&key, v.mod_revision)],
            vec![db::put(&key, &rec)],
        )
        .await?
        {
            let tasks = tasks_in_cluster(
                cx.store(),
                &scope,
                cluster.cluster_name.as_deref().unwrap_or_default(),
            )?;
            return Ok(UpdateServiceResponse {
                service: Some(view(&scope, &rec, &tasks, false)),
            });
        }
    }
    Err(db::contention())
}

pub async fn delete_service(cx: Cx, req: DeleteServiceRequest) -> ApiResult<DeleteServiceResponse> {
    let given = req.service.clone().unwrap_or_default();
    let scope = cx.scope().clone();
    let cluster_name = cluster_name_for(&scope, req.cluster.as_deref(), Some(&given))?;
    load_active(cx.store(), cx.scope(), Some(&cluster_name))?;
    for _ in 0..db::MAX_CAS_RETRIES {
        let (key, v) = load_service(cx.store(), &scope, &cluster_name, &given)?
            .ok_or_else(ApiError::service_not_found)?;
        let mut rec = v.value;
        if rec.service.status.as_deref() != Some("ACTIVE") {
            return Err(ApiError::service_not_active());
        }
        if is_replica(&rec.service)
            && rec.service.desired_count.unwrap_or(0) > 0
            && req.force != Some(true)
        {
            // ECS's fixed wording (the remedy: desiredCount 0 first, or force).
            return Err(ApiError::invalid(
                "The service cannot be stopped while it is scaled above 0.",
            ));
        }
        rec.service.status = Some("DRAINING".into());
        rec.service.desired_count = Some(0);
        rec.controller.steady = false;
        if db::commit(
            cx.store(),
            vec![db::unchanged(&key, v.mod_revision)],
            vec![db::put(&key, &rec)],
        )
        .await?
        {
            let tasks = tasks_in_cluster(cx.store(), &scope, &cluster_name)?;
            return Ok(DeleteServiceResponse {
                service: Some(view(&scope, &rec, &tasks, false)),
            });
        }
    }
    Err(db::contention())
}

pub async fn describe_services(
    cx: Cx,
    req: DescribeServicesRequest,
) -> ApiResult<DescribeServicesResponse> {
    let given = req.services.clone().unwrap_or_default();
    if given.is_empty() || given.len() > 10 {
        return Err(ApiError::invalid(format!(
            "services must name 1 to 10 services; {} were given.",
            given.len()
        )));
    }
    let scope = cx.scope().clone();
    let cluster_name = cluster_name_for(
        &scope,
        req.cluster.as_deref(),
        given.first().map(|s| s.as_str()),
    )?;
    let cluster = load_any(cx.store(), &scope, Some(&cluster_name))?
        .ok_or_else(ApiError::cluster_not_found)?
        .value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let with_tags = req
        .include
        .as_deref()
        .unwrap_or_default()
        .contains(&ServiceField::Tags);
    let tasks = tasks_in_cluster(cx.store(), &scope, &cluster_name)?;
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for g in &given {
        match load_service(cx.store(), &scope, &cluster_name, g)? {
            Some((_, v)) => services.push(view(&scope, &v.value, &tasks, with_tags)),
            None => failures.push(crate::ecs::missing(g, |n| {
                record::service_arn(&scope, &cluster_name, n)
            })),
        }
    }
    Ok(DescribeServicesResponse {
        services: Some(services),
        failures: Some(failures),
    })
}

pub async fn list_services(cx: Cx, req: ListServicesRequest) -> ApiResult<ListServicesResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let limit = db::max_results(req.max_results, 10, 100)?;
    if req
        .resource_management_type
        .as_ref()
        .is_some_and(|t| *t != ResourceManagementType::Customer)
    {
        // Every Stevedore service is customer-managed.
        return Ok(ListServicesResponse {
            service_arns: Some(Vec::new()),
            next_token: None,
        });
    }
    let prefix = keys::cluster_children_prefix(cx.scope(), &cluster_name, keys::KIND_SERVICE);
    let page = db::page(
        cx.store(),
        &prefix,
        req.next_token.as_deref(),
        limit,
        false,
        |kv| {
            let r: ServiceRecord = db::decode(kv)?;
            let s = &r.service;
            Ok(
                matches!(s.status.as_deref(), Some("ACTIVE") | Some("DRAINING"))
                    && req
                        .launch_type
                        .as_ref()
                        .is_none_or(|lt| s.launch_type.as_ref() == Some(lt))
                    && req.scheduling_strategy.as_ref().is_none_or(|st| {
                        s.scheduling_strategy
                            .as_ref()
                            .unwrap_or(&SchedulingStrategy::Replica)
                            == st
                    }),
            )
        },
    )?;
    let mut arns = Vec::new();
    for kv in &page.kvs {
        let r: ServiceRecord = db::decode(kv)?;
        arns.push(r.service.service_arn.unwrap_or_default());
    }
    Ok(ListServicesResponse {
        service_arns: Some(arns),
        next_token: page.next_token,
    })
}
