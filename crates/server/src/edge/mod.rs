//! The service table at the edge. Every API on the endpoint is a row
//! ([`Service`]): its SigV4 signing name, its wire protocol and its
//! dispatcher. A request is matched to a row (JSON protocols by the
//! `X-Amz-Target` prefix, Query by the service it was signed for),
//! authenticated, checked against the row's signing name, and handed to
//! the row's dispatcher, which resolves the operation and runs it through
//! `operation::call`. Framing of answers and errors belongs to the
//! protocol, never to a handler.

mod json;
mod query;
mod table;

use crate::error::{ApiError, ProtocolCode};
use crate::identity::StoreLookup;
use crate::operation::Wire;
use crate::state::{AppState, Caller, Cx};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;
use stevedore_api::query::QueryModel;
use stevedore_api::Timestamp;
use stevedore_auth::{AuthError, RequestParts};
use stevedore_model::arn::Scope;

pub(crate) use table::SERVICES;

/// The running operation a dispatcher returns.
pub(crate) type BoxFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<u8>, ApiError>> + Send + 'a>>;

/// Resolves an operation name; `None` when the service has no such
/// operation (the edge answers in the protocol's own "unknown operation"
/// shape).
pub(crate) type Dispatch = for<'a> fn(Cx, &'a str, Wire<'a>) -> Option<BoxFuture<'a>>;

/// How a service frames requests, answers and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `POST /`, `X-Amz-Target: PREFIX.Operation`, JSON bodies with
    /// content type `application/x-amz-json-1.0`. `query_compatible`
    /// (the model's `awsQueryCompatible`) adds `x-amzn-query-error`.
    AwsJson1_0 {
        target_prefix: &'static str,
        query_compatible: bool,
    },
    /// As 1.0, content type `application/x-amz-json-1.1`.
    AwsJson1_1 { target_prefix: &'static str },
    /// Form parameters in, XML out, chosen by the signing name; the row's
    /// `query` model lays out both.
    AwsQuery,
}

impl Protocol {
    fn target_prefix(&self) -> Option<&'static str> {
        match self {
            Protocol::AwsJson1_0 { target_prefix, .. } | Protocol::AwsJson1_1 { target_prefix } => {
                Some(target_prefix)
            }
            Protocol::AwsQuery => None,
        }
    }
}

/// The model a Query row reads its requests and writes its answers with.
pub(crate) type QueryModelFn = fn() -> &'static QueryModel;

/// One row of the table.
pub struct Service {
    /// Names the service in the server's logs.
    pub name: &'static str,
    /// The credential scope's service a request must be signed for.
    pub signing_name: &'static str,
    pub protocol: Protocol,
    /// The row's Query model: required for `AwsQuery`; on an
    /// `awsQueryCompatible` JSON row it also serves the older clients that
    /// still speak Query to it.
    pub(crate) query: Option<QueryModelFn>,
    pub(crate) dispatch: Dispatch,
}

/// `Sender` for a client's fault (4xx), `Receiver` for ours (5xx): the
/// Query protocol's error `Type`.
pub(crate) fn fault(status: u16) -> &'static str {
    if status >= 500 {
        "Receiver"
    } else {
        "Sender"
    }
}

/// The row whose `X-Amz-Target` prefix is `prefix`.
fn by_target_prefix(prefix: &str) -> Option<&'static Service> {
    SERVICES
        .iter()
        .find(|s| s.protocol.target_prefix() == Some(prefix))
}

/// The row that takes Query requests signed for `signing_name`.
fn by_query_signing_name(signing_name: &str) -> Option<&'static Service> {
    SERVICES
        .iter()
        .find(|s| s.query.is_some() && s.signing_name == signing_name)
}

/// How an answer is framed: the matched row's protocol, or JSON 1.1 when
/// no row matched (what every SDK of the ECS family can read).
#[derive(Clone, Copy)]
enum Frame {
    Json {
        content_type: &'static str,
        query_compatible: bool,
    },
    Xml {
        namespace: &'static str,
    },
}

impl Frame {
    fn of(protocol: Protocol) -> Frame {
        match protocol {
            Protocol::AwsJson1_0 {
                query_compatible, ..
            } => Frame::Json {
                content_type: json::CONTENT_TYPE_1_0,
                query_compatible,
            },
            Protocol::AwsJson1_1 { .. } => Frame::Json {
                content_type: json::CONTENT_TYPE_1_1,
                query_compatible: false,
            },
            Protocol::AwsQuery => Frame::Xml {
                namespace: query::FALLBACK_NAMESPACE,
            },
        }
    }

    const FALLBACK: Frame = Frame::Json {
        content_type: json::CONTENT_TYPE_1_1,
        query_compatible: false,
    };
}

/// What the request asks for, read from its headers before anything else
/// so that even an authentication failure is framed as the client expects.
enum Route<'r> {
    /// `X-Amz-Target: PREFIX.Operation`; the row when the prefix is known.
    Target {
        target: &'r str,
        service: Option<&'static Service>,
        op: &'r str,
    },
    /// Form parameters; the row when one takes Query for the service the
    /// request was signed for.
    Query {
        request: query::QueryRequest,
        service: Option<&'static Service>,
    },
    /// Neither framing.
    Unframed,
}

fn route<'r>(method: &Method, uri: &Uri, headers: &'r HeaderMap, body: &[u8]) -> Route<'r> {
    let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) else {
        return match query::parse(method, uri, headers, body) {
            Some(request) => {
                let service = request
                    .scope_service
                    .as_deref()
                    .and_then(by_query_signing_name);
                Route::Query { request, service }
            }
            None => Route::Unframed,
        };
    };
    let (prefix, op) = target.split_once('.').unwrap_or((target, ""));
    Route::Target {
        target,
        service: by_target_prefix(prefix),
        op,
    }
}

/// The axum fallback: every API request.
pub(crate) async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let route = route(&method, &uri, &headers, &body);
    let (service, frame) = match &route {
        Route::Target {
            service: Some(s), ..
        } => (Some(*s), Frame::of(s.protocol)),
        Route::Query { service, .. } => (
            *service,
            Frame::Xml {
                namespace: service
                    .and_then(|s| s.query)
                    .map_or(query::FALLBACK_NAMESPACE, |m| m().namespace()),
            },
        ),
        _ => (None, Frame::FALLBACK),
    };
    let service_name = service.map_or("-", |s| s.name);
    let query_framed = matches!(frame, Frame::Xml { .. });
    let result = process(
        state,
        &method,
        &uri,
        &headers,
        &body,
        route,
        &request_id,
        query_framed,
    )
    .await;
    let (status, body, error) = match result {
        Ok(bytes) => (StatusCode::OK, bytes, None),
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(service = service_name, code = %e.code, message = %e.message, "request failed");
            } else {
                tracing::debug!(service = service_name, code = %e.code, message = %e.message, "request refused");
            }
            let body = match frame {
                Frame::Json { .. } => json::error_body(&e),
                Frame::Xml { namespace } => query::error_body(namespace, &e, &request_id),
            };
            (
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
                Some(e),
            )
        }
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    match frame {
        Frame::Json {
            content_type,
            query_compatible,
        } => {
            h.insert("content-type", HeaderValue::from_static(content_type));
            if let Some(e) = &error {
                json::error_headers(h, e, query_compatible);
            }
        }
        Frame::Xml { .. } => {
            h.insert(
                "content-type",
                HeaderValue::from_static(query::CONTENT_TYPE),
            );
        }
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

#[allow(clippy::too_many_arguments)]
async fn process(
    state: Arc<AppState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    route: Route<'_>,
    request_id: &str,
    query_framed: bool,
) -> Result<Vec<u8>, ApiError> {
    let (caller, signed_for) = authenticate(&state, method, uri, headers, body, query_framed)?;
    let cx = Cx {
        state,
        caller: Arc::new(caller),
        now: Timestamp::now(),
    };
    if let Route::Query { request, service } = route {
        return process_query(cx, uri, &signed_for, request, service, request_id).await;
    }
    if method != Method::POST || uri.path() != "/" {
        return Err(ApiError::unknown_operation(format!(
            "Only POST / is served here (got {method} {}).",
            uri.path()
        )));
    }
    match route {
        Route::Unframed | Route::Query { .. } => Err(ApiError::unknown_operation(
            "Missing X-Amz-Target header (or a form-encoded Query request with an Action).",
        )),
        Route::Target {
            target,
            service: None,
            ..
        } => Err(ApiError::unknown_operation(format!(
            "Unknown operation {target}."
        ))),
        Route::Target {
            target,
            service: Some(service),
            op,
        } => {
            require_service(&signed_for, service.signing_name)?;
            match (service.dispatch)(cx, op, Wire::Json(body)) {
                Some(running) => running.await,
                None => Err(ApiError::unknown_operation(format!(
                    "Unknown operation {target}."
                ))),
            }
        }
    }
}

async fn process_query(
    cx: Cx,
    uri: &Uri,
    signed_for: &str,
    request: query::QueryRequest,
    service: Option<&'static Service>,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    if uri.path() != "/" {
        return Err(ApiError::new(
            ProtocolCode::InvalidAction,
            format!("Query requests are served at / (got {}).", uri.path()),
        ));
    }
    let (Some(service), Some(model)) = (service, service.and_then(|s| s.query)) else {
        return Err(ApiError::new(
            ProtocolCode::InvalidAction,
            format!(
                "This endpoint serves no Query API signed for '{signed_for}'. The Query APIs served here are: {}. See the compatibility table in the README.",
                SERVICES
                    .iter()
                    .filter(|s| s.query.is_some())
                    .map(|s| format!("{} ('{}')", s.name, s.signing_name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    require_service(signed_for, service.signing_name)?;
    let model = model();
    let Some(action) = request.action.as_deref().filter(|a| !a.is_empty()) else {
        return Err(ApiError::new(
            ProtocolCode::MissingAction,
            "The request must contain the parameter Action.",
        ));
    };
    if let Some(version) = request.version.as_deref() {
        if version != model.api_version() {
            return Err(ApiError::new(
                ProtocolCode::InvalidAction,
                format!(
                    "Could not find operation {action} for version {version}: {} speaks version {}.",
                    service.name,
                    model.api_version()
                ),
            ));
        }
    }
    let wire = Wire::Query {
        action,
        params: &request.params,
        model,
        request_id,
    };
    match (service.dispatch)(cx, action, wire) {
        Some(running) => running.await,
        None => Err(ApiError::new(
            ProtocolCode::InvalidAction,
            format!(
                "{action} is not an action of {} (version {}).",
                service.name,
                model.api_version()
            ),
        )),
    }
}

fn require_service(signed_for: &str, expected: &str) -> Result<(), ApiError> {
    if signed_for == expected {
        Ok(())
    } else {
        Err(ApiError {
            code: ProtocolCode::InvalidSignature.into(),
            message: format!(
                "Credential should be scoped to correct service: '{expected}' (the request was signed for '{signed_for}')."
            ),
            status: 403,
        })
    }
}

/// An authentication failure in the code the request's protocol family
/// uses (`UnrecognizedClientException` for JSON, `InvalidClientTokenId`
/// for Query, ...).
fn auth_error(e: AuthError, query_framed: bool) -> ApiError {
    use ProtocolCode as P;
    let (code, status) = if query_framed {
        let code = match &e {
            AuthError::MissingAuthenticationToken => P::MissingAuthenticationToken,
            AuthError::IncompleteSignature(_) => P::IncompleteSignature,
            AuthError::UnrecognizedClient => P::InvalidClientTokenId,
            AuthError::RequestExpired { .. } => P::RequestExpired,
            AuthError::InvalidSignature
            | AuthError::ScopeDateMismatch { .. }
            | AuthError::ContentSha256Mismatch => P::SignatureDoesNotMatch,
        };
        (code, code.http_status())
    } else {
        let code = match &e {
            AuthError::MissingAuthenticationToken => P::MissingAuthenticationTokenException,
            AuthError::IncompleteSignature(_) => P::IncompleteSignatureException,
            AuthError::UnrecognizedClient => P::UnrecognizedClient,
            AuthError::InvalidSignature
            | AuthError::RequestExpired { .. }
            | AuthError::ScopeDateMismatch { .. }
            | AuthError::ContentSha256Mismatch => P::InvalidSignature,
        };
        // AWS JSON services answer 403 only for a missing token.
        (code, e.http_status())
    };
    ApiError {
        code: code.into(),
        message: e.to_string(),
        status,
    }
}

/// SigV4 for every request: the caller's account comes from the key, the
/// region from the credential scope. Returns the caller and the service the
/// request was signed for.
fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    query_framed: bool,
) -> Result<(Caller, String), ApiError> {
    let auth_error = |e| auth_error(e, query_framed);
    let header_pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let parts = RequestParts {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        headers: &header_pairs,
        body,
    };
    let now = SystemTime::now();
    if state.config.accept_any_credentials {
        let v = state.verifier.parse_only(&parts, now).map_err(auth_error)?;
        let account = state.config.account_id.clone();
        return Ok((
            Caller {
                principal_arn: format!("arn:aws:iam::{account}:root"),
                scope: Scope::new(account, v.region),
                access_key_id: v.access_key_id,
                admin: true,
            },
            v.service,
        ));
    }
    let lookup = StoreLookup {
        cache: &state.keys,
        store: state.store.as_ref(),
        found: RefCell::new(None),
        failed: RefCell::new(None),
    };
    let verified = state.verifier.verify(&parts, now, &lookup);
    if let Some(e) = lookup.failed.into_inner() {
        return Err(e);
    }
    let v = verified.map_err(auth_error)?;
    let rec = lookup
        .found
        .into_inner()
        .ok_or_else(|| ApiError::server("verified a key that was not looked up"))?;
    Ok((
        Caller {
            principal_arn: rec.principal_arn(),
            scope: Scope::new(rec.account_id.clone(), v.region),
            access_key_id: v.access_key_id,
            admin: rec.admin,
        },
        v.service,
    ))
}
