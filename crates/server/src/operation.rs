//! The one path from request bytes to a typed handler and back, shared by
//! every JSON 1.1 service on the endpoint (ECS, CloudWatch Logs).

use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;
use stevedore_api::Validate;

/// Parses the body into the operation's generated input type, validates it
/// against the model (required members, enum values, ranges: the model's
/// `InvalidParameterException`), runs the handler and serializes its output.
pub(crate) async fn call<Req, Resp, F, Fut>(cx: Cx, body: &[u8], f: F) -> ApiResult<Vec<u8>>
where
    Req: DeserializeOwned + Validate,
    Resp: Serialize,
    F: FnOnce(Cx, Req) -> Fut,
    Fut: Future<Output = ApiResult<Resp>>,
{
    // botocore always sends `{}` for an empty input; be as lenient as AWS
    // with a truly empty body.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let req: Req = serde_json::from_slice(body).map_err(|e| {
        ApiError::serialization(format!(
            "The request body could not be read as this operation's input: {e}"
        ))
    })?;
    req.validate("")?;
    let resp = f(cx, req).await?;
    serde_json::to_vec(&resp)
        .map_err(|e| ApiError::server(format!("could not serialize the response: {e}")))
}
