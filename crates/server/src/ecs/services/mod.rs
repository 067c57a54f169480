//! Services: the ECS service API surface. The handlers store intent (the
//! service record and its deployments); the service controller
//! (`crate::controller`) starts and stops the tasks.
//!
//! Shared here: locating a service by name or ARN, the computed view
//! (`DescribeServices` shape) and `deploymentConfiguration` validation.

pub mod api;
pub mod deployments;
pub mod protection;
pub mod record;

use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use record::ServiceRecord;
use serde::{Deserialize, Serialize};
use stevedore_api::ecs::*;
use stevedore_api::Timestamp;
use stevedore_controllers::state::{DeploymentState, DeploymentStatus, Outcome, Rollout};
use stevedore_model::arn::{child_id, cluster_ref, Arn, ClusterRef, Scope};
use stevedore_model::keys;
use stevedore_store::Store;

/// What besides the task definition defines a service revision, in wire
/// shapes. Stored opaque in `DeploymentState.config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<LaunchType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
}

impl RevisionConfig {
    pub fn of(d: &DeploymentState) -> RevisionConfig {
        serde_json::from_value(d.config.clone()).unwrap_or_default()
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

pub(crate) fn ms(t: i64) -> Timestamp {
    Timestamp::from_millis(t)
}

/// The cluster name the request means: the `cluster` parameter, else the
/// cluster segment of a service ARN, else `default`.
pub(crate) fn cluster_name_for(
    scope: &Scope,
    cluster: Option<&str>,
    service: Option<&str>,
) -> ApiResult<String> {
    let from_arn = service
        .filter(|s| s.starts_with("arn:"))
        .and_then(Arn::parse)
        .filter(|a| a.resource_type == "service")
        .and_then(|a| a.resource.split_once('/').map(|(c, _)| c.to_string()));
    let given = match (cluster, &from_arn) {
        (Some(c), _) if !c.is_empty() => Some(c.to_string()),
        (_, Some(c)) => Some(c.clone()),
        _ => None,
    };
    match cluster_ref(scope, given.as_deref()) {
        ClusterRef::Name(n) => Ok(n),
        ClusterRef::Foreign => Err(ApiError::cluster_not_found()),
    }
}

/// The service name a `service` parameter (name or ARN) means in `cluster`.
pub(crate) fn service_name_of(scope: &Scope, cluster: &str, given: &str) -> Option<String> {
    child_id(scope, "service", cluster, given)
}

pub(crate) type Loaded = (String, Versioned<ServiceRecord>);

pub(crate) fn load_service(
    store: &dyn Store,
    scope: &Scope,
    cluster: &str,
    given: &str,
) -> ApiResult<Option<Loaded>> {
    let Some(name) = service_name_of(scope, cluster, given) else {
        return Ok(None);
    };
    let key = keys::service(scope, cluster, &name);
    Ok(db::get(store, &key)?.map(|v| (key, v)))
}

pub(crate) fn is_replica(s: &Service) -> bool {
    !matches!(s.scheduling_strategy, Some(SchedulingStrategy::Daemon))
}

/// `deploymentConfiguration` as DescribeServices shows it: every default
/// filled in.
pub(crate) fn config_with_defaults(s: &Service) -> DeploymentConfiguration {
    let mut c = s.deployment_configuration.clone().unwrap_or_default();
    let replica = is_replica(s);
    c.maximum_percent
        .get_or_insert(if replica { 200 } else { 100 });
    c.minimum_healthy_percent
        .get_or_insert(if replica { 100 } else { 0 });
    c.deployment_circuit_breaker
        .get_or_insert(DeploymentCircuitBreaker {
            enable: Some(false),
            rollback: Some(false),
            ..Default::default()
        });
    c.alarms.get_or_insert(DeploymentAlarms {
        alarm_names: Some(Vec::new()),
        enable: Some(false),
        rollback: Some(false),
    });
    c.strategy.get_or_insert(DeploymentStrategy::Rolling);
    c
}

/// Validates a requested `deploymentConfiguration` and merges it over
/// `current` (CreateService passes none). Refuses what Stevedore cannot
/// honour.
pub(crate) fn merge_deployment_configuration(
    current: Option<&DeploymentConfiguration>,
    given: Option<&DeploymentConfiguration>,
    replica: bool,
) -> ApiResult<DeploymentConfiguration> {
    let mut c = current.cloned().unwrap_or_default();
    if let Some(g) = given {
        if g.strategy
            .as_ref()
            .is_some_and(|s| *s != DeploymentStrategy::Rolling)
        {
            return Err(ApiError::unsupported(format!(
                "deploymentConfiguration.strategy {} is not supported: Stevedore deploys with ROLLING only.",
                g.strategy.as_ref().map(|s| s.as_str()).unwrap_or_default()
            )));
        }
        if g.alarms.as_ref().is_some_and(|a| a.enable == Some(true)) {
            return Err(ApiError::unsupported(
                "deploymentConfiguration.alarms with enable=true is not supported: Stevedore has no CloudWatch alarms. Use deploymentCircuitBreaker, or set alarms.enable to false.",
            ));
        }
        if g.lifecycle_hooks.as_ref().is_some_and(|h| !h.is_empty()) {
            return Err(ApiError::unsupported(
                "deploymentConfiguration.lifecycleHooks are not supported (they belong to blue/green deployments).",
            ));
        }
        if g.early_success_criteria.is_some() {
            return Err(ApiError::unsupported(
                "deploymentConfiguration.earlySuccessCriteria is not supported: a Stevedore rolling deployment completes when every task of the new revision is running and healthy. Leave earlySuccessCriteria out.",
            ));
        }
        if g.bake_time_in_minutes.is_some() {
            return Err(ApiError::unsupported(
                "deploymentConfiguration.bakeTimeInMinutes is not supported (it belongs to blue/green, linear and canary deployments).",
            ));
        }
        if g.linear_configuration.is_some() || g.canary_configuration.is_some() {
            return Err(ApiError::unsupported(
                "deploymentConfiguration.linearConfiguration and canaryConfiguration are not supported: Stevedore deploys with ROLLING only.",
            ));
        }
        if let Some(b) = &g.deployment_circuit_breaker {
            if b.threshold_configuration.is_some() {
                return Err(ApiError::unsupported(
                    "deploymentCircuitBreaker.thresholdConfiguration is not supported; the threshold is ECS's default (half the desired count, between 10 and 200).",
                ));
            }
            if b.reset_on_healthy_task == Some(false) {
                return Err(ApiError::unsupported(
                    "deploymentCircuitBreaker.resetOnHealthyTask=false is not supported.",
                ));
            }
            c.deployment_circuit_breaker = Some(DeploymentCircuitBreaker {
                enable: Some(b.enable.unwrap_or(false)),
                rollback: Some(b.rollback.unwrap_or(false)),
                ..Default::default()
            });
        }
        if let Some(a) = &g.alarms {
            c.alarms = Some(DeploymentAlarms {
                alarm_names: Some(a.alarm_names.clone().unwrap_or_default()),
                enable: Some(false),
                rollback: Some(a.rollback.unwrap_or(false)),
            });
        }
        if g.maximum_percent.is_some() {
            c.maximum_percent = g.maximum_percent;
        }
        if g.minimum_healthy_percent.is_some() {
            c.minimum_healthy_percent = g.minimum_healthy_percent;
        }
    }
    let max = *c
        .maximum_percent
        .get_or_insert(if replica { 200 } else { 100 });
    let min = *c
        .minimum_healthy_percent
        .get_or_insert(if replica { 100 } else { 0 });
    if !(0..=100).contains(&min) {
        return Err(ApiError::invalid(format!(
            "deploymentConfiguration.minimumHealthyPercent must be between 0 and 100; it was {min}."
        )));
    }
    if replica && max < 100 {
        return Err(ApiError::invalid(format!(
            "deploymentConfiguration.maximumPercent must be at least 100 for the REPLICA scheduling strategy; it was {max}."
        )));
    }
    if !replica && max != 100 {
        return Err(ApiError::invalid(format!(
            "deploymentConfiguration.maximumPercent must be 100 for the DAEMON scheduling strategy (one task per instance); it was {max}."
        )));
    }
    c.deployment_circuit_breaker
        .get_or_insert(DeploymentCircuitBreaker {
            enable: Some(false),
            rollback: Some(false),
            ..Default::default()
        });
    c.strategy = Some(DeploymentStrategy::Rolling);
    Ok(c)
}

/// The breaker the controller applies to a new deployment.
pub(crate) fn breaker_of(
    c: &DeploymentConfiguration,
) -> Option<stevedore_controllers::state::Breaker> {
    c.deployment_circuit_breaker
        .as_ref()
        .map(|b| stevedore_controllers::state::Breaker {
            enable: b.enable.unwrap_or(false),
            rollback: b.rollback.unwrap_or(false),
        })
}

/// Refusals shared by CreateService and UpdateService: features whose
/// fields Stevedore cannot honour.
#[allow(clippy::too_many_arguments)]
pub(crate) fn refuse_unsupported(
    load_balancers: Option<&[LoadBalancer]>,
    service_registries: Option<&[ServiceRegistry]>,
    service_connect: Option<&ServiceConnectConfiguration>,
    volume_configurations: Option<&[ServiceVolumeConfiguration]>,
    vpc_lattice: Option<&[VpcLatticeConfiguration]>,
    controller: Option<&DeploymentController>,
    az_rebalancing: Option<&AvailabilityZoneRebalancing>,
    enable_execute_command: Option<bool>,
    monitoring: Option<&MonitoringConfiguration>,
    gateway_connectors_given: bool,
) -> ApiResult<()> {
    if gateway_connectors_given {
        return Err(ApiError::unsupported(
            "gatewayConnectors are not supported: Stevedore has no ECS Gateways. Leave gatewayConnectors out.",
        ));
    }
    if load_balancers.is_some_and(|l| !l.is_empty()) {
        return Err(ApiError::unsupported(
            "loadBalancers are not supported: Stevedore has no Elastic Load Balancing. Leave loadBalancers out and put your own proxy in front of the tasks.",
        ));
    }
    if service_registries.is_some_and(|l| !l.is_empty()) {
        return Err(ApiError::unsupported(
            "serviceRegistries (Cloud Map service discovery) are not supported.",
        ));
    }
    if service_connect.is_some_and(|c| c.enabled == Some(true)) {
        return Err(ApiError::unsupported(
            "serviceConnectConfiguration is not supported: Stevedore has no Service Connect.",
        ));
    }
    if volume_configurations.is_some_and(|l| !l.is_empty()) {
        return Err(ApiError::unsupported(
            "volumeConfigurations (EBS volumes) are not supported.",
        ));
    }
    if vpc_lattice.is_some_and(|l| !l.is_empty()) {
        return Err(ApiError::unsupported(
            "vpcLatticeConfigurations are not supported.",
        ));
    }
    if let Some(t) = controller.and_then(|c| c.r#type.as_ref()) {
        if *t != DeploymentControllerType::Ecs {
            return Err(ApiError::unsupported(format!(
                "deploymentController type {} is not supported: Stevedore runs the ECS rolling-update controller only. Use type ECS.",
                t.as_str()
            )));
        }
    }
    if az_rebalancing.is_some_and(|a| *a == AvailabilityZoneRebalancing::Enabled) {
        return Err(ApiError::unsupported(
            "availabilityZoneRebalancing ENABLED is not supported: a Stevedore cluster has no Availability Zones. Use DISABLED.",
        ));
    }
    if enable_execute_command == Some(true) {
        return Err(ApiError::invalid(
            "enableExecuteCommand is not supported yet: Stevedore has no ECS Exec. Leave it out or set it to false.",
        ));
    }
    if monitoring.is_some() {
        return Err(ApiError::unsupported("monitoring is not supported."));
    }
    Ok(())
}

/// The tasks of `name` among the cluster's tasks.
pub(crate) fn service_tasks<'a>(tasks: &'a [Versioned<Task>], name: &str) -> Vec<&'a Task> {
    tasks
        .iter()
        .map(|v| &v.value)
        .filter(|t| record::belongs_to(t, name))
        .collect()
}

/// (running, pending, live) tasks of one deployment.
fn deployment_counts(tasks: &[&Task], id: &str) -> (i32, i32, i32) {
    let mine: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| t.started_by.as_deref() == Some(id))
        .collect();
    let (r, p) = record::counts(mine.iter().copied());
    let live = mine.iter().filter(|t| record::is_live(t)).count() as i32;
    (r, p, live)
}

/// Task counts a revision summary reports: (requested, running, pending).
pub(crate) fn revision_counts(
    rec: &ServiceRecord,
    tasks: &[&Task],
    d: &DeploymentState,
) -> (i32, i32, i32) {
    let (running, pending, live) = deployment_counts(tasks, &d.id);
    let requested = match d.status {
        DeploymentStatus::Primary => rec.service.desired_count.unwrap_or(0),
        DeploymentStatus::Active => live,
        DeploymentStatus::Inactive => 0,
    };
    (requested, running, pending)
}

/// The DescribeServices view of a stored service: the stored shape plus
/// counts, deployments and events computed from the controller state and
/// the cluster's tasks.
pub(crate) fn view(
    scope: &Scope,
    rec: &ServiceRecord,
    cluster_tasks: &[Versioned<Task>],
    with_tags: bool,
) -> Service {
    let name = rec.name();
    let cluster = rec
        .service
        .cluster_arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let tasks = service_tasks(cluster_tasks, name);
    let (running, pending) = record::counts(tasks.iter().copied());
    let mut s = rec.service.clone();
    s.running_count = Some(running);
    s.pending_count = Some(pending);
    let mut deployments = Vec::new();
    let mut revisions = Vec::new();
    for d in rec.controller.visible() {
        let cfg = RevisionConfig::of(d);
        let (requested, running, pending) = revision_counts(rec, &tasks, d);
        deployments.push(Deployment {
            id: Some(d.id.clone()),
            status: Some(d.status.as_str().to_string()),
            task_definition: Some(d.task_definition.clone()),
            desired_count: Some(requested),
            running_count: Some(running),
            pending_count: Some(pending),
            failed_tasks: Some(d.failed_tasks as i32),
            created_at: Some(ms(d.created_at)),
            updated_at: Some(ms(d.updated_at)),
            launch_type: cfg.launch_type.clone(),
            capacity_provider_strategy: cfg.capacity_provider_strategy.clone(),
            network_configuration: cfg.network_configuration.clone(),
            platform_version: cfg.platform_version.clone(),
            platform_family: cfg.platform_version.as_ref().map(|_| "Linux".to_string()),
            rollout_state: Some(DeploymentRolloutState::from(d.rollout.as_str())),
            rollout_state_reason: Some(d.rollout_reason.clone()),
            ..Default::default()
        });
        revisions.push(ServiceCurrentRevisionSummary {
            arn: Some(record::revision_arn(scope, &cluster, name, &d.id)),
            requested_task_count: Some(requested),
            running_task_count: Some(running),
            pending_task_count: Some(pending),
        });
    }
    s.deployments = Some(deployments);
    s.current_service_revisions = Some(revisions);
    s.current_service_deployment = rec
        .controller
        .primary()
        .map(|d| record::deployment_arn(scope, &cluster, name, &d.id));
    s.events = Some(
        rec.controller
            .events
            .iter()
            .map(|e| ServiceEvent {
                id: Some(e.id.clone()),
                created_at: Some(ms(e.created_at)),
                message: Some(e.message.clone()),
            })
            .collect(),
    );
    s.deployment_controller = Some(DeploymentController {
        r#type: Some(DeploymentControllerType::Ecs),
    });
    s.deployment_configuration = Some(config_with_defaults(&s));
    s.scheduling_strategy
        .get_or_insert(SchedulingStrategy::Replica);
    s.availability_zone_rebalancing
        .get_or_insert(AvailabilityZoneRebalancing::Disabled);
    if !with_tags {
        s.tags = None;
    } else {
        s.tags.get_or_insert_with(Vec::new);
    }
    s
}

/// A new PRIMARY deployment; the caller demotes the old one.
pub(crate) fn new_deployment(
    rec: &mut ServiceRecord,
    now: i64,
    task_definition: String,
    config: &RevisionConfig,
) -> DeploymentState {
    rec.controller.seq += 1;
    let id = stevedore_controllers::state::deployment_id(now, rec.controller.seq);
    let breaker = rec
        .service
        .deployment_configuration
        .as_ref()
        .and_then(breaker_of)
        .filter(|b| b.enable);
    DeploymentState {
        id: id.clone(),
        status: DeploymentStatus::Primary,
        rollout: Rollout::InProgress,
        rollout_reason: format!("ECS deployment {id} in progress."),
        outcome: Outcome::InProgress,
        outcome_reason: None,
        task_definition,
        config: config.to_value(),
        created_at: now,
        updated_at: now,
        finished_at: None,
        failed_tasks: 0,
        ever_healthy: false,
        breaker,
        sources: rec.controller.visible().map(|d| d.id.clone()).collect(),
        rollback: None,
        stop_requested: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_arns_round_trip() {
        let s = Scope::new("000000000000", "us-east-1");
        let id = "ecs-svc/0001700000000000001";
        let d = record::deployment_arn(&s, "c", "web", id);
        assert_eq!(
            d,
            "arn:aws:ecs:us-east-1:000000000000:service-deployment/c/web/0001700000000000001"
        );
        assert_eq!(
            record::parse_revision_arn(&s, "service-deployment", &d),
            Some(("c".into(), "web".into(), id.into()))
        );
        let r = record::revision_arn(&s, "c", "web", id);
        assert!(record::parse_revision_arn(&s, "service-deployment", &r).is_none());
        assert!(record::parse_revision_arn(&s, "service-revision", &r).is_some());
        let other = Scope::new("111111111111", "us-east-1");
        assert!(record::parse_revision_arn(&other, "service-revision", &r).is_none());
        assert!(record::parse_revision_arn(
            &s,
            "service-revision",
            "arn:aws:ecs:us-east-1:000000000000:service-revision/c/web/x1"
        )
        .is_none());
    }

    #[test]
    fn service_references() {
        let s = Scope::new("000000000000", "us-east-1");
        let arn = record::service_arn(&s, "c", "web");
        assert_eq!(service_name_of(&s, "c", &arn).as_deref(), Some("web"));
        assert_eq!(service_name_of(&s, "c", "web").as_deref(), Some("web"));
        assert_eq!(service_name_of(&s, "other", &arn), None);
        assert_eq!(cluster_name_for(&s, None, Some(&arn)).unwrap(), "c");
        assert_eq!(cluster_name_for(&s, Some("x"), Some(&arn)).unwrap(), "x");
        assert_eq!(cluster_name_for(&s, None, Some("web")).unwrap(), "default");
    }

    #[test]
    fn deployment_configuration_defaults_and_limits() {
        let c = merge_deployment_configuration(None, None, true).unwrap();
        assert_eq!(
            (c.maximum_percent, c.minimum_healthy_percent),
            (Some(200), Some(100))
        );
        let c = merge_deployment_configuration(None, None, false).unwrap();
        assert_eq!(
            (c.maximum_percent, c.minimum_healthy_percent),
            (Some(100), Some(0))
        );
        let bad = |g: DeploymentConfiguration, replica| {
            merge_deployment_configuration(None, Some(&g), replica).unwrap_err()
        };
        let e = bad(
            DeploymentConfiguration {
                minimum_healthy_percent: Some(101),
                ..Default::default()
            },
            true,
        );
        assert_eq!(
            e.code,
            stevedore_api::ecs::ErrorCode::InvalidParameterException.into()
        );
        let e = bad(
            DeploymentConfiguration {
                maximum_percent: Some(200),
                ..Default::default()
            },
            false,
        );
        assert!(e.message.contains("DAEMON"));
        let e = bad(
            DeploymentConfiguration {
                strategy: Some(DeploymentStrategy::BlueGreen),
                ..Default::default()
            },
            true,
        );
        assert_eq!(
            e.code,
            stevedore_api::ecs::ErrorCode::UnsupportedFeatureException.into()
        );
        // An update keeps what it does not name.
        let first = merge_deployment_configuration(
            None,
            Some(&DeploymentConfiguration {
                maximum_percent: Some(150),
                deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                    enable: Some(true),
                    rollback: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            true,
        )
        .unwrap();
        let next = merge_deployment_configuration(
            Some(&first),
            Some(&DeploymentConfiguration {
                minimum_healthy_percent: Some(50),
                ..Default::default()
            }),
            true,
        )
        .unwrap();
        assert_eq!(next.maximum_percent, Some(150));
        assert_eq!(next.minimum_healthy_percent, Some(50));
        assert_eq!(
            breaker_of(&next),
            Some(stevedore_controllers::state::Breaker {
                enable: true,
                rollback: true
            })
        );
    }
}
