//! The one place where failures become AWS error shapes. An error's code
//! is typed ([`ErrorCode`]): one of a model's exception shapes, or one of
//! the codes a protocol family answers for requests that never reach an
//! operation. The edge renders it; nothing tells errors apart by text.

use std::fmt;
use stevedore_api::{ecs, logs};
use stevedore_model::{ModelError, ModelErrorKind};
use stevedore_store::StoreError;

/// Codes that belong to the protocol, not to one service's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolCode {
    // awsJson: framing and authentication.
    UnknownOperation,
    Serialization,
    MissingAuthenticationTokenException,
    IncompleteSignatureException,
    UnrecognizedClient,
    InvalidSignature,
    // awsQuery.
    MissingAction,
    InvalidAction,
    ValidationError,
    MissingAuthenticationToken,
    IncompleteSignature,
    InvalidClientTokenId,
    SignatureDoesNotMatch,
    RequestExpired,
}

impl ProtocolCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolCode::UnknownOperation => "UnknownOperationException",
            ProtocolCode::Serialization => "SerializationException",
            ProtocolCode::MissingAuthenticationTokenException => {
                "MissingAuthenticationTokenException"
            }
            ProtocolCode::IncompleteSignatureException => "IncompleteSignatureException",
            ProtocolCode::UnrecognizedClient => "UnrecognizedClientException",
            ProtocolCode::InvalidSignature => "InvalidSignatureException",
            ProtocolCode::MissingAction => "MissingAction",
            ProtocolCode::InvalidAction => "InvalidAction",
            ProtocolCode::ValidationError => "ValidationError",
            ProtocolCode::MissingAuthenticationToken => "MissingAuthenticationToken",
            ProtocolCode::IncompleteSignature => "IncompleteSignature",
            ProtocolCode::InvalidClientTokenId => "InvalidClientTokenId",
            ProtocolCode::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            ProtocolCode::RequestExpired => "RequestExpired",
        }
    }

    /// The HTTP status the family answers with this code.
    pub fn http_status(self) -> u16 {
        match self {
            ProtocolCode::MissingAuthenticationTokenException
            | ProtocolCode::MissingAuthenticationToken
            | ProtocolCode::InvalidClientTokenId
            | ProtocolCode::SignatureDoesNotMatch => 403,
            _ => 400,
        }
    }
}

/// An error's code on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// An exception shape of the ECS model (also used by the agent and
    /// admin protocols, which speak ECS's error vocabulary).
    Ecs(ecs::ErrorCode),
    /// An exception shape of the CloudWatch Logs model.
    Logs(logs::ErrorCode),
    Protocol(ProtocolCode),
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Ecs(c) => c.as_str(),
            ErrorCode::Logs(c) => c.as_str(),
            ErrorCode::Protocol(c) => c.as_str(),
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Ecs(c) => c.http_status(),
            ErrorCode::Logs(c) => c.http_status(),
            ErrorCode::Protocol(c) => c.http_status(),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ecs::ErrorCode> for ErrorCode {
    fn from(c: ecs::ErrorCode) -> Self {
        ErrorCode::Ecs(c)
    }
}

impl From<logs::ErrorCode> for ErrorCode {
    fn from(c: logs::ErrorCode) -> Self {
        ErrorCode::Logs(c)
    }
}

impl From<ProtocolCode> for ErrorCode {
    fn from(c: ProtocolCode) -> Self {
        ErrorCode::Protocol(c)
    }
}

/// An error as the client will see it: the code, the message, and the
/// HTTP status (the code's own unless a constructor says otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub status: u16,
}

impl ApiError {
    pub fn new(code: impl Into<ErrorCode>, message: impl Into<String>) -> Self {
        let code = code.into();
        ApiError {
            code,
            message: message.into(),
            status: code.http_status(),
        }
    }

    pub fn client(message: impl Into<String>) -> Self {
        Self::new(ecs::ErrorCode::ClientException, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ecs::ErrorCode::InvalidParameterException, message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ecs::ErrorCode::UnsupportedFeatureException, message)
    }

    pub fn server(message: impl Into<String>) -> Self {
        Self::new(ecs::ErrorCode::ServerException, message)
    }

    pub fn cluster_not_found() -> Self {
        Self::new(
            ecs::ErrorCode::ClusterNotFoundException,
            "Cluster not found.",
        )
    }

    pub fn cluster_inactive() -> Self {
        Self::new(
            ecs::ErrorCode::ClusterNotFoundException,
            "The referenced cluster was inactive.",
        )
    }

    pub fn service_not_found() -> Self {
        Self::new(
            ecs::ErrorCode::ServiceNotFoundException,
            "Service not found.",
        )
    }

    pub fn service_not_active() -> Self {
        Self::new(
            ecs::ErrorCode::ServiceNotActiveException,
            "Service was not ACTIVE.",
        )
    }

    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(ecs::ErrorCode::ResourceNotFoundException, message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ecs::ErrorCode::AccessDeniedException, message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ProtocolCode::Serialization, message)
    }

    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(ProtocolCode::UnknownOperation, message)
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
