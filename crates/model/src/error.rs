/// Which ECS error shape a domain rule violation maps to. ECS itself answers
/// semantic task-definition problems with `ClientException` and malformed
/// parameters with `InvalidParameterException`; we keep that split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelErrorKind {
    Client,
    InvalidParameter,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ModelError {
    pub kind: ModelErrorKind,
    pub message: String,
}

impl ModelError {
    pub fn client(message: impl Into<String>) -> Self {
        ModelError {
            kind: ModelErrorKind::Client,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ModelError {
            kind: ModelErrorKind::InvalidParameter,
            message: message.into(),
        }
    }
}
