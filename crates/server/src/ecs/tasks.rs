//! Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks.
//!
//! A task record is the ECS `Task` shape, stored whole. Launching and
//! stopping are the domain's (`crate::domain::launch`, `crate::domain::stop`);
//! these handlers check the request's own rules and shape the answers.

use crate::db;
use crate::domain::clusters::{load_active, load_any};
use crate::domain::instances::load_instance;
use crate::domain::launch::{self, LaunchRequest, Target};
use crate::domain::stop::{self, StopReason};
use crate::domain::tasks::load_task;
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use stevedore_api::ecs::*;
use stevedore_model::arn::child_id;
use stevedore_model::keys;

fn view(task: &Task, with_tags: bool) -> Task {
    let mut t = task.clone();
    if !with_tags {
        t.tags = None;
    }
    t
}

pub async fn run_task(cx: Cx, req: RunTaskRequest) -> ApiResult<RunTaskResponse> {
    let count = req.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid(format!(
            "count must be between 1 and 10; it was {count}."
        )));
    }
    if req.reference_id.is_some() {
        // Nothing in Stevedore reads a reference id yet (ECS passes it to
        // EventBridge), so it is refused rather than stored and ignored.
        return Err(ApiError::unsupported(
            "referenceId is not supported by Stevedore; remove it from the RunTask request.",
        ));
    }
    let env = cx.launch_env();
    let l = launch::prepare(
        &env,
        LaunchRequest {
            cluster: req.cluster,
            task_definition: req.task_definition.unwrap_or_default(),
            allow_inactive_task_definition: false,
            launch_type: req.launch_type,
            capacity_provider_strategy: req.capacity_provider_strategy,
            platform_version: req.platform_version,
            overrides: req.overrides,
            group: req.group,
            started_by: req.started_by,
            tags: req.tags.unwrap_or_default(),
            enable_ecs_managed_tags: req.enable_ecs_managed_tags == Some(true),
            propagate_tags: req.propagate_tags,
            network_configuration: req.network_configuration,
            enable_execute_command: req.enable_execute_command == Some(true),
            volume_configurations: req.volume_configurations.unwrap_or_default(),
            placement_strategy: req.placement_strategy.unwrap_or_default(),
            placement_constraints: req.placement_constraints.unwrap_or_default(),
            target: Target::Cluster {
                count: count as usize,
                client_token: req.client_token,
            },
        },
    )?;
    let out = launch::launch(&env, &l).await?;
    Ok(RunTaskResponse {
        tasks: Some(out.tasks.iter().map(|t| view(t, true)).collect()),
        failures: Some(out.failures),
    })
}

pub async fn start_task(cx: Cx, req: StartTaskRequest) -> ApiResult<StartTaskResponse> {
    let given = req.container_instances.clone().unwrap_or_default();
    if given.is_empty() || given.len() > 10 {
        return Err(ApiError::invalid(
            "containerInstances must name 1 to 10 container instances.",
        ));
    }
    let env = cx.launch_env();
    let l = launch::prepare(
        &env,
        LaunchRequest {
            cluster: req.cluster,
            task_definition: req.task_definition.unwrap_or_default(),
            allow_inactive_task_definition: false,
            launch_type: None,
            capacity_provider_strategy: None,
            platform_version: None,
            overrides: req.overrides,
            group: req.group,
            started_by: req.started_by,
            tags: req.tags.unwrap_or_default(),
            enable_ecs_managed_tags: req.enable_ecs_managed_tags == Some(true),
            propagate_tags: req.propagate_tags,
            network_configuration: req.network_configuration,
            enable_execute_command: req.enable_execute_command == Some(true),
            volume_configurations: req.volume_configurations.unwrap_or_default(),
            placement_strategy: Vec::new(),
            placement_constraints: Vec::new(),
            target: Target::EachInstance(given),
        },
    )?;
    let out = launch::launch(&env, &l).await?;
    Ok(StartTaskResponse {
        tasks: Some(out.tasks.iter().map(|t| view(t, true)).collect()),
        failures: Some(out.failures),
    })
}

pub async fn stop_task(cx: Cx, req: StopTaskRequest) -> ApiResult<StopTaskResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let given = req.task.clone().unwrap_or_default();
    if let Some(r) = &req.reason {
        if r.len() > 255 {
            return Err(ApiError::invalid("reason must be at most 255 characters."));
        }
    }
    let not_found = || ApiError::invalid(format!("The referenced task was not found: {given}"));
    let id = child_id(cx.scope(), "task", &cluster_name, &given).ok_or_else(not_found)?;
    let why = StopReason {
        code: TaskStopCode::UserInitiated,
        reason: req
            .reason
            .clone()
            .unwrap_or_else(|| "Task stopped by user".into()),
    };
    let t = stop::stop_task(cx.store(), cx.scope(), &cluster_name, &id, why, cx.now)
        .await?
        .ok_or_else(not_found)?;
    Ok(StopTaskResponse {
        task: Some(view(&t, false)),
    })
}

pub async fn describe_tasks(cx: Cx, req: DescribeTasksRequest) -> ApiResult<DescribeTasksResponse> {
    let cluster = load_any(cx.store(), cx.scope(), req.cluster.as_deref())?
        .ok_or_else(ApiError::cluster_not_found)?
        .value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let given = req.tasks.clone().unwrap_or_default();
    if given.len() > 100 {
        return Err(ApiError::invalid("tasks can name at most 100 tasks."));
    }
    let with_tags = req
        .include
        .as_deref()
        .unwrap_or_default()
        .contains(&TaskField::Tags);
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for g in &given {
        match load_task(cx.store(), cx.scope(), &cluster_name, g)? {
            Some((_, v)) => tasks.push(view(&v.value, with_tags)),
            None => failures.push(super::missing(g, |id| {
                cx.scope().task_arn(&cluster_name, id)
            })),
        }
    }
    Ok(DescribeTasksResponse {
        tasks: Some(tasks),
        failures: Some(failures),
    })
}

pub async fn list_tasks(cx: Cx, req: ListTasksRequest) -> ApiResult<ListTasksResponse> {
    let cluster = load_active(cx.store(), cx.scope(), req.cluster.as_deref())?.value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let limit = db::max_results(req.max_results, 100, 100)?;
    if req.daemon_name.is_some() {
        return Err(ApiError::unsupported(
            "daemonName: daemons are not supported.",
        ));
    }
    let service_group = match &req.service_name {
        None => None,
        Some(s) => {
            let (_, v) = super::services::load_service(cx.store(), cx.scope(), &cluster_name, s)?
                .ok_or_else(ApiError::service_not_found)?;
            Some(super::services::record::service_group(v.value.name()))
        }
    };
    let instance_arn = match req.container_instance.as_deref() {
        None => None,
        Some(g) => Some(
            load_instance(cx.store(), cx.scope(), &cluster_name, g)?
                .map(|(_, v)| v.value.instance.container_instance_arn.unwrap_or_default())
                .ok_or_else(|| ApiError::invalid(format!("Container instance {g} not found.")))?,
        ),
    };
    let desired = req.desired_status.clone().unwrap_or(DesiredStatus::Running);
    let family = req.family.clone();
    let prefix = keys::cluster_children_prefix(cx.scope(), &cluster_name, keys::KIND_TASK);
    let page = db::page(
        cx.store(),
        &prefix,
        req.next_token.as_deref(),
        limit,
        false,
        |kv| {
            let t: Task = db::decode(kv)?;
            // ECS lists PENDING-desired tasks under RUNNING too.
            let d = DesiredStatus::from(t.desired_status.as_deref().unwrap_or_default());
            let desired_ok =
                d == desired || (desired == DesiredStatus::Running && d == DesiredStatus::Pending);
            let family_ok = family.as_deref().is_none_or(|f| {
                t.task_definition_arn
                    .as_deref()
                    .and_then(|a| a.rsplit('/').next())
                    .and_then(|fr| fr.rsplit_once(':'))
                    .is_some_and(|(fam, _)| fam == f)
            });
            Ok(desired_ok
                && family_ok
                && service_group
                    .as_deref()
                    .is_none_or(|g| t.group.as_deref() == Some(g))
                && instance_arn
                    .as_deref()
                    .is_none_or(|i| t.container_instance_arn.as_deref() == Some(i))
                && req
                    .started_by
                    .as_deref()
                    .is_none_or(|s| t.started_by.as_deref() == Some(s))
                && req
                    .launch_type
                    .as_ref()
                    .is_none_or(|lt| t.launch_type.as_ref() == Some(lt)))
        },
    )?;
    let mut arns = Vec::new();
    for kv in &page.kvs {
        let t: Task = db::decode(kv)?;
        arns.push(t.task_arn.unwrap_or_default());
    }
    Ok(ListTasksResponse {
        task_arns: Some(arns),
        next_token: page.next_token,
    })
}
