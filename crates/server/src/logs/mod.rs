//! The CloudWatch Logs JSON 1.1 API (`X-Amz-Target: Logs_20140328.*`) on the
//! same endpoint as ECS. Log groups, streams and events live in the store
//! under `/logs/ACCOUNT/REGION/` (see `stevedore_model::keys`); every write
//! is one transaction, durable before the response.

mod events;
mod groups;
mod migrate;
mod pattern;
mod records;
mod streams;
mod sweeper;

pub use migrate::move_legacy_events;
pub use sweeper::{run_sweeper, sweep_once, SWEEP_INTERVAL};

use crate::error::{ApiError, ApiResult};
use crate::operation::{call, Wire};
use crate::state::Cx;
use serde::Serialize;
use stevedore_api::logs::Operation;

/// Operations this build serves. Every other operation of the Logs model
/// answers `InvalidOperationException`, never a fake success.
pub const IMPLEMENTED: &[Operation] = &[
    Operation::CreateLogGroup,
    Operation::DeleteLogGroup,
    Operation::DescribeLogGroups,
    Operation::CreateLogStream,
    Operation::DeleteLogStream,
    Operation::DescribeLogStreams,
    Operation::PutLogEvents,
    Operation::GetLogEvents,
    Operation::FilterLogEvents,
    Operation::PutRetentionPolicy,
    Operation::DeleteRetentionPolicy,
];

/// The output of operations whose model has none: `{}`.
#[derive(Serialize)]
pub struct Empty {}

pub(crate) async fn dispatch(cx: Cx, op: Operation, wire: Wire<'_>) -> ApiResult<Vec<u8>> {
    use Operation as O;
    match op {
        O::CreateLogGroup => call(cx, wire, groups::create_log_group).await,
        O::DeleteLogGroup => call(cx, wire, groups::delete_log_group).await,
        O::DescribeLogGroups => call(cx, wire, groups::describe_log_groups).await,
        O::PutRetentionPolicy => call(cx, wire, groups::put_retention_policy).await,
        O::DeleteRetentionPolicy => call(cx, wire, groups::delete_retention_policy).await,
        O::CreateLogStream => call(cx, wire, streams::create_log_stream).await,
        O::DeleteLogStream => call(cx, wire, streams::delete_log_stream).await,
        O::DescribeLogStreams => call(cx, wire, streams::describe_log_streams).await,
        O::PutLogEvents => call(cx, wire, events::put_log_events).await,
        O::GetLogEvents => call(cx, wire, events::get_log_events).await,
        O::FilterLogEvents => call(cx, wire, events::filter_log_events).await,
        other => Err(ApiError::new(
            stevedore_api::logs::ErrorCode::InvalidOperationException,
            format!(
                "{} is not supported by this version of Stevedore's CloudWatch Logs API. See the compatibility table in the README.",
                other.name()
            ),
        )),
    }
}

pub(crate) fn group_not_found() -> ApiError {
    ApiError::new(
        stevedore_api::logs::ErrorCode::ResourceNotFoundException,
        "The specified log group does not exist.",
    )
}

pub(crate) fn stream_not_found() -> ApiError {
    ApiError::new(
        stevedore_api::logs::ErrorCode::ResourceNotFoundException,
        "The specified log stream does not exist.",
    )
}

pub(crate) fn already_exists(message: impl Into<String>) -> ApiError {
    ApiError::new(
        stevedore_api::logs::ErrorCode::ResourceAlreadyExistsException,
        message,
    )
}

/// The Logs model's `InvalidParameterException`.
pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        stevedore_api::logs::ErrorCode::InvalidParameterException,
        message,
    )
}

/// Exactly one of `logGroupName` and `logGroupIdentifier` (a name or a
/// log-group ARN of the caller's own account and region).
pub(crate) fn group_name(
    cx: &Cx,
    name: Option<String>,
    identifier: Option<String>,
) -> ApiResult<String> {
    match (name, identifier) {
        (Some(n), None) => Ok(n),
        (None, Some(id)) => {
            let Some(rest) = id.strip_prefix("arn:") else {
                return Ok(id);
            };
            let scope = cx.scope();
            let want = format!("aws:logs:{}:{}:log-group:", scope.region, scope.account);
            match rest.strip_prefix(&want) {
                Some(name) => Ok(name.strip_suffix(":*").unwrap_or(name).to_string()),
                None => Err(group_not_found()),
            }
        }
        (Some(_), Some(_)) => Err(invalid(
            "LogGroupName and LogGroupIdentifier are mutually exclusive; specify only one.",
        )),
        (None, None) => Err(invalid(
            "Either LogGroupName or LogGroupIdentifier must be specified.",
        )),
    }
}

/// The model's pattern for log group names, `[\.\-_/#A-Za-z0-9]+`.
pub(crate) fn check_group_name(name: &str) -> ApiResult<()> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/#".contains(&b))
    {
        Ok(())
    } else {
        Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )))
    }
}

/// The model's pattern for log stream names, `[^:*]*`.
pub(crate) fn check_stream_name(name: &str) -> ApiResult<()> {
    if name.is_empty() || name.contains([':', '*']) {
        Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
        )))
    } else {
        Ok(())
    }
}
