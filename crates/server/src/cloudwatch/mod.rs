//! Amazon CloudWatch (metrics and alarms), awsJson1_0 with
//! `awsQueryCompatible` (`X-Amz-Target: GraniteServiceVersion20100801.*`,
//! signed for `monitoring`). The metrics API itself is issue 14; until it
//! lands, every operation of the model answers a well-formed error that
//! names it, never a fake success.

use crate::error::{ApiError, ApiResult};
use crate::operation::Wire;
use crate::state::Cx;
use stevedore_api::cloudwatch::Operation;

pub(crate) async fn dispatch(_cx: Cx, op: Operation, _wire: Wire<'_>) -> ApiResult<Vec<u8>> {
    Err(not_yet(op))
}

/// `InvalidAction` is the Query family's code for an action the endpoint
/// does not perform; query-compatible SDKs read it from
/// `x-amzn-query-error`.
fn not_yet(op: Operation) -> ApiError {
    ApiError::new(
        crate::error::ProtocolCode::InvalidAction,
        format!(
            "{} is not supported by this version of Stevedore's CloudWatch API yet; the metrics API is built by issue 14. See the compatibility table in the README.",
            op.name()
        ),
    )
}
