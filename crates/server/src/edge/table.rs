//! The rows of the service table: one per API served on the endpoint.
//! Adding a service is its generated model module, one row here and its
//! handler module; a Query service's row names its model's
//! `query_model`.

use super::{BoxFuture, Protocol, Service};
use crate::operation::Wire;
use crate::state::Cx;
use crate::{admin, agent_api, cloudwatch, ecs, logs, sts};
use stevedore_api as api;

pub(crate) static SERVICES: &[Service] = &[
    Service {
        name: "Amazon ECS",
        signing_name: api::ecs::SIGNING_NAME,
        protocol: Protocol::AwsJson1_1 {
            target_prefix: api::ecs::TARGET_PREFIX,
        },
        query: None,
        dispatch: ecs_row,
    },
    Service {
        name: "Amazon CloudWatch Logs",
        signing_name: api::logs::SIGNING_NAME,
        protocol: Protocol::AwsJson1_1 {
            target_prefix: api::logs::TARGET_PREFIX,
        },
        query: None,
        dispatch: logs_row,
    },
    Service {
        name: "Amazon CloudWatch",
        signing_name: api::cloudwatch::SIGNING_NAME,
        protocol: Protocol::AwsJson1_0 {
            target_prefix: api::cloudwatch::TARGET_PREFIX,
            query_compatible: api::cloudwatch::AWS_QUERY_COMPATIBLE,
        },
        // Older SDKs and CLIs speak Query to CloudWatch.
        query: Some(api::cloudwatch::query_model),
        dispatch: cloudwatch_row,
    },
    // The agent and admin protocols are Stevedore's own; they sign for
    // `ecs` so an agent or `stevedore keys` needs nothing but a key.
    Service {
        name: "Stevedore agent protocol",
        signing_name: api::ecs::SIGNING_NAME,
        protocol: Protocol::AwsJson1_1 {
            target_prefix: api::agent::TARGET_PREFIX,
        },
        query: None,
        dispatch: agent_row,
    },
    Service {
        name: "Stevedore admin API",
        signing_name: api::ecs::SIGNING_NAME,
        protocol: Protocol::AwsJson1_1 {
            target_prefix: admin::TARGET_PREFIX,
        },
        query: None,
        dispatch: admin_row,
    },
    Service {
        name: "AWS STS",
        signing_name: api::sts::SIGNING_NAME,
        protocol: Protocol::AwsQuery,
        query: Some(api::sts::query_model),
        dispatch: sts_row,
    },
];

fn ecs_row<'a>(cx: Cx, op: &'a str, wire: Wire<'a>) -> Option<BoxFuture<'a>> {
    let op = api::ecs::Operation::from_name(op)?;
    Some(Box::pin(ecs::dispatch(cx, op, wire)))
}

fn logs_row<'a>(cx: Cx, op: &'a str, wire: Wire<'a>) -> Option<BoxFuture<'a>> {
    let op = api::logs::Operation::from_name(op)?;
    Some(Box::pin(logs::dispatch(cx, op, wire)))
}

fn agent_row<'a>(cx: Cx, op: &'a str, wire: Wire<'a>) -> Option<BoxFuture<'a>> {
    let op = agent_api::Operation::from_name(op)?;
    Some(Box::pin(agent_api::dispatch(cx, op, wire)))
}

fn admin_row<'a>(cx: Cx, op: &'a str, wire: Wire<'a>) -> Option<BoxFuture<'a>> {
    let op = admin::Operation::from_name(op)?;
    Some(Box::pin(admin::dispatch(cx, op, wire)))
}

fn cloudwatch_row<'a>(cx: Cx, op: &'a str, wire: Wire<'a>) -> Option<BoxFuture<'a>> {
    let op = api::cloudwatch::Operation::from_name(op)?;
    Some(Box::pin(cloudwatch::dispatch(cx, op, wire)))
}

fn sts_row<'a>(cx: Cx, op: &'a str, wire: Wire<'a>) -> Option<BoxFuture<'a>> {
    let op = api::sts::Operation::from_name(op)?;
    Some(Box::pin(sts::dispatch(cx, op, wire)))
}
