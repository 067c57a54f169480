//! ECS operations. Each handler takes the request context and the typed
//! input and returns the typed output; `dispatch` is the only place that
//! sees bytes.

mod account_settings;
mod attributes;
mod clusters;
mod instances;
pub mod services;
mod tags;
mod task_definitions;
mod tasks;

use crate::error::{ApiError, ApiResult};
use crate::operation::{call, Wire};
use crate::state::Cx;
use stevedore_api::ecs::{Failure, Operation};

pub use clusters::ClusterCounts;

/// The `failures` entry ECS gives for a name or ARN that matched nothing:
/// the ARN as given, or the ARN the name would have.
pub(crate) fn missing(given: &str, arn_of_name: impl FnOnce(&str) -> String) -> Failure {
    Failure {
        arn: Some(if given.starts_with("arn:") {
            given.to_string()
        } else {
            arn_of_name(given)
        }),
        reason: Some("MISSING".into()),
        detail: None,
    }
}

/// Operations this build serves. Everything else in the model answers
/// UnsupportedFeatureException, never a fake success.
pub const IMPLEMENTED: &[Operation] = &[
    Operation::CreateCluster,
    Operation::DescribeClusters,
    Operation::ListClusters,
    Operation::DeleteCluster,
    Operation::UpdateCluster,
    Operation::UpdateClusterSettings,
    Operation::PutClusterCapacityProviders,
    Operation::RegisterTaskDefinition,
    Operation::DescribeTaskDefinition,
    Operation::ListTaskDefinitions,
    Operation::ListTaskDefinitionFamilies,
    Operation::DeregisterTaskDefinition,
    Operation::DeleteTaskDefinitions,
    Operation::TagResource,
    Operation::UntagResource,
    Operation::ListTagsForResource,
    Operation::PutAccountSetting,
    Operation::PutAccountSettingDefault,
    Operation::ListAccountSettings,
    Operation::DeleteAccountSetting,
    Operation::RegisterContainerInstance,
    Operation::DescribeContainerInstances,
    Operation::ListContainerInstances,
    Operation::DeregisterContainerInstance,
    Operation::DiscoverPollEndpoint,
    Operation::RunTask,
    Operation::StartTask,
    Operation::StopTask,
    Operation::DescribeTasks,
    Operation::ListTasks,
    Operation::PutAttributes,
    Operation::DeleteAttributes,
    Operation::ListAttributes,
    Operation::UpdateContainerInstancesState,
    Operation::CreateService,
    Operation::UpdateService,
    Operation::DeleteService,
    Operation::DescribeServices,
    Operation::ListServices,
    Operation::ListServiceDeployments,
    Operation::DescribeServiceDeployments,
    Operation::DescribeServiceRevisions,
    Operation::StopServiceDeployment,
    Operation::UpdateTaskProtection,
    Operation::GetTaskProtection,
];

pub(crate) async fn dispatch(cx: Cx, op: Operation, wire: Wire<'_>) -> ApiResult<Vec<u8>> {
    use Operation as O;
    match op {
        O::CreateCluster => call(cx, wire, clusters::create_cluster).await,
        O::DescribeClusters => call(cx, wire, clusters::describe_clusters).await,
        O::ListClusters => call(cx, wire, clusters::list_clusters).await,
        O::DeleteCluster => call(cx, wire, clusters::delete_cluster).await,
        O::UpdateCluster => call(cx, wire, clusters::update_cluster).await,
        O::UpdateClusterSettings => call(cx, wire, clusters::update_cluster_settings).await,
        O::PutClusterCapacityProviders => {
            call(cx, wire, clusters::put_cluster_capacity_providers).await
        }
        O::RegisterTaskDefinition => call(cx, wire, task_definitions::register).await,
        O::DescribeTaskDefinition => call(cx, wire, task_definitions::describe).await,
        O::ListTaskDefinitions => call(cx, wire, task_definitions::list).await,
        O::ListTaskDefinitionFamilies => call(cx, wire, task_definitions::list_families).await,
        O::DeregisterTaskDefinition => call(cx, wire, task_definitions::deregister).await,
        O::DeleteTaskDefinitions => call(cx, wire, task_definitions::delete).await,
        O::TagResource => call(cx, wire, tags::tag_resource).await,
        O::UntagResource => call(cx, wire, tags::untag_resource).await,
        O::ListTagsForResource => call(cx, wire, tags::list_tags_for_resource).await,
        O::PutAccountSetting => call(cx, wire, account_settings::put).await,
        O::PutAccountSettingDefault => call(cx, wire, account_settings::put_default).await,
        O::ListAccountSettings => call(cx, wire, account_settings::list).await,
        O::DeleteAccountSetting => call(cx, wire, account_settings::delete).await,
        O::RegisterContainerInstance => call(cx, wire, instances::register).await,
        O::DescribeContainerInstances => call(cx, wire, instances::describe).await,
        O::ListContainerInstances => call(cx, wire, instances::list).await,
        O::DeregisterContainerInstance => call(cx, wire, instances::deregister).await,
        O::DiscoverPollEndpoint => call(cx, wire, instances::discover_poll_endpoint).await,
        O::RunTask => call(cx, wire, tasks::run_task).await,
        O::StartTask => call(cx, wire, tasks::start_task).await,
        O::StopTask => call(cx, wire, tasks::stop_task).await,
        O::DescribeTasks => call(cx, wire, tasks::describe_tasks).await,
        O::ListTasks => call(cx, wire, tasks::list_tasks).await,
        O::PutAttributes => call(cx, wire, attributes::put_attributes).await,
        O::DeleteAttributes => call(cx, wire, attributes::delete_attributes).await,
        O::ListAttributes => call(cx, wire, attributes::list_attributes).await,
        O::UpdateContainerInstancesState => {
            call(cx, wire, attributes::update_container_instances_state).await
        }
        O::CreateService => call(cx, wire, services::api::create_service).await,
        O::UpdateService => call(cx, wire, services::api::update_service).await,
        O::DeleteService => call(cx, wire, services::api::delete_service).await,
        O::DescribeServices => call(cx, wire, services::api::describe_services).await,
        O::ListServices => call(cx, wire, services::api::list_services).await,
        O::ListServiceDeployments => {
            call(cx, wire, services::deployments::list_service_deployments).await
        }
        O::DescribeServiceDeployments => {
            call(cx, wire, services::deployments::describe_service_deployments).await
        }
        O::DescribeServiceRevisions => {
            call(cx, wire, services::deployments::describe_service_revisions).await
        }
        O::StopServiceDeployment => {
            call(cx, wire, services::deployments::stop_service_deployment).await
        }
        O::UpdateTaskProtection => {
            call(cx, wire, services::protection::update_task_protection).await
        }
        O::GetTaskProtection => call(cx, wire, services::protection::get_task_protection).await,
        other => Err(ApiError::unsupported(format!(
            "{} is not available in this version of Stevedore yet. See the compatibility table in the README.",
            other.name()
        ))),
    }
}
