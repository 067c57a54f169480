//! Single-threaded verification throughput for an aws-sdk-ecs style request with a 100-byte body.
//!
//! `cargo run --release -p stevedore-auth --example auth_bench`

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};
use stevedore_auth::{Credential, RequestParts, Verifier};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn main() {
    let body = br#"{"cluster":"default","serviceName":"web","maxResults":100,"nextToken":"abcdefghijklmnopqrstuvwxyz0"}"#;
    assert_eq!(body.len(), 100);
    let now = SystemTime::now();
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        (
            "x-amz-target",
            "AmazonEC2ContainerServiceV20141113.ListServices",
        ),
        ("content-length", "100"),
        ("user-agent", "aws-sdk-rust/1.3.9 os/linux lang/rust/1.90.0"),
        (
            "x-amz-user-agent",
            "aws-sdk-rust/1.3.9 ua/2.1 api/ecs/1.96.0 os/linux lang/rust/1.90.0",
        ),
        (
            "amz-sdk-invocation-id",
            "5b2f4a6c-8a7d-4d55-9c1e-2b1f5f1d8a10",
        ),
        ("amz-sdk-request", "attempt=1; max=3"),
    ];
    let identity = Credentials::new(AKID, SECRET, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ecs")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        "http://127.0.0.1:4000/",
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();

    let mut wire: Vec<(String, Vec<u8>)> = vec![("host".into(), b"127.0.0.1:4000".to_vec())];
    for (n, v) in headers {
        wire.push((n.into(), v.as_bytes().to_vec()));
    }
    for (n, v) in instructions.headers() {
        wire.push((n.into(), v.as_bytes().to_vec()));
    }
    let wire_refs: Vec<(&str, &[u8])> = wire
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let req = RequestParts {
        method: "POST",
        path: "/",
        query: None,
        headers: &wire_refs,
        body,
    };
    let lookup = |akid: &str| {
        (akid == AKID).then(|| Credential {
            access_key_id: AKID.into(),
            secret_access_key: SECRET.into(),
            account_id: "123456789012".into(),
            principal: "root".into(),
        })
    };

    for (label, verifier) in [
        (
            "cached signing key",
            Verifier::new(Duration::from_secs(900)),
        ),
        (
            "no cache (key derived every time)",
            Verifier::with_cache_capacity(Duration::from_secs(900), 0),
        ),
    ] {
        verifier
            .verify(&req, now, &lookup)
            .expect("signed request verifies");
        // Warm up, then measure for ~2 s.
        for _ in 0..10_000 {
            black_box(verifier.verify(black_box(&req), now, &lookup).is_ok());
        }
        let mut n: u64 = 0;
        #[allow(clippy::disallowed_methods)] // a benchmark: it measures wall time
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            for _ in 0..1_000 {
                black_box(verifier.verify(black_box(&req), now, &lookup).is_ok());
            }
            n += 1_000;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{label}: {:.0} verifications/s ({:.2} µs each, single thread, 100-byte body)",
            n as f64 / secs,
            secs * 1e6 / n as f64
        );
    }
}
