//! Requests signed by the real `aws-sigv4` crate (what aws-sdk-ecs uses), verified by ours.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use stevedore_auth::{
    canonical_request, AuthError, Credential, CredentialLookup, ParsedSignature, RequestParts,
    Verifier,
};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const ACCOUNT: &str = "123456789012";
const ENDPOINT: &str = "http://127.0.0.1:4000";
/// 2024-01-01T00:30:00Z
const T0: u64 = 1_704_069_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn credential(secret: &str) -> Credential {
    Credential {
        access_key_id: AKID.to_string(),
        secret_access_key: secret.to_string(),
        account_id: ACCOUNT.to_string(),
        principal: "alice".to_string(),
    }
}

fn lookup(akid: &str) -> Option<Credential> {
    (akid == AKID).then(|| credential(SECRET))
}

/// A request as the server would see it: owned parts.
#[derive(Clone, Debug)]
struct Wire {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Wire {
    fn verify_with(
        &self,
        verifier: &Verifier,
        now: SystemTime,
        lookup: &dyn CredentialLookup,
    ) -> Result<stevedore_auth::Verified, AuthError> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let parts = RequestParts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &headers,
            body: &self.body,
        };
        verifier.verify(&parts, now, lookup)
    }

    fn verify(&self, now: SystemTime) -> Result<stevedore_auth::Verified, AuthError> {
        self.verify_with(&Verifier::default(), now, &lookup)
    }

    fn parse_only(&self, now: SystemTime) -> Result<ParsedSignature, AuthError> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let parts = RequestParts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &headers,
            body: &self.body,
        };
        Verifier::default().parse_only(&parts, now)
    }

    fn canonical(&self) -> String {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        canonical_request(&RequestParts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &headers,
            body: &self.body,
        })
        .unwrap()
    }

    fn header(&self, name: &str) -> &str {
        let (_, v) = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("no {name} header"));
        std::str::from_utf8(v).unwrap()
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_string(), value.as_bytes().to_vec()));
    }

    fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

struct Signer<'a> {
    method: &'a str,
    uri: String,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
    signable_body: Option<SignableBody<'a>>,
    credentials: Credentials,
    region: &'a str,
    service: &'a str,
    time: SystemTime,
    settings: SigningSettings,
}

impl<'a> Signer<'a> {
    /// `POST /` exactly as aws-sdk-ecs sends ListClusters to a custom endpoint.
    fn list_clusters() -> Self {
        Signer {
            method: "POST",
            uri: format!("{ENDPOINT}/"),
            headers: vec![
                ("content-type", "application/x-amz-json-1.1"),
                (
                    "x-amz-target",
                    "AmazonEC2ContainerServiceV20141113.ListClusters",
                ),
                ("content-length", "2"),
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
            ],
            body: b"{}",
            signable_body: None,
            credentials: Credentials::new(AKID, SECRET, None, None, "hardcoded-credentials"),
            region: "us-west-2",
            service: "ecs",
            time: at(T0),
            settings: SigningSettings::default(),
        }
    }

    fn sign(self) -> Wire {
        let identity = self.credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(self.settings)
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            self.method,
            self.uri.as_str(),
            self.headers.iter().copied(),
            self.signable_body.unwrap_or(SignableBody::Bytes(self.body)),
        )
        .unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

        let mut request = http::Request::builder()
            .method(self.method)
            .uri(self.uri.as_str());
        for (name, value) in &self.headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);

        // What the server receives: the HTTP client adds `host` from the URI authority.
        let uri = request.uri().clone();
        let mut headers: Vec<(String, Vec<u8>)> = vec![(
            "host".to_string(),
            uri.authority().unwrap().as_str().as_bytes().to_vec(),
        )];
        for (name, value) in request.headers() {
            headers.push((name.as_str().to_string(), value.as_bytes().to_vec()));
        }
        Wire {
            method: self.method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers,
            body: self.body.to_vec(),
        }
    }
}

fn list_clusters() -> Wire {
    Signer::list_clusters().sign()
}

#[test]
fn list_clusters_signed_like_aws_sdk_ecs_verifies() {
    let wire = list_clusters();
    assert!(wire.header("authorization").starts_with(&format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20240101/us-west-2/ecs/aws4_request, SignedHeaders="
    )));
    assert_eq!(wire.header("x-amz-date"), "20240101T003000Z");

    let verified = wire.verify(at(T0)).unwrap();
    assert_eq!(verified.access_key_id, AKID);
    assert_eq!(verified.account_id, ACCOUNT);
    assert_eq!(verified.principal, "alice");
    assert_eq!(verified.region, "us-west-2");
    assert_eq!(verified.service, "ecs");
    assert_eq!(verified.date, "20240101");

    // The canonical request we rebuilt (user-agent is not signed by the SDK).
    assert_eq!(
        wire.canonical(),
        "POST\n/\n\n\
         amz-sdk-invocation-id:5b2f4a6c-8a7d-4d55-9c1e-2b1f5f1d8a10\n\
         amz-sdk-request:attempt=1; max=3\n\
         content-length:2\n\
         content-type:application/x-amz-json-1.1\n\
         host:127.0.0.1:4000\n\
         x-amz-date:20240101T003000Z\n\
         x-amz-target:AmazonEC2ContainerServiceV20141113.ListClusters\n\
         x-amz-user-agent:aws-sdk-rust/1.3.9 ua/2.1 api/ecs/1.96.0 os/linux lang/rust/1.90.0\n\n\
         amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-date;x-amz-target;x-amz-user-agent\n\
         44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );

    // Same request, verified again: served from the signing-key cache, still Ok.
    let verifier = Verifier::default();
    for _ in 0..3 {
        assert_eq!(
            wire.verify_with(&verifier, at(T0), &lookup).unwrap().region,
            "us-west-2"
        );
    }
    // Header names in another case, and a HashMap as the lookup: still Ok.
    let mut upper = wire.clone();
    for (name, _) in &mut upper.headers {
        *name = name.to_ascii_uppercase();
    }
    let map: HashMap<String, Credential> = [(AKID.to_string(), credential(SECRET))].into();
    assert!(upper.verify_with(&verifier, at(T0), &map).is_ok());
}

#[test]
fn session_token_must_be_signed() {
    let mut signer = Signer::list_clusters();
    signer.credentials = Credentials::new(
        AKID,
        SECRET,
        Some("FwoGZXIvYXdzEXAMPLETOKEN".to_string()),
        None,
        "hardcoded-credentials",
    );
    let wire = signer.sign();
    assert!(wire
        .header("authorization")
        .contains("x-amz-security-token"));
    assert_eq!(wire.verify(at(T0)).unwrap().account_id, ACCOUNT);

    // Changing the (signed) token breaks the signature.
    let mut tampered = wire.clone();
    tampered.set_header("x-amz-security-token", "FwoGZXIvYXdzEXAMPLETOKEM");
    assert_eq!(tampered.verify(at(T0)), Err(AuthError::InvalidSignature));

    // A token added after signing (not in SignedHeaders) is refused.
    let mut unsigned = list_clusters();
    unsigned.set_header("X-Amz-Security-Token", "FwoGZXIvYXdzEXAMPLETOKEN");
    match unsigned.verify(at(T0)) {
        Err(AuthError::IncompleteSignature(msg)) => {
            assert!(msg.contains("X-Amz-Security-Token"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn path_with_spaces_unicode_and_unsorted_repeated_query_verifies() {
    let mut signer = Signer::list_clusters();
    signer.method = "GET";
    signer.body = b"";
    signer.headers = vec![("accept", "application/json")];
    // Already percent-encoded, as it goes on the wire: spaces, UTF-8 (é, €, ሴ), reserved
    // characters, a `%` that the SDK double-encodes.
    signer.uri = format!(
        "{ENDPOINT}/v1/my%20cluster/caf%C3%A9/%E2%82%AC/%E1%88%B4/arn%3Aaws%3Aecs/100%25?\
         zeta=last&b=2&a=3&a=1&a=2&empty=&flag&sp=a%20b&plus=1%2B1&slash=x%2Fy&uni=%C3%A9"
    );
    let wire = signer.sign();
    assert_eq!(
        wire.path,
        "/v1/my%20cluster/caf%C3%A9/%E2%82%AC/%E1%88%B4/arn%3Aaws%3Aecs/100%25"
    );
    let verified = wire.verify(at(T0)).unwrap();
    assert_eq!(verified.region, "us-west-2");

    let creq = wire.canonical();
    let mut lines = creq.lines();
    assert_eq!(lines.next(), Some("GET"));
    assert_eq!(
        lines.next(),
        Some("/v1/my%2520cluster/caf%25C3%25A9/%25E2%2582%25AC/%25E1%2588%25B4/arn%253Aaws%253Aecs/100%2525")
    );
    assert_eq!(
        lines.next(),
        Some("a=1&a=2&a=3&b=2&empty=&flag=&plus=1%2B1&slash=x%2Fy&sp=a%20b&uni=%C3%A9&zeta=last")
    );

    // The same query in another order and with `+` for the space: same canonical form, Ok.
    let mut reordered = wire.clone();
    reordered.query = Some(
        "uni=%c3%a9&sp=a+b&a=2&a=3&flag&slash=x%2Fy&zeta=last&plus=1%2B1&b=2&empty=&a=1".into(),
    );
    assert!(reordered.verify(at(T0)).is_ok());

    // But a decoded (single-encoded) path is not what was signed.
    let mut decoded = wire.clone();
    decoded.path = "/v1/my cluster/café/€/ሴ/arn:aws:ecs/100%".into();
    assert_eq!(decoded.verify(at(T0)), Err(AuthError::InvalidSignature));
}

#[test]
fn dot_segments_and_double_slashes_are_normalized_like_the_sdk() {
    let mut signer = Signer::list_clusters();
    signer.uri = format!("{ENDPOINT}//a/./b/../c//d/");
    let wire = signer.sign();
    assert_eq!(wire.path, "//a/./b/../c//d/");
    assert!(wire.verify(at(T0)).is_ok());
    assert!(wire.canonical().starts_with("POST\n/a/c/d/\n"));
}

#[test]
fn any_tampering_is_rejected() {
    let wire = list_clusters();
    assert!(wire.verify(at(T0)).is_ok());
    let now = at(T0);

    let mut t = wire.clone();
    t.body = b"{ }".to_vec();
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "body");

    let mut t = wire.clone();
    t.body[0] ^= 1;
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "body byte");

    let mut t = wire.clone();
    t.set_header(
        "x-amz-target",
        "AmazonEC2ContainerServiceV20141113.DeleteCluster",
    );
    assert_eq!(
        t.verify(now),
        Err(AuthError::InvalidSignature),
        "signed header"
    );

    let mut t = wire.clone();
    t.set_header("host", "127.0.0.1:4001");
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "host");

    // A repeated signed header is part of the signature too.
    let mut t = wire.clone();
    t.headers
        .push(("Content-Type".into(), b"text/plain".to_vec()));
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "repeat");

    // Unsigned headers may change (user-agent is not signed by the SDKs).
    let mut t = wire.clone();
    t.set_header("user-agent", "something else");
    t.set_header("x-forwarded-for", "10.0.0.1");
    assert!(t.verify(now).is_ok(), "unsigned header");

    // Whitespace that canonicalization removes does not matter.
    let mut t = wire.clone();
    let target = format!("  {}  ", wire.header("x-amz-target"));
    t.set_header("x-amz-target", &target);
    assert!(t.verify(now).is_ok(), "whitespace");

    let mut t = wire.clone();
    t.method = "PUT".into();
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "method");

    let mut t = wire.clone();
    t.path = "/x".into();
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "path");

    let mut t = wire.clone();
    t.query = Some("a=1".into());
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "query");

    let auth = wire.header("authorization").to_string();

    let mut t = wire.clone();
    t.set_header("authorization", &auth.replace("/us-west-2/", "/us-east-1/"));
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "region");

    let mut t = wire.clone();
    t.set_header("authorization", &auth.replace("/ecs/", "/sts/"));
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "service");

    let mut t = wire.clone();
    t.set_header(
        "authorization",
        &auth.replace("SignedHeaders=amz-sdk-invocation-id;", "SignedHeaders="),
    );
    assert_eq!(
        t.verify(now),
        Err(AuthError::InvalidSignature),
        "signed list"
    );

    // Date: a second later, same day.
    let mut t = wire.clone();
    t.set_header("x-amz-date", "20240101T003001Z");
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "date");

    // Date: another day than the credential scope.
    let mut t = wire.clone();
    t.set_header("x-amz-date", "20240102T003000Z");
    let err = t.verify(now).unwrap_err();
    assert_eq!(
        err,
        AuthError::ScopeDateMismatch {
            scope_date: "20240101".into(),
            amz_date: "20240102T003000Z".into()
        }
    );
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20240101' != '20240102', from '20240102T003000Z'."
    );

    // Date and scope moved together: still the wrong signature.
    let mut t = wire.clone();
    t.set_header("x-amz-date", "20231231T235959Z");
    t.set_header("authorization", &auth.replace("/20240101/", "/20231231/"));
    // (checked at 00:10, within the window of 23:59:59 the day before)
    assert_eq!(
        t.verify(at(T0 - 20 * 60)),
        Err(AuthError::InvalidSignature),
        "date+scope"
    );

    // Signature itself.
    let sig_at = auth.find("Signature=").unwrap() + "Signature=".len();
    let mut flipped = auth.clone();
    let c = if &auth[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    flipped.replace_range(sig_at..sig_at + 1, c);
    let mut t = wire.clone();
    t.set_header("authorization", &flipped);
    assert_eq!(t.verify(now), Err(AuthError::InvalidSignature), "signature");
}

#[test]
fn unknown_key_wrong_secret_and_missing_auth() {
    let wire = list_clusters();
    let now = at(T0);

    let nobody = |_: &str| -> Option<Credential> { None };
    let err = wire
        .verify_with(&Verifier::default(), now, &nobody)
        .unwrap_err();
    assert_eq!(err, AuthError::UnrecognizedClient);
    assert_eq!(err.code(), "UnrecognizedClientException");
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );

    let wrong = |_: &str| Some(credential("not-the-secret"));
    let err = wire
        .verify_with(&Verifier::default(), now, &wrong)
        .unwrap_err();
    assert_eq!(err, AuthError::InvalidSignature);
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    );

    let mut t = wire.clone();
    t.remove_header("authorization");
    let err = t.verify(now).unwrap_err();
    assert_eq!(err, AuthError::MissingAuthenticationToken);
    assert_eq!(err.code(), "MissingAuthenticationTokenException");
    assert_eq!(err.http_status(), 403);
    assert_eq!(
        t.parse_only(now),
        Err(AuthError::MissingAuthenticationToken)
    );

    let mut t = wire.clone();
    t.remove_header("x-amz-date");
    match t.verify(now) {
        Err(e @ AuthError::IncompleteSignature(_)) => {
            assert_eq!(e.code(), "IncompleteSignatureException");
            assert!(
                e.to_string().contains("'X-Amz-Date' or a 'Date' header"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rotated_secret_is_not_served_a_cached_key() {
    let verifier = Verifier::default();
    let wire = list_clusters();
    let old = |_: &str| Some(credential(SECRET));
    assert!(wire.verify_with(&verifier, at(T0), &old).is_ok());

    const NEW_SECRET: &str = "9drTJvcXLB89EXAMPLELB8923FB892xMFI/NEW+";
    let new = |_: &str| Some(credential(NEW_SECRET));
    assert_eq!(
        wire.verify_with(&verifier, at(T0), &new),
        Err(AuthError::InvalidSignature)
    );
    let mut signer = Signer::list_clusters();
    signer.credentials = Credentials::new(AKID, NEW_SECRET, None, None, "hardcoded-credentials");
    let rewire = signer.sign();
    assert!(rewire.verify_with(&verifier, at(T0), &new).is_ok());
    assert_eq!(
        rewire.verify_with(&verifier, at(T0), &old),
        Err(AuthError::InvalidSignature)
    );
}

#[test]
fn clock_skew_window_is_fifteen_minutes() {
    let wire = list_clusters(); // signed at 20240101T003000Z

    // 14 minutes either way: fine.
    assert!(wire.verify(at(T0 + 14 * 60)).is_ok());
    assert!(wire.verify(at(T0 - 14 * 60)).is_ok());
    assert!(wire.verify(at(T0 + 15 * 60)).is_ok());

    // Received 16 minutes after signing.
    let err = wire.verify(at(T0 + 16 * 60)).unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    match &err {
        AuthError::RequestExpired {
            skew_secs,
            request_time,
            server_time,
            ..
        } => {
            assert_eq!(*skew_secs, -960);
            assert_eq!(request_time, "20240101T003000Z");
            assert_eq!(server_time, "20240101T004600Z");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "Signature expired: 20240101T003000Z is now earlier than 20240101T003100Z \
         (20240101T004600Z - 15 min.); clock skew: 960 seconds."
    );

    // Received 16 minutes *before* it was signed (client clock ahead).
    let err = wire.verify(at(T0 - 16 * 60)).unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert!(matches!(
        err,
        AuthError::RequestExpired { skew_secs: 960, .. }
    ));
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20240101T003000Z is still later than 20240101T002900Z \
         (20240101T001400Z + 15 min.); clock skew: 960 seconds."
    );

    // parse_only applies the same window.
    assert!(wire.parse_only(at(T0 + 14 * 60)).is_ok());
    assert!(matches!(
        wire.parse_only(at(T0 + 16 * 60)),
        Err(AuthError::RequestExpired { .. })
    ));

    // A custom window.
    let verifier = Verifier::new(Duration::from_secs(90));
    let err = wire
        .verify_with(&verifier, at(T0 + 100), &lookup)
        .unwrap_err();
    assert!(
        err.to_string().contains("(20240101T003140Z - 90 sec.)"),
        "{err}"
    );
}

#[test]
fn date_header_is_accepted_when_x_amz_date_is_absent() {
    let mut signer = Signer::list_clusters();
    let mut settings = SigningSettings::default();
    let mut excluded = settings.excluded_headers.take().unwrap_or_default();
    excluded.push(Cow::Borrowed("x-amz-date"));
    settings.excluded_headers = Some(excluded);
    signer.settings = settings;
    let mut wire = signer.sign();
    assert!(!wire.header("authorization").contains("x-amz-date"));
    wire.remove_header("x-amz-date");
    wire.set_header("Date", "Mon, 01 Jan 2024 00:30:00 GMT");
    assert_eq!(wire.verify(at(T0)).unwrap().date, "20240101");

    wire.set_header("Date", "Mon, 01 Jan 2024 00:30:01 GMT");
    assert_eq!(wire.verify(at(T0)), Err(AuthError::InvalidSignature));
}

#[test]
fn x_amz_content_sha256_is_checked_against_the_body() {
    let mut signer = Signer::list_clusters();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    signer.settings = settings.clone();
    let wire = signer.sign();
    assert_eq!(
        wire.header("x-amz-content-sha256"),
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert!(wire.verify(at(T0)).is_ok());

    let mut t = wire.clone();
    t.body = b"[]".to_vec();
    let err = t.verify(at(T0)).unwrap_err();
    assert_eq!(err, AuthError::ContentSha256Mismatch);
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(t.parse_only(at(T0)), Err(AuthError::ContentSha256Mismatch));

    // UNSIGNED-PAYLOAD: the body is not covered.
    let mut signer = Signer::list_clusters();
    signer.settings = settings;
    signer.signable_body = Some(SignableBody::UnsignedPayload);
    let wire = signer.sign();
    assert_eq!(wire.header("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    assert!(wire.verify(at(T0)).is_ok());
    let mut t = wire.clone();
    t.body = b"{\"anything\":1}".to_vec();
    assert!(t.verify(at(T0)).is_ok());
    // ... but the header value itself is signed.
    let mut t = wire.clone();
    t.set_header(
        "x-amz-content-sha256",
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    );
    assert_eq!(t.verify(at(T0)), Err(AuthError::InvalidSignature));
    // Streaming (aws-chunked) payloads are not supported.
    let mut t = wire.clone();
    t.set_header("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    assert!(matches!(
        t.verify(at(T0)),
        Err(AuthError::IncompleteSignature(_))
    ));
}

fn presigned(body: SignableBody<'static>, expires: Duration) -> Wire {
    let mut signer = Signer::list_clusters();
    signer.method = "GET";
    signer.uri = format!("{ENDPOINT}/v1/clusters/my%20cluster?b=2&a=1");
    signer.headers = vec![];
    signer.body = b"";
    signer.signable_body = Some(body);
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    signer.settings = settings;
    signer.sign()
}

#[test]
fn presigned_urls_verify() {
    let wire = presigned(SignableBody::UnsignedPayload, Duration::from_secs(3600));
    let query = wire.query.clone().unwrap();
    assert!(
        query.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"),
        "{query}"
    );
    assert!(query.contains("X-Amz-Signature="), "{query}");
    assert!(!wire.headers.iter().any(|(n, _)| n == "authorization"));

    let verified = wire.verify(at(T0)).unwrap();
    assert_eq!(verified.region, "us-west-2");
    assert_eq!(verified.service, "ecs");
    assert_eq!(verified.account_id, ACCOUNT);
    assert_eq!(
        wire.parse_only(at(T0)).unwrap(),
        ParsedSignature {
            access_key_id: AKID.into(),
            region: "us-west-2".into(),
            service: "ecs".into(),
            date: "20240101".into(),
        }
    );

    // Valid for its whole X-Amz-Expires (longer than the skew window), then expired.
    assert!(wire.verify(at(T0 + 3600)).is_ok());
    let err = wire.verify(at(T0 + 3601)).unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert!(matches!(
        err,
        AuthError::RequestExpired {
            skew_secs: -3601,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "Signature expired: 20240101T003000Z + 3600 sec. (20240101T013000Z) is now earlier than \
         20240101T013001Z; the presigned request was signed 3601 seconds ago."
    );
    // Not usable long before it was signed either.
    assert!(matches!(
        wire.verify(at(T0 - 16 * 60)),
        Err(AuthError::RequestExpired { skew_secs: 960, .. })
    ));

    // Tampering.
    let mut t = wire.clone();
    t.query = Some(query.replace("b=2", "b=3"));
    assert_eq!(t.verify(at(T0)), Err(AuthError::InvalidSignature));
    let mut t = wire.clone();
    t.query = Some(query.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200"));
    assert_eq!(t.verify(at(T0)), Err(AuthError::InvalidSignature));
    let mut t = wire.clone();
    t.query = Some(query.replace("us-west-2", "us-east-1"));
    assert_eq!(t.verify(at(T0)), Err(AuthError::InvalidSignature));
    let mut t = wire.clone();
    t.path = "/v1/clusters/other".into();
    assert_eq!(t.verify(at(T0)), Err(AuthError::InvalidSignature));
    let mut t = wire.clone();
    t.set_header("host", "evil.example.com");
    assert_eq!(t.verify(at(T0)), Err(AuthError::InvalidSignature));

    // Presigned query *and* an Authorization header: refused.
    let mut t = wire.clone();
    t.set_header("authorization", list_clusters().header("authorization"));
    assert!(matches!(
        t.verify(at(T0)),
        Err(AuthError::IncompleteSignature(_))
    ));
    // A presigned URL missing X-Amz-Expires: refused.
    let mut t = wire.clone();
    t.query = Some(
        query
            .split('&')
            .filter(|p| !p.starts_with("X-Amz-Expires="))
            .collect::<Vec<_>>()
            .join("&"),
    );
    match t.verify(at(T0)) {
        Err(AuthError::IncompleteSignature(m)) => assert!(m.contains("missing: X-Amz-Expires")),
        other => panic!("{other:?}"),
    }
    // More than a week: refused.
    let mut t = wire.clone();
    t.query = Some(query.replace("X-Amz-Expires=3600", "X-Amz-Expires=604801"));
    assert!(matches!(
        t.verify(at(T0)),
        Err(AuthError::IncompleteSignature(_))
    ));
}

#[test]
fn presigned_with_a_hashed_body_verifies() {
    // aws-sigv4 hashes the body when given one (the CRT test suite does the same).
    let wire = presigned(SignableBody::Bytes(b""), Duration::from_secs(900));
    assert!(wire.verify(at(T0)).is_ok());
    let mut t = wire.clone();
    t.body = b"x".to_vec();
    assert_eq!(t.verify(at(T0)), Err(AuthError::InvalidSignature));
}

#[test]
fn parse_only_checks_form_not_secret() {
    let wire = list_clusters();
    // Any secret, any key: parse_only does not care.
    let mut t = wire.clone();
    let auth = wire
        .header("authorization")
        .replace(AKID, "AKIAANYTHINGATALL000");
    t.set_header("authorization", &auth);
    assert_eq!(
        t.parse_only(at(T0)).unwrap(),
        ParsedSignature {
            access_key_id: "AKIAANYTHINGATALL000".into(),
            region: "us-west-2".into(),
            service: "ecs".into(),
            date: "20240101".into(),
        }
    );
    // But the form must be right.
    for (bad, needle) in [
        ("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-west-2/ecs/aws4_request, SignedHeaders=host;x-amz-date", "'Signature'"),
        ("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-west-2/ecs, SignedHeaders=host;x-amz-date, Signature=aa", "Credential should be"),
        ("AWS4-HMAC-SHA256 Credential=AKID/2024011/us-west-2/ecs/aws4_request, SignedHeaders=host, Signature=aa", "valid date"),
        ("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-west-2/ecs/aws4_request, SignedHeaders=x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000", "'Host'"),
        ("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-west-2/ecs/aws4_request, SignedHeaders=host, Signature=xyz", "64 hexadecimal"),
        ("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-west-2/ecs/aws4_request, SignedHeaders=host;;x, Signature=0000000000000000000000000000000000000000000000000000000000000000", "SignedHeaders"),
        ("AWS4-ECDSA-P256-SHA256 Credential=AKID/20240101/ecs/aws4_request", "algorithm"),
        ("Bearer abc", "algorithm"),
        ("AWS4-HMAC-SHA256 garbage", "missing equal-sign"),
    ] {
        let mut t = wire.clone();
        t.set_header("authorization", bad);
        match t.parse_only(at(T0)) {
            Err(e @ AuthError::IncompleteSignature(_)) => {
                assert!(e.to_string().contains(needle), "{bad}: {e}");
                assert_eq!(e.code(), "IncompleteSignatureException");
                assert_eq!(t.verify(at(T0)), Err(e), "verify agrees for {bad}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // Two Authorization headers.
    let mut t = wire.clone();
    t.headers.push((
        "Authorization".into(),
        wire.header("authorization").as_bytes().to_vec(),
    ));
    assert!(matches!(
        t.parse_only(at(T0)),
        Err(AuthError::IncompleteSignature(_))
    ));
}
