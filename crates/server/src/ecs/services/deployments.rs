//! ListServiceDeployments, DescribeServiceDeployments,
//! DescribeServiceRevisions, StopServiceDeployment. One deployment is one
//! service revision; both are read from the service record's controller
//! state.

use super::record::{self, ServiceRecord};
use super::{
    cluster_name_for, config_with_defaults, load_service, ms, revision_counts, service_tasks,
    RevisionConfig,
};
use crate::db::{self, Versioned};
use crate::domain::clusters::load_any;
use crate::domain::task_definitions::resolve;
use crate::domain::tasks::tasks_in_cluster;
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use std::collections::BTreeMap;
use stevedore_api::ecs::*;
use stevedore_controllers::state::{DeploymentState, DeploymentStatus, Outcome, Rollout};
use stevedore_model::arn::Scope;
use stevedore_model::keys;

/// Service records and cluster tasks read once per request.
#[derive(Default)]
struct Cache {
    services: BTreeMap<(String, String), Option<Versioned<ServiceRecord>>>,
    tasks: BTreeMap<String, Vec<Versioned<Task>>>,
}

impl Cache {
    fn service(
        &mut self,
        cx: &Cx,
        cluster: &str,
        name: &str,
    ) -> ApiResult<Option<&Versioned<ServiceRecord>>> {
        let k = (cluster.to_string(), name.to_string());
        if !self.services.contains_key(&k) {
            let v = db::get(cx.store(), &keys::service(cx.scope(), cluster, name))?;
            self.services.insert(k.clone(), v);
        }
        Ok(self.services.get(&k).and_then(|v| v.as_ref()))
    }

    /// The service and deployment a `service-deployment` or
    /// `service-revision` ARN (`kind`) names, with the service's cluster.
    fn deployment(
        &mut self,
        cx: &Cx,
        kind: &str,
        arn: &str,
    ) -> ApiResult<Option<(String, ServiceRecord, DeploymentState)>> {
        let Some((cluster, name, id)) = record::parse_revision_arn(cx.scope(), kind, arn) else {
            return Ok(None);
        };
        let Some(rec) = self.service(cx, &cluster, &name)? else {
            return Ok(None);
        };
        let rec = rec.value.clone();
        Ok(rec
            .controller
            .deployment(&id)
            .cloned()
            .map(|d| (cluster, rec, d)))
    }

    fn tasks(&mut self, cx: &Cx, cluster: &str) -> ApiResult<&[Versioned<Task>]> {
        if !self.tasks.contains_key(cluster) {
            let t = tasks_in_cluster(cx.store(), cx.scope(), cluster)?;
            self.tasks.insert(cluster.to_string(), t);
        }
        Ok(self
            .tasks
            .get(cluster)
            .map(|v| v.as_slice())
            .unwrap_or_default())
    }
}

fn cluster_of(rec: &ServiceRecord) -> String {
    rec.service
        .cluster_arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

fn brief(scope: &Scope, rec: &ServiceRecord, d: &DeploymentState) -> ServiceDeploymentBrief {
    let cluster = cluster_of(rec);
    let name = rec.name();
    ServiceDeploymentBrief {
        service_deployment_arn: Some(record::deployment_arn(scope, &cluster, name, &d.id)),
        service_arn: rec.service.service_arn.clone(),
        cluster_arn: rec.service.cluster_arn.clone(),
        started_at: Some(ms(d.created_at)),
        created_at: Some(ms(d.created_at)),
        finished_at: d.finished_at.map(ms),
        target_service_revision_arn: Some(record::revision_arn(scope, &cluster, name, &d.id)),
        status: Some(ServiceDeploymentStatus::from(d.outcome.as_str())),
        status_reason: d.outcome_reason.clone(),
    }
}

pub async fn list_service_deployments(
    cx: Cx,
    req: ListServiceDeploymentsRequest,
) -> ApiResult<ListServiceDeploymentsResponse> {
    let given = req.service.clone().unwrap_or_default();
    let scope = cx.scope().clone();
    let limit = db::max_results(req.max_results, 20, 100)?;
    let cluster_name = cluster_name_for(&scope, req.cluster.as_deref(), Some(&given))?;
    load_any(cx.store(), &scope, Some(&cluster_name))?.ok_or_else(ApiError::cluster_not_found)?;
    let (_, v) = load_service(cx.store(), &scope, &cluster_name, &given)?
        .ok_or_else(ApiError::service_not_found)?;
    let rec = v.value;
    let after_id = match req.next_token.as_deref() {
        Some(t) => Some(format!("ecs-svc/{}", db::decode_token(t)?)),
        None => None,
    };
    let statuses = req.status.clone().unwrap_or_default();
    let after = req.created_at.as_ref().and_then(|c| c.after);
    let before = req.created_at.as_ref().and_then(|c| c.before);
    let mut all: Vec<&DeploymentState> = rec.controller.deployments.iter().collect();
    // Newest first; ids sort by creation.
    all.sort_by(|a, b| b.id.cmp(&a.id));
    let matching: Vec<&DeploymentState> = all
        .into_iter()
        .filter(|d| after_id.as_ref().is_none_or(|t| d.id < *t))
        .filter(|d| {
            statuses.is_empty() || statuses.iter().any(|s| s.as_str() == d.outcome.as_str())
        })
        .filter(|d| after.is_none_or(|a| d.created_at >= a.as_millis()))
        .filter(|d| before.is_none_or(|b| d.created_at <= b.as_millis()))
        .collect();
    let more = matching.len() > limit;
    let page: Vec<&DeploymentState> = matching.into_iter().take(limit).collect();
    let next_token = if more {
        page.last()
            .map(|d| db::encode_token(record::id_digits(&d.id)))
    } else {
        None
    };
    Ok(ListServiceDeploymentsResponse {
        service_deployments: Some(page.iter().map(|d| brief(&scope, &rec, d)).collect()),
        next_token,
    })
}

fn summary(
    scope: &Scope,
    rec: &ServiceRecord,
    tasks: &[&Task],
    id: &str,
) -> ServiceRevisionSummary {
    let cluster = cluster_of(rec);
    let arn = record::revision_arn(scope, &cluster, rec.name(), id);
    match rec.controller.deployment(id) {
        Some(d) => {
            let (requested, running, pending) = revision_counts(rec, tasks, d);
            ServiceRevisionSummary {
                arn: Some(arn),
                requested_task_count: Some(requested),
                running_task_count: Some(running),
                pending_task_count: Some(pending),
                ..Default::default()
            }
        }
        None => ServiceRevisionSummary {
            arn: Some(arn),
            ..Default::default()
        },
    }
}

fn describe_one(
    scope: &Scope,
    rec: &ServiceRecord,
    cluster_tasks: &[Versioned<Task>],
    d: &DeploymentState,
) -> ServiceDeployment {
    let cluster = cluster_of(rec);
    let name = rec.name();
    let tasks = service_tasks(cluster_tasks, name);
    let enabled = d.breaker.is_some_and(|b| b.enable);
    let breaker_status = if !enabled {
        "DISABLED"
    } else {
        match d.rollout {
            Rollout::Failed => "TRIGGERED",
            Rollout::Completed => "MONITORING_COMPLETE",
            Rollout::InProgress => "MONITORING",
        }
    };
    let terminal_stop = matches!(d.outcome, Outcome::Stopped);
    ServiceDeployment {
        service_deployment_arn: Some(record::deployment_arn(scope, &cluster, name, &d.id)),
        service_arn: rec.service.service_arn.clone(),
        cluster_arn: rec.service.cluster_arn.clone(),
        created_at: Some(ms(d.created_at)),
        started_at: Some(ms(d.created_at)),
        updated_at: Some(ms(d.updated_at)),
        finished_at: d.finished_at.map(ms),
        stopped_at: if terminal_stop {
            d.finished_at.map(ms)
        } else {
            None
        },
        status: Some(ServiceDeploymentStatus::from(d.outcome.as_str())),
        status_reason: d.outcome_reason.clone(),
        target_service_revision: Some(summary(scope, rec, &tasks, &d.id)),
        source_service_revisions: Some(
            d.sources
                .iter()
                .map(|s| summary(scope, rec, &tasks, s))
                .collect(),
        ),
        deployment_configuration: Some(config_with_defaults(&rec.service)),
        deployment_circuit_breaker: Some(ServiceDeploymentCircuitBreaker {
            status: Some(ServiceDeploymentRollbackMonitorsStatus::from(
                breaker_status,
            )),
            failure_count: Some(d.failed_tasks as i32),
            threshold: Some(stevedore_controllers::service::breaker_threshold(
                rec.service.desired_count.unwrap_or(0).max(0) as u32,
            ) as i32),
        }),
        alarms: Some(ServiceDeploymentAlarms {
            status: Some(ServiceDeploymentRollbackMonitorsStatus::Disabled),
            ..Default::default()
        }),
        rollback: d.rollback.as_ref().map(|r| Rollback {
            reason: Some(r.reason.clone()),
            started_at: Some(ms(r.started_at)),
            service_revision_arn: Some(record::revision_arn(
                scope,
                &cluster,
                name,
                &r.to_deployment,
            )),
        }),
        ..Default::default()
    }
}

fn check_count(n: usize, what: &str) -> ApiResult<()> {
    if n == 0 || n > 20 {
        return Err(ApiError::invalid(format!(
            "{what} must name 1 to 20 ARNs; {n} were given."
        )));
    }
    Ok(())
}

fn missing(arn: &str) -> Failure {
    crate::ecs::missing(arn, |a| a.to_string())
}

pub async fn describe_service_deployments(
    cx: Cx,
    req: DescribeServiceDeploymentsRequest,
) -> ApiResult<DescribeServiceDeploymentsResponse> {
    let arns = req.service_deployment_arns.clone().unwrap_or_default();
    check_count(arns.len(), "serviceDeploymentArns")?;
    let scope = cx.scope().clone();
    let mut cache = Cache::default();
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for arn in &arns {
        let Some((cluster, rec, d)) = cache.deployment(&cx, "service-deployment", arn)? else {
            failures.push(missing(arn));
            continue;
        };
        let tasks = cache.tasks(&cx, &cluster)?;
        out.push(describe_one(&scope, &rec, tasks, &d));
    }
    Ok(DescribeServiceDeploymentsResponse {
        service_deployments: Some(out),
        failures: Some(failures),
    })
}

pub async fn describe_service_revisions(
    cx: Cx,
    req: DescribeServiceRevisionsRequest,
) -> ApiResult<DescribeServiceRevisionsResponse> {
    let arns = req.service_revision_arns.clone().unwrap_or_default();
    check_count(arns.len(), "serviceRevisionArns")?;
    let scope = cx.scope().clone();
    let mut cache = Cache::default();
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for arn in &arns {
        let Some((_, rec, d)) = cache.deployment(&cx, "service-revision", arn)? else {
            failures.push(missing(arn));
            continue;
        };
        let cfg = RevisionConfig::of(&d);
        let images = resolve(cx.store(), &scope, &d.task_definition)?
            .map(|(_, v)| {
                v.value
                    .definition
                    .container_definitions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| ContainerImage {
                        container_name: c.name,
                        image: c.image,
                        image_digest: None,
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        out.push(ServiceRevision {
            service_revision_arn: Some(arn.clone()),
            service_arn: rec.service.service_arn.clone(),
            cluster_arn: rec.service.cluster_arn.clone(),
            task_definition: Some(d.task_definition.clone()),
            launch_type: cfg.launch_type,
            capacity_provider_strategy: cfg.capacity_provider_strategy,
            platform_family: cfg.platform_version.as_ref().map(|_| "Linux".into()),
            platform_version: cfg.platform_version,
            network_configuration: cfg.network_configuration,
            created_at: Some(ms(d.created_at)),
            container_images: Some(images),
            guard_duty_enabled: Some(false),
            ..Default::default()
        });
    }
    Ok(DescribeServiceRevisionsResponse {
        service_revisions: Some(out),
        failures: Some(failures),
    })
}

fn deployment_not_found(arn: &str) -> ApiError {
    ApiError::new(
        stevedore_api::ecs::ErrorCode::ServiceDeploymentNotFoundException,
        format!("The service deployment {arn} was not found."),
    )
}

pub async fn stop_service_deployment(
    cx: Cx,
    req: StopServiceDeploymentRequest,
) -> ApiResult<StopServiceDeploymentResponse> {
    let arn = req.service_deployment_arn.clone().unwrap_or_default();
    let stop_type = req
        .stop_type
        .clone()
        .unwrap_or(StopServiceDeploymentStopType::Rollback);
    let scope = cx.scope().clone();
    let (cluster, name, id) = record::parse_revision_arn(&scope, "service-deployment", &arn)
        .ok_or_else(|| deployment_not_found(&arn))?;
    let key = keys::service(&scope, &cluster, &name);
    let now = cx.now.as_millis();
    for _ in 0..db::MAX_CAS_RETRIES {
        let v = db::get::<ServiceRecord>(cx.store(), &key)?
            .ok_or_else(|| deployment_not_found(&arn))?;
        let mut rec = v.value;
        let d = rec
            .controller
            .deployment(&id)
            .ok_or_else(|| deployment_not_found(&arn))?;
        let stoppable = d.status == DeploymentStatus::Primary
            && d.rollout == Rollout::InProgress
            && d.stop_requested.is_none()
            && d.outcome == Outcome::InProgress
            && rec.service.status.as_deref() == Some("ACTIVE");
        if !stoppable {
            return Err(ApiError::new(
 stevedore_api::ecs::ErrorCode::ConflictException,
                format!(
                    "The service deployment is {} (rollout {}); only the in-progress deployment of an ACTIVE service can be stopped.",
                    d.outcome.as_str(),
                    d.rollout.as_str()
                ),
            ));
        }
        let rollback = stop_type == StopServiceDeploymentStopType::Rollback;
        if rollback
            && !rec
                .controller
                .deployments
                .iter()
                .any(|o| o.id != id && o.rollout == Rollout::Completed)
        {
            return Err(ApiError::invalid(
                "stopType ROLLBACK needs an earlier deployment of this service that completed, and there is none. Use stopType ABORT, or UpdateService to deploy another revision.",
            ));
        }
        if let Some(d) = rec.controller.deployments.iter_mut().find(|d| d.id == id) {
            d.stop_requested = Some(stop_type.as_str().to_string());
            d.outcome = if rollback {
                Outcome::RollbackRequested
            } else {
                Outcome::StopRequested
            };
            d.updated_at = now;
        }
        rec.controller.steady = false;
        if db::commit(
            cx.store(),
            vec![db::unchanged(&key, v.mod_revision)],
            vec![db::put(&key, &rec)],
        )
        .await?
        {
            return Ok(StopServiceDeploymentResponse {
                service_deployment_arn: Some(arn),
            });
        }
    }
    Err(db::contention())
}
