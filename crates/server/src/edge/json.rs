//! awsJson1_0 / awsJson1_1 framing: the content types and the error body
//! `{"__type", "message"}`, plus `x-amzn-query-error` for models marked
//! `awsQueryCompatible`, whose SDKs report the Query error code from it.

use crate::error::ApiError;
use axum::http::{HeaderMap, HeaderValue};

pub(crate) const CONTENT_TYPE_1_0: &str = "application/x-amz-json-1.0";
pub(crate) const CONTENT_TYPE_1_1: &str = "application/x-amz-json-1.1";

pub(crate) fn error_body(e: &ApiError) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "__type": e.code.as_str(),
        "message": e.message,
    }))
    .unwrap_or_default()
}

/// Headers of an error answer: `x-amzn-errortype` always, and for a
/// query-compatible service `x-amzn-query-error: CODE;Sender` (4xx) or
/// `CODE;Receiver` (5xx), which botocore splits on `;` into the error's
/// Query code and type.
pub(crate) fn error_headers(h: &mut HeaderMap, e: &ApiError, query_compatible: bool) {
    h.insert(
        "x-amzn-errortype",
        HeaderValue::from_static(e.code.as_str()),
    );
    if query_compatible {
        let value = format!("{};{}", e.code, super::fault(e.status));
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert("x-amzn-query-error", v);
        }
    }
}
