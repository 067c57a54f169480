//! awsQuery framing: a request is form parameters (`Action`, `Version` and
//! the input) in a `application/x-www-form-urlencoded` body or in the URL's
//! query string; the answer is XML (`text/xml`) and an error is the XML
//! `ErrorResponse` with `Type`, `Code`, `Message` and `RequestId`. Which
//! service a Query request is for is not in the request's framing (every
//! Query service answers `POST /` on its own host): on Stevedore's single
//! endpoint it is the service the request was signed for.

use crate::error::ApiError;
use axum::http::{header, HeaderMap, Method, Uri};
use stevedore_api::query::error_document;

pub(crate) const CONTENT_TYPE: &str = "text/xml";

/// Used when no row could be chosen (its namespace is unknown).
pub(crate) const FALLBACK_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// A request framed for Query: its parameters, without SigV4's own
/// presigning parameters.
pub(crate) struct QueryRequest {
    pub action: Option<String>,
    pub version: Option<String>,
    pub params: Vec<(String, String)>,
    /// The credential scope's service, read without verifying it (it picks
    /// the row; the signature check that follows covers it).
    pub scope_service: Option<String>,
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The Query parameters of a request without `X-Amz-Target`, when it is
/// framed as Query: a form `POST`, or a `GET` whose query string names an
/// `Action`.
pub(crate) fn parse(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<QueryRequest> {
    let from_url: Vec<(String, String)> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let form = *method == Method::POST && is_form(headers);
    let get = *method == Method::GET && from_url.iter().any(|(k, _)| k == "Action");
    if !form && !get {
        return None;
    }
    let mut scope_service = None;
    let mut all: Vec<(String, String)> = Vec::new();
    for (k, v) in from_url {
        if k.starts_with("X-Amz-") {
            if k == "X-Amz-Credential" {
                scope_service = v.split('/').nth(3).map(str::to_string);
            }
            continue;
        }
        all.push((k, v));
    }
    if form {
        all.extend(form_urlencoded::parse(body).into_owned());
    }
    if scope_service.is_none() {
        scope_service = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("Credential=").nth(1))
            .and_then(|c| c.split([',', ' ']).next())
            .and_then(|c| c.split('/').nth(3))
            .map(str::to_string);
    }
    let mut action = None;
    let mut version = None;
    let mut params = Vec::with_capacity(all.len());
    for (k, v) in all {
        match k.as_str() {
            "Action" => action = Some(v),
            "Version" => version = Some(v),
            _ => params.push((k, v)),
        }
    }
    Some(QueryRequest {
        action,
        version,
        params,
        scope_service,
    })
}

/// The XML error document for `e`. A server fault is `InternalFailure`,
/// as the Query services name it.
pub(crate) fn error_body(namespace: &str, e: &ApiError, request_id: &str) -> Vec<u8> {
    let code: &str = if e.status >= 500 {
        "InternalFailure"
    } else {
        e.code.as_str()
    };
    error_document(
        namespace,
        super::fault(e.status),
        code,
        &e.message,
        request_id,
    )
    .into_bytes()
}
