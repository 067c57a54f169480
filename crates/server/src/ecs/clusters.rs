//! Clusters: CreateCluster, DescribeClusters, ListClusters, DeleteCluster,
//! UpdateCluster, UpdateClusterSettings, PutClusterCapacityProviders.

use crate::db::{self, Versioned};
use crate::domain::clusters::{is_active, load_active, load_any};
use crate::error::{ApiError, ApiResult};
use crate::live_tasks::last_status;
use crate::state::Cx;
use stevedore_api::agent::TaskStatus;
use stevedore_api::ecs::*;
use stevedore_model::arn::Scope;
use stevedore_model::{keys, tags as tag_rules, taskdef::valid_name};
use stevedore_store::Store;

/// The capacity providers a cluster can name. Stevedore hosts serve both
/// Fargate providers; FARGATE_SPOT tasks are never interrupted here.
pub const BUILTIN_CAPACITY_PROVIDERS: &[&str] = &["FARGATE", "FARGATE_SPOT"];

/// Live counts of a cluster's children, computed from the store every
/// time; nothing is cached that could drift.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClusterCounts {
    pub registered_instances: i32,
    pub running_tasks: i32,
    pub pending_tasks: i32,
    pub active_services: i32,
    pub draining_services: i32,
    pub running_ec2: i32,
    pub running_fargate: i32,
    pub pending_ec2: i32,
    pub pending_fargate: i32,
    pub active_ec2_services: i32,
    pub active_fargate_services: i32,
    pub draining_ec2_services: i32,
    pub draining_fargate_services: i32,
    /// Tasks whose last status is not STOPPED (the live-task index).
    pub live_tasks: i32,
}

fn str_field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v.get(name).and_then(|s| s.as_str()).unwrap_or("")
}

/// Children are read as loose JSON: the task, service and instance records
/// carry the ECS field names (`lastStatus`, `status`, `launchType`).
pub fn cluster_counts(store: &dyn Store, scope: &Scope, cluster: &str) -> ApiResult<ClusterCounts> {
    let mut c = ClusterCounts::default();
    let scan = |kind: &str, f: &mut dyn FnMut(&serde_json::Value)| -> ApiResult<()> {
        let prefix = keys::cluster_children_prefix(scope, cluster, kind);
        let page = db::page(store, &prefix, None, usize::MAX, false, |_| Ok(true))?;
        for kv in &page.kvs {
            let v: serde_json::Value = db::decode(kv)?;
            f(&v);
        }
        Ok(())
    };
    scan(keys::KIND_INSTANCE, &mut |v| {
        if matches!(
            ContainerInstanceStatus::from(str_field(v, "status")),
            ContainerInstanceStatus::Active | ContainerInstanceStatus::Draining
        ) {
            c.registered_instances += 1;
        }
    })?;
    // Only live tasks count; the index spares reading the stopped history.
    for t in crate::live_tasks::live_tasks(store, scope, cluster)? {
        let t = t.value;
        let fargate = t.launch_type == Some(LaunchType::Fargate);
        c.live_tasks += 1;
        match last_status(&t) {
            TaskStatus::Running => {
                c.running_tasks += 1;
                if fargate {
                    c.running_fargate += 1
                } else {
                    c.running_ec2 += 1
                }
            }
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating => {
                c.pending_tasks += 1;
                if fargate {
                    c.pending_fargate += 1
                } else {
                    c.pending_ec2 += 1
                }
            }
            _ => {}
        }
    }
    scan(keys::KIND_SERVICE, &mut |v| {
        let fargate = LaunchType::from(str_field(v, "launchType")) == LaunchType::Fargate;
        match str_field(v, "status") {
            "ACTIVE" => {
                c.active_services += 1;
                if fargate {
                    c.active_fargate_services += 1
                } else {
                    c.active_ec2_services += 1
                }
            }
            "DRAINING" => {
                c.draining_services += 1;
                if fargate {
                    c.draining_fargate_services += 1
                } else {
                    c.draining_ec2_services += 1
                }
            }
            _ => {}
        }
    })?;
    Ok(c)
}

fn kv(name: &str, value: i32) -> KeyValuePair {
    KeyValuePair {
        name: Some(name.to_string()),
        value: Some(value.to_string()),
    }
}

/// The cluster as DescribeClusters shows it: stored fields, live counts,
/// and the optional sections the caller asked for.
fn view(
    store: &dyn Store,
    scope: &Scope,
    stored: &Cluster,
    include: &[ClusterField],
) -> ApiResult<Cluster> {
    let mut c = stored.clone();
    let name = c.cluster_name.clone().unwrap_or_default();
    let counts = cluster_counts(store, scope, &name)?;
    c.registered_container_instances_count = Some(counts.registered_instances);
    c.running_tasks_count = Some(counts.running_tasks);
    c.pending_tasks_count = Some(counts.pending_tasks);
    c.active_services_count = Some(counts.active_services);
    let has = |f: ClusterField| include.contains(&f);
    if has(ClusterField::Statistics) {
        c.statistics = Some(vec![
            kv("runningEC2TasksCount", counts.running_ec2),
            kv("runningFargateTasksCount", counts.running_fargate),
            kv("pendingEC2TasksCount", counts.pending_ec2),
            kv("pendingFargateTasksCount", counts.pending_fargate),
            kv("activeEC2ServiceCount", counts.active_ec2_services),
            kv("activeFargateServiceCount", counts.active_fargate_services),
            kv("drainingEC2ServiceCount", counts.draining_ec2_services),
            kv(
                "drainingFargateServiceCount",
                counts.draining_fargate_services,
            ),
        ]);
    }
    if !has(ClusterField::Tags) {
        c.tags = None;
    } else if c.tags.is_none() {
        c.tags = Some(Vec::new());
    }
    if !has(ClusterField::Settings) {
        c.settings = None;
    }
    if !has(ClusterField::Configurations) {
        c.configuration = None;
    }
    if has(ClusterField::Attachments) {
        // Attachments are capacity-provider resources (ASGs); Stevedore has
        // none, so the truthful answer is an empty list.
        c.attachments = Some(Vec::new());
    }
    Ok(c)
}

/// ECS answers mutating calls with the cluster's settings and
/// configuration but without tags or statistics.
fn mutation_view(store: &dyn Store, scope: &Scope, stored: &Cluster) -> ApiResult<Cluster> {
    view(
        store,
        scope,
        stored,
        &[ClusterField::Settings, ClusterField::Configurations],
    )
}

fn validate_settings(settings: &[ClusterSetting]) -> ApiResult<()> {
    for s in settings {
        let value = s.value.as_deref().unwrap_or("");
        match value {
            "disabled" => {}
            "enabled" | "enhanced" => {
                return Err(ApiError::unsupported(format!(
                    "containerInsights={value} is not supported: Stevedore does not publish Container Insights metrics. Set it to 'disabled' or leave it out."
                )))
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "Invalid value '{other}' for cluster setting containerInsights; valid values are enabled, enhanced and disabled."
                )))
            }
        }
    }
    Ok(())
}

fn validate_configuration(cfg: &ClusterConfiguration) -> ApiResult<()> {
    if let Some(ms) = &cfg.managed_storage_configuration {
        if ms.kms_key_id.is_some() || ms.fargate_ephemeral_storage_kms_key_id.is_some() {
            return Err(ApiError::unsupported(
                "managedStorageConfiguration KMS keys are not supported: Stevedore has no KMS. Leave managedStorageConfiguration out.",
            ));
        }
    }
    if let Some(ec) = &cfg.execute_command_configuration {
        if ec.kms_key_id.is_some() {
            return Err(ApiError::unsupported(
                "executeCommandConfiguration.kmsKeyId is not supported: Stevedore has no KMS.",
            ));
        }
        if matches!(ec.logging, Some(ExecuteCommandLogging::Override))
            || ec.log_configuration.is_some()
        {
            return Err(ApiError::unsupported(
                "executeCommandConfiguration logging OVERRIDE / logConfiguration is not supported yet. Use logging DEFAULT or NONE.",
            ));
        }
    }
    Ok(())
}

fn reject_service_connect(given: &Option<ClusterServiceConnectDefaultsRequest>) -> ApiResult<()> {
    if given.is_some() {
        return Err(ApiError::unsupported(
            "serviceConnectDefaults needs Service Connect and a Cloud Map namespace, which Stevedore does not provide yet.",
        ));
    }
    Ok(())
}

fn validate_capacity(
    providers: &[String],
    strategy: &[CapacityProviderStrategyItem],
) -> ApiResult<()> {
    for p in providers {
        if !BUILTIN_CAPACITY_PROVIDERS.contains(&p.as_str()) {
            return Err(ApiError::invalid(format!(
                "The capacity provider '{p}' does not exist. Stevedore clusters can use FARGATE and FARGATE_SPOT."
            )));
        }
    }
    let mut with_base = 0;
    for item in strategy {
        let name = item.capacity_provider.as_deref().unwrap_or("");
        if !providers.iter().any(|p| p == name) {
            return Err(ApiError::invalid(format!(
                "The default capacity provider strategy names '{name}', which is not one of the cluster's capacity providers ({}).",
                providers.join(", ")
            )));
        }
        if item.base.unwrap_or(0) > 0 {
            with_base += 1;
        }
    }
    if with_base > 1 {
        return Err(ApiError::invalid(
            "Only one capacity provider in a strategy can have a base defined.",
        ));
    }
    if !strategy.is_empty() && strategy.iter().all(|i| i.weight.unwrap_or(0) == 0) {
        return Err(ApiError::invalid(
            "At least one capacity provider in a strategy must have a weight greater than 0.",
        ));
    }
    Ok(())
}

pub async fn create_cluster(cx: Cx, req: CreateClusterRequest) -> ApiResult<CreateClusterResponse> {
    let name = req
        .cluster_name
        .clone()
        .unwrap_or_else(|| "default".to_string());
    if !valid_name(&name) {
        return Err(ApiError::invalid(format!(
            "Invalid cluster name '{name}': up to 255 letters (uppercase and lowercase), numbers, underscores and hyphens are allowed."
        )));
    }
    let tags = tag_rules::validate(req.tags.as_deref().unwrap_or_default())?;
    let settings = req.settings.clone().unwrap_or_else(|| {
        vec![ClusterSetting {
            name: Some(ClusterSettingName::ContainerInsights),
            value: Some("disabled".into()),
        }]
    });
    validate_settings(&settings)?;
    if let Some(cfg) = &req.configuration {
        validate_configuration(cfg)?;
    }
    reject_service_connect(&req.service_connect_defaults)?;
    let providers = req.capacity_providers.clone().unwrap_or_default();
    let strategy = req
        .default_capacity_provider_strategy
        .clone()
        .unwrap_or_default();
    validate_capacity(&providers, &strategy)?;

    let scope = cx.scope().clone();
    let key = keys::cluster(&scope, &name);
    for _ in 0..db::MAX_CAS_RETRIES {
        let existing: Option<Versioned<Cluster>> = db::get(cx.store(), &key)?;
        if let Some(v) = &existing {
            // Idempotent on name: an ACTIVE cluster is returned as it is.
            if is_active(&v.value) {
                return Ok(CreateClusterResponse {
                    cluster: Some(mutation_view(cx.store(), &scope, &v.value)?),
                });
            }
        }
        let cluster = Cluster {
            cluster_arn: Some(scope.cluster_arn(&name)),
            cluster_name: Some(name.clone()),
            status: Some("ACTIVE".into()),
            configuration: req.configuration.clone(),
            settings: Some(settings.clone()),
            tags: Some(tags.clone()),
            capacity_providers: Some(providers.clone()),
            default_capacity_provider_strategy: Some(strategy.clone()),
            ..Default::default()
        };
        let rev = existing.as_ref().map(|v| v.mod_revision).unwrap_or(0);
        if db::commit(
            cx.store(),
            vec![db::unchanged(&key, rev)],
            vec![db::put(&key, &cluster)],
        )
        .await?
        {
            return Ok(CreateClusterResponse {
                cluster: Some(mutation_view(cx.store(), &scope, &cluster)?),
            });
        }
    }
    Err(db::contention())
}

pub async fn describe_clusters(
    cx: Cx,
    req: DescribeClustersRequest,
) -> ApiResult<DescribeClustersResponse> {
    let names = req
        .clusters
        .clone()
        .unwrap_or_else(|| vec!["default".to_string()]);
    if names.len() > 100 {
        return Err(ApiError::invalid(format!(
            "clusters can name at most 100 clusters; {} were given.",
            names.len()
        )));
    }
    let include = req.include.clone().unwrap_or_default();
    let scope = cx.scope();
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for given in &names {
        match load_any(cx.store(), scope, Some(given))? {
            Some(v) => clusters.push(view(cx.store(), scope, &v.value, &include)?),
            None => failures.push(super::missing(given, |n| scope.cluster_arn(n))),
        }
    }
    Ok(DescribeClustersResponse {
        clusters: Some(clusters),
        failures: Some(failures),
    })
}

pub async fn list_clusters(cx: Cx, req: ListClustersRequest) -> ApiResult<ListClustersResponse> {
    let limit = db::max_results(req.max_results, 100, 100)?;
    let prefix = keys::clusters_prefix(cx.scope());
    let page = db::page(
        cx.store(),
        &prefix,
        req.next_token.as_deref(),
        limit,
        false,
        |kv| {
            let c: Cluster = db::decode(kv)?;
            Ok(is_active(&c))
        },
    )?;
    let mut arns = Vec::with_capacity(page.kvs.len());
    for kv in &page.kvs {
        let c: Cluster = db::decode(kv)?;
        arns.push(c.cluster_arn.unwrap_or_default());
    }
    Ok(ListClustersResponse {
        cluster_arns: Some(arns),
        next_token: page.next_token,
    })
}

pub async fn delete_cluster(cx: Cx, req: DeleteClusterRequest) -> ApiResult<DeleteClusterResponse> {
    let scope = cx.scope().clone();
    for _ in 0..db::MAX_CAS_RETRIES {
        let v = load_any(cx.store(), &scope, req.cluster.as_deref())?
            .ok_or_else(ApiError::cluster_not_found)?;
        if !is_active(&v.value) {
            // Deleting an inactive cluster again is answered with the
            // cluster as it is, the way ECS treats repeated deletes.
            return Ok(DeleteClusterResponse {
                cluster: Some(mutation_view(cx.store(), &scope, &v.value)?),
            });
        }
        let name = v.value.cluster_name.clone().unwrap_or_default();
        let counts = cluster_counts(cx.store(), &scope, &name)?;
        if counts.registered_instances > 0 {
            return Err(ApiError::new(
                stevedore_api::ecs::ErrorCode::ClusterContainsContainerInstancesException,
                "The Cluster cannot be deleted while Container Instances are active or draining.",
            ));
        }
        if counts.active_services + counts.draining_services > 0 {
            return Err(ApiError::new(
                stevedore_api::ecs::ErrorCode::ClusterContainsServicesException,
                "The Cluster cannot be deleted while Services are active.",
            ));
        }
        if counts.live_tasks > 0 {
            return Err(ApiError::new(
                stevedore_api::ecs::ErrorCode::ClusterContainsTasksException,
                "The Cluster cannot be deleted while Tasks are active.",
            ));
        }
        let mut c = v.value.clone();
        c.status = Some("INACTIVE".into());
        let key = keys::cluster(&scope, &name);
        if db::commit(
            cx.store(),
            vec![db::unchanged(&key, v.mod_revision)],
            vec![db::put(&key, &c)],
        )
        .await?
        {
            return Ok(DeleteClusterResponse {
                cluster: Some(mutation_view(cx.store(), &scope, &c)?),
            });
        }
    }
    Err(db::contention())
}

/// Read-modify-write of an ACTIVE cluster with compare-and-set.
async fn modify<F>(cx: &Cx, given: Option<&str>, mut f: F) -> ApiResult<Cluster>
where
    F: FnMut(&mut Cluster) -> ApiResult<()>,
{
    let scope = cx.scope().clone();
    for _ in 0..db::MAX_CAS_RETRIES {
        let v = load_active(cx.store(), cx.scope(), given)?;
        let mut c = v.value.clone();
        f(&mut c)?;
        let key = keys::cluster(&scope, c.cluster_name.as_deref().unwrap_or_default());
        if db::commit(
            cx.store(),
            vec![db::unchanged(&key, v.mod_revision)],
            vec![db::put(&key, &c)],
        )
        .await?
        {
            return mutation_view(cx.store(), &scope, &c);
        }
    }
    Err(db::contention())
}

fn merge_settings(c: &mut Cluster, new: &[ClusterSetting]) {
    let settings = c.settings.get_or_insert_with(Vec::new);
    for s in new {
        match settings.iter_mut().find(|o| o.name == s.name) {
            Some(o) => o.value = s.value.clone(),
            None => settings.push(s.clone()),
        }
    }
}

pub async fn update_cluster(cx: Cx, req: UpdateClusterRequest) -> ApiResult<UpdateClusterResponse> {
    if let Some(s) = &req.settings {
        validate_settings(s)?;
    }
    if let Some(cfg) = &req.configuration {
        validate_configuration(cfg)?;
    }
    reject_service_connect(&req.service_connect_defaults)?;
    let c = modify(&cx, req.cluster.as_deref(), |c| {
        if let Some(s) = &req.settings {
            merge_settings(c, s);
        }
        if let Some(cfg) = &req.configuration {
            c.configuration = Some(cfg.clone());
        }
        Ok(())
    })
    .await?;
    Ok(UpdateClusterResponse { cluster: Some(c) })
}

pub async fn update_cluster_settings(
    cx: Cx,
    req: UpdateClusterSettingsRequest,
) -> ApiResult<UpdateClusterSettingsResponse> {
    let settings = req.settings.clone().unwrap_or_default();
    validate_settings(&settings)?;
    let c = modify(&cx, req.cluster.as_deref(), |c| {
        merge_settings(c, &settings);
        Ok(())
    })
    .await?;
    Ok(UpdateClusterSettingsResponse { cluster: Some(c) })
}

pub async fn put_cluster_capacity_providers(
    cx: Cx,
    req: PutClusterCapacityProvidersRequest,
) -> ApiResult<PutClusterCapacityProvidersResponse> {
    let providers = req.capacity_providers.clone().unwrap_or_default();
    let strategy = req
        .default_capacity_provider_strategy
        .clone()
        .unwrap_or_default();
    validate_capacity(&providers, &strategy)?;
    let c = modify(&cx, req.cluster.as_deref(), |c| {
        c.capacity_providers = Some(providers.clone());
        c.default_capacity_provider_strategy = Some(strategy.clone());
        Ok(())
    })
    .await?;
    Ok(PutClusterCapacityProvidersResponse { cluster: Some(c) })
}
