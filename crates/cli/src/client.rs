//! A minimal signed JSON 1.1 client for Stevedore's own endpoints, signing
//! with the same SigV4 implementation the AWS SDKs use.

use crate::paths::ServerInfo;
use anyhow::{bail, Context, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

pub async fn call(
    info: &ServerInfo,
    target_prefix: &str,
    op: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let url = format!("{}/", info.endpoint.trim_end_matches('/'));
    let body = serde_json::to_vec(body)?;
    let target = format!("{target_prefix}.{op}");
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .context("endpoint has no host")?
        .to_string();
    let headers = [
        ("host", host.as_str()),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target.as_str()),
    ];
    let identity = Credentials::new(
        &info.access_key_id,
        &info.secret_access_key,
        None,
        None,
        "stevedore",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&info.region)
        .name(stevedore_api::ecs::SIGNING_NAME)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .context("cannot build signing parameters")?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(&body),
    )
    .context("cannot sign request")?;
    let (instructions, _) = sign(signable, &params)
        .context("cannot sign request")?
        .into_parts();
    let client = reqwest::Client::new();
    let mut req = client.post(&url).body(body.clone());
    for (k, v) in headers.iter().skip(1) {
        req = req.header(*k, *v);
    }
    for (k, v) in instructions.headers() {
        req = req.header(k, v);
    }
    let resp = req.send().await.with_context(|| {
        format!("cannot reach the server at {url}; is `stevedore server` running?")
    })?;
    let status = resp.status();
    let value: serde_json::Value = resp
        .json()
        .await
        .context("the server's answer is not JSON")?;
    if !status.is_success() {
        bail!(
            "{}: {}",
            value["__type"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or("")
        );
    }
    Ok(value)
}
