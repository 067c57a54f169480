//! The error type returned by the verifier, with the AWS error code and message for each case.

use std::fmt;

/// Why a request failed authentication.
///
/// Each variant maps to the error code an AWS JSON 1.1 service (such as ECS) returns for the same
/// situation ([`AuthError::code`]); [`fmt::Display`] is the message to put in the error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header and no presigned query string.
    MissingAuthenticationToken,
    /// The `Authorization` header (or the presigned query parameters) could not be parsed: missing
    /// parts, a malformed credential scope, a missing date, an unsigned `host`, ... The string is
    /// the message.
    IncompleteSignature(String),
    /// The access key id is not known to the credential lookup.
    UnrecognizedClient,
    /// The signature does not match the one computed with the secret key.
    InvalidSignature,
    /// The request time is outside the allowed clock-skew window (or a presigned URL has expired).
    RequestExpired {
        /// Request time minus server time, in seconds: negative when the request is in the past
        /// (e.g. `-960` for a request signed 16 minutes ago), positive when it is in the future.
        skew_secs: i64,
        /// The request's timestamp, `yyyymmddThhmmssZ`.
        request_time: String,
        /// The server's clock at verification, `yyyymmddThhmmssZ`.
        server_time: String,
        /// The AWS-style message (also what `Display` prints).
        message: String,
    },
    /// The date in the credential scope is not the date of `X-Amz-Date`.
    ScopeDateMismatch {
        /// `yyyymmdd` from the credential scope.
        scope_date: String,
        /// The request timestamp (`yyyymmddThhmmssZ`).
        amz_date: String,
    },
    /// `x-amz-content-sha256` carries a hash that is not the SHA-256 of the body received.
    ContentSha256Mismatch,
}

impl AuthError {
    /// The AWS error code (the `__type` of a JSON 1.1 error body / `x-amzn-ErrorType`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::InvalidSignature
            | AuthError::RequestExpired { .. }
            | AuthError::ScopeDateMismatch { .. }
            | AuthError::ContentSha256Mismatch => "InvalidSignatureException",
        }
    }

    /// The HTTP status AWS JSON services use for this error: 403 for a missing token, 400 for
    /// everything else.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::MissingAuthenticationToken => 403,
            _ => 400,
        }
    }

    pub(crate) fn incomplete(msg: impl Into<String>) -> Self {
        AuthError::IncompleteSignature(msg.into())
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingAuthenticationToken => f.write_str("Missing Authentication Token"),
            AuthError::IncompleteSignature(msg) => f.write_str(msg),
            AuthError::UnrecognizedClient => {
                f.write_str("The security token included in the request is invalid.")
            }
            AuthError::InvalidSignature => f.write_str(
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. \
                 Consult the service documentation for details.",
            ),
            AuthError::RequestExpired { message, .. } => f.write_str(message),
            AuthError::ScopeDateMismatch {
                scope_date,
                amz_date,
            } => {
                let request_date = amz_date.get(..8).unwrap_or(amz_date);
                write!(
                    f,
                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of \
                     date from HTTP: '{scope_date}' != '{request_date}', from '{amz_date}'."
                )
            }
            AuthError::ContentSha256Mismatch => f.write_str(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
        }
    }
}

impl std::error::Error for AuthError {}
