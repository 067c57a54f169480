//! The one place where failures become AWS JSON error shapes.

use std::borrow::Cow;
use stevedore_model::{ModelError, ModelErrorKind};
use stevedore_store::StoreError;

/// An error as the client will see it: `{"__type": code, "message": ...}`
/// with `status` as the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Cow<'static, str>,
    pub message: String,
    pub status: u16,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        let status = if code == "ServerException" { 500 } else { 400 };
        ApiError {
            code: Cow::Borrowed(code),
            message: message.into(),
            status,
        }
    }

    pub fn client(message: impl Into<String>) -> Self {
        Self::new("ClientException", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new("UnsupportedFeatureException", message)
    }

    pub fn server(message: impl Into<String>) -> Self {
        Self::new("ServerException", message)
    }

    pub fn cluster_not_found() -> Self {
        Self::new("ClusterNotFoundException", "Cluster not found.")
    }

    pub fn cluster_inactive() -> Self {
        Self::new(
            "ClusterNotFoundException",
            "The referenced cluster was inactive.",
        )
    }

    pub fn service_not_found() -> Self {
        Self::new("ServiceNotFoundException", "Service not found.")
    }

    pub fn service_not_active() -> Self {
        Self::new("ServiceNotActiveException", "Service was not ACTIVE.")
    }

    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new("ResourceNotFoundException", message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new("AccessDeniedException", message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }

    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new("UnknownOperationException", message)
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        match e.kind {
            ModelErrorKind::Client => ApiError::client(e.message),
            ModelErrorKind::InvalidParameter => ApiError::invalid(e.message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::server(format!("The state store failed: {e}"))
    }
}

impl From<stevedore_logstore::LogStoreError> for ApiError {
    fn from(e: stevedore_logstore::LogStoreError) -> Self {
        tracing::error!(error = %e, "log store failure");
        ApiError::server(format!("The log store failed: {e}"))
    }
}

impl From<stevedore_api::ValidationError> for ApiError {
    fn from(e: stevedore_api::ValidationError) -> Self {
        ApiError::invalid(e.message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
