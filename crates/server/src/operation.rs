//! The one path from a request's payload to a typed handler and back,
//! shared by every service in the table (`crate::edge`): parse the payload
//! as the protocol frames it into the operation's generated input type,
//! validate it against the model, run the handler, and frame its output
//! the same way.

use crate::error::{ApiError, ApiResult, ProtocolCode};
use crate::state::Cx;
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;
use stevedore_api::query::QueryModel;
use stevedore_api::Validate;

/// A request's payload as its protocol carries it.
#[derive(Clone, Copy)]
pub(crate) enum Wire<'a> {
    /// awsJson1_0 / awsJson1_1: the body is the input as a JSON object.
    Json(&'a [u8]),
    /// awsQuery: the form parameters other than `Action` and `Version`,
    /// read through the service's model; the answer is its XML document.
    Query {
        action: &'a str,
        params: &'a [(String, String)],
        model: &'static QueryModel,
        request_id: &'a str,
    },
}

/// Parses the payload into the operation's input type, validates it
/// against the model (required members, enum values, ranges), runs the
/// handler and frames its output for the same protocol.
pub(crate) async fn call<Req, Resp, F, Fut>(cx: Cx, wire: Wire<'_>, f: F) -> ApiResult<Vec<u8>>
where
    Req: DeserializeOwned + Validate,
    Resp: Serialize,
    F: FnOnce(Cx, Req) -> Fut,
    Fut: Future<Output = ApiResult<Resp>>,
{
    match wire {
        Wire::Json(body) => {
            let req: Req = parse_json(body)?;
            req.validate("")?;
            let resp = f(cx, req).await?;
            serde_json::to_vec(&resp)
                .map_err(|e| ApiError::server(format!("could not serialize the response: {e}")))
        }
        Wire::Query {
            action,
            params,
            model,
            request_id,
        } => {
            let invalid = |message: String| ApiError::new(ProtocolCode::ValidationError, message);
            let tree = model
                .decode_input(action, params)
                .map_err(|e| invalid(e.0))?;
            let req: Req = serde_json::from_value(tree).map_err(|e| {
                invalid(format!(
                    "The parameters could not be read as {action}'s input: {e}"
                ))
            })?;
            req.validate("").map_err(|e| invalid(e.message))?;
            let resp = f(cx, req).await?;
            let tree = serde_json::to_value(&resp)
                .map_err(|e| ApiError::server(format!("could not serialize the response: {e}")))?;
            let xml = model
                .encode_output(action, &tree, request_id)
                .map_err(|e| ApiError::server(format!("could not write the response: {e}")))?;
            Ok(xml.into_bytes())
        }
    }
}

fn parse_json<Req: DeserializeOwned>(body: &[u8]) -> ApiResult<Req> {
    // botocore always sends `{}` for an empty input; be as lenient as AWS
    // with a truly empty body.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::serialization(format!(
            "The request body could not be read as this operation's input: {e}"
        ))
    })
}
