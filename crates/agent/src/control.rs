//! The agent's view of the server: three calls, behind a trait so tests can
//! substitute an in-process fake. [`HttpControlPlane`] is the real one:
//! AWS JSON 1.1 over HTTP, signed with SigV4 exactly as the CLI signs.

use crate::config::AgentConfig;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::{Duration, SystemTime};
use stevedore_api::agent::{
    PollTasksRequest, PollTasksResponse, ReportTaskStatesRequest, ReportTaskStatesResponse,
    MAX_WAIT_SECONDS, TARGET_PREFIX as AGENT_PREFIX,
};
use stevedore_api::ecs::{
    RegisterContainerInstanceRequest, RegisterContainerInstanceResponse, SIGNING_NAME,
    TARGET_PREFIX as ECS_PREFIX,
};
pub use stevedore_runtime::BoxFuture;

/// A failed call to the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// The server answered with an AWS error shape.
    #[error("{code}: {message}")]
    Service {
        /// HTTP status.
        status: u16,
        /// `__type`, e.g. `ClientException`.
        code: String,
        message: String,
    },
    /// The server answered something that is not the expected JSON.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl ControlError {
    /// Whether trying again later may succeed: transport problems, server
    /// errors (5xx) and throttling. Client errors (4xx) are answers.
    pub fn is_retryable(&self) -> bool {
        match self {
            ControlError::Transport(_) | ControlError::Protocol(_) => true,
            ControlError::Service { status, code, .. } => {
                *status >= 500 || *status == 429 || ErrorClass::of(code) == ErrorClass::Throttling
            }
        }
    }
}

/// What an AWS error code means for a caller deciding whether to retry,
/// decided on the whole code, never on a substring or on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The server is shedding load; the same call later may succeed.
    Throttling,
    /// Any other code: an answer about the request itself.
    Other,
}

impl ErrorClass {
    /// Classifies `code` (the `__type` without its `:namespace` suffix).
    /// The throttling codes are the ones AWS SDKs retry as throttling
    /// (botocore's `_retry.json`), so a server answering with any of them
    /// is treated the way the CLI would treat it.
    pub fn of(code: &str) -> Self {
        match code {
            "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "LimitExceededException"
            | "RequestThrottled"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException" => ErrorClass::Throttling,
            _ => ErrorClass::Other,
        }
    }
}

/// The server, as the agent uses it.
pub trait ControlPlane: Send + Sync {
    /// ECS `RegisterContainerInstance`.
    fn register(
        &self,
        req: RegisterContainerInstanceRequest,
    ) -> BoxFuture<'_, Result<RegisterContainerInstanceResponse, ControlError>>;
    /// Long poll for the instance's assigned tasks (also its heartbeat).
    fn poll(&self, req: PollTasksRequest)
        -> BoxFuture<'_, Result<PollTasksResponse, ControlError>>;
    /// Observed task states, with the instance's sequence number.
    fn report(
        &self,
        req: ReportTaskStatesRequest,
    ) -> BoxFuture<'_, Result<ReportTaskStatesResponse, ControlError>>;
}

/// [`ControlPlane`] over HTTP: AWS JSON 1.1, SigV4-signed with the agent's
/// access key. ECS operations use the `AmazonEC2ContainerServiceV20141113`
/// target prefix, agent operations `StevedoreAgent_20261122`.
pub struct HttpControlPlane {
    client: reqwest::Client,
    url: String,
    host: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: String,
}

impl std::fmt::Debug for HttpControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpControlPlane")
            .field("url", &self.url)
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl HttpControlPlane {
    /// A client for the server at `endpoint` (`http://host:port`), signing
    /// with the given key for `region`.
    pub fn new(
        endpoint: &str,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
        region: &str,
    ) -> Result<Self, ControlError> {
        let url = format!("{}/", endpoint.trim_end_matches('/'));
        let host = url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ControlError::Protocol(format!("endpoint {endpoint:?} has no host")))?
            .to_string();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Longest call: a poll held for MAX_WAIT_SECONDS, plus slack.
            .timeout(Duration::from_secs(u64::from(MAX_WAIT_SECONDS) + 30))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| ControlError::Transport(e.to_string()))?;
        Ok(HttpControlPlane {
            client,
            url,
            host,
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: session_token.map(str::to_string),
            region: region.to_string(),
        })
    }

    /// The client for `config`'s endpoint and credentials.
    pub fn from_config(config: &AgentConfig) -> Result<Self, ControlError> {
        Self::new(
            &config.endpoint,
            &config.access_key_id,
            &config.secret_access_key,
            config.session_token.as_deref(),
            &config.region,
        )
    }

    async fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        prefix: &str,
        op: &str,
        input: &I,
    ) -> Result<O, ControlError> {
        let body = serde_json::to_vec(input).map_err(|e| ControlError::Protocol(e.to_string()))?;
        let target = format!("{prefix}.{op}");
        let bytes = self.post_signed(SIGNING_NAME, &target, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ControlError::Protocol(format!("{op}: {e}: {}", String::from_utf8_lossy(&bytes)))
        })
    }

    /// POSTs a JSON 1.1 `body` with `X-Amz-Target: target` to the
    /// endpoint, signed with SigV4 for `service` (`ecs`, or `logs` for the
    /// CloudWatch Logs calls); returns the body of a 2xx answer.
    pub(crate) async fn post_signed(
        &self,
        service: &str,
        target: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ControlError> {
        let headers = [
            ("host", self.host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
        ];
        let identity = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "stevedore-agent",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ControlError::Protocol(format!("cannot sign: {e}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &self.url,
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| ControlError::Protocol(format!("cannot sign: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ControlError::Protocol(format!("cannot sign: {e}")))?
            .into_parts();
        let mut req = self.client.post(&self.url).body(body);
        for (k, v) in headers.iter().skip(1) {
            req = req.header(*k, *v);
        }
        for (k, v) in instructions.headers() {
            req = req.header(k, v);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ControlError::Transport(format!("{}: {e}", self.url)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ControlError::Transport(e.to_string()))?;
        if !status.is_success() {
            return Err(parse_error(status.as_u16(), &bytes));
        }
        Ok(bytes.to_vec())
    }
}

fn parse_error(status: u16, body: &[u8]) -> ControlError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let raw = v["__type"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP{status}"));
    let code = raw
        .rsplit('#')
        .next()
        .unwrap_or(&raw)
        .split(':')
        .next()
        .unwrap_or(&raw)
        .to_string();
    let message = v["message"]
        .as_str()
        .or_else(|| v["Message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    ControlError::Service {
        status,
        code,
        message,
    }
}

impl ControlPlane for HttpControlPlane {
    fn register(
        &self,
        req: RegisterContainerInstanceRequest,
    ) -> BoxFuture<'_, Result<RegisterContainerInstanceResponse, ControlError>> {
        Box::pin(async move {
            self.call(ECS_PREFIX, "RegisterContainerInstance", &req)
                .await
        })
    }

    fn poll(
        &self,
        req: PollTasksRequest,
    ) -> BoxFuture<'_, Result<PollTasksResponse, ControlError>> {
        Box::pin(async move { self.call(AGENT_PREFIX, "PollTasks", &req).await })
    }

    fn report(
        &self,
        req: ReportTaskStatesRequest,
    ) -> BoxFuture<'_, Result<ReportTaskStatesResponse, ControlError>> {
        Box::pin(async move { self.call(AGENT_PREFIX, "ReportTaskStates", &req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn error_bodies() {
        let e = parse_error(
            400,
            br#"{"__type":"com.amazonaws.ecs#ClusterNotFoundException","message":"Cluster not found."}"#,
        );
        assert_eq!(
            e,
            ControlError::Service {
                status: 400,
                code: "ClusterNotFoundException".into(),
                message: "Cluster not found.".into()
            }
        );
        assert!(!e.is_retryable());
        let e = parse_error(500, b"oops");
        assert!(
            matches!(&e, ControlError::Service { code, message, .. } if code == "HTTP500" && message == "oops")
        );
        assert!(e.is_retryable());
        let e = parse_error(
            400,
            br#"{"__type":"ThrottlingException:http://x","message":"slow"}"#,
        );
        assert!(matches!(&e, ControlError::Service { code, .. } if code == "ThrottlingException"));
        assert!(e.is_retryable());
        assert!(ControlError::Transport("x".into()).is_retryable());
    }

    /// Throttling is recognised by the whole code: a code that merely
    /// contains the word is an ordinary client error.
    #[test]
    fn throttling_is_classified_by_code() {
        assert_eq!(
            ErrorClass::of("ThrottlingException"),
            ErrorClass::Throttling
        );
        assert_eq!(
            ErrorClass::of("TooManyRequestsException"),
            ErrorClass::Throttling
        );
        assert_eq!(
            ErrorClass::of("NotThrottledYetException"),
            ErrorClass::Other
        );
        assert_eq!(ErrorClass::of("ClientException"), ErrorClass::Other);
        let e = parse_error(
            400,
            br#"{"__type":"NotThrottledYetException","message":"Throttled"}"#,
        );
        assert!(!e.is_retryable());
        let e = parse_error(400, br#"{"__type":"RequestLimitExceeded","message":"x"}"#);
        assert!(e.is_retryable());
    }

    /// One request against a throwaway TCP server: the request is signed,
    /// carries the agent target, and the answer is parsed.
    #[tokio::test]
    async fn signs_and_targets() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let body = r#"{"revision":7,"tasks":[]}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
            String::from_utf8(buf).unwrap()
        });
        let cp = HttpControlPlane::new(
            &format!("http://{addr}"),
            "AKIDEXAMPLE",
            "secret",
            None,
            "us-east-1",
        )
        .unwrap();
        let resp = cp
            .poll(PollTasksRequest {
                cluster: "default".into(),
                container_instance_arn: "arn".into(),
                known_revision: 3,
                wait_seconds: 20,
            })
            .await
            .unwrap();
        assert_eq!(resp.revision, 7);
        let req = server.await.unwrap().to_ascii_lowercase();
        assert!(
            req.contains("x-amz-target: stevedoreagent_20261122.polltasks"),
            "{req}"
        );
        assert!(
            req.contains("authorization: aws4-hmac-sha256 credential=akidexample/"),
            "{req}"
        );
        assert!(req.contains("/us-east-1/ecs/aws4_request"), "{req}");
        assert!(req.contains("x-amz-date:"), "{req}");
        assert!(req.contains(r#""knownrevision":3"#), "{req}");
    }

    #[tokio::test]
    async fn unreachable_is_transport() {
        let cp = HttpControlPlane::new("http://127.0.0.1:1", "a", "b", None, "us-east-1").unwrap();
        let e = cp
            .report(ReportTaskStatesRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(e, ControlError::Transport(_)), "{e:?}");
        assert!(HttpControlPlane::new("http://", "a", "b", None, "r").is_err());
    }
}
