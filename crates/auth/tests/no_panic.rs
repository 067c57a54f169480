//! Random garbage (and random damage to a valid request) never panics the verifier.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, UNIX_EPOCH};
use stevedore_auth::{canonical_request, Credential, RequestParts, Verifier};

const VALID_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

const TOKENS: &[&str] = &[
    "AWS4-HMAC-SHA256",
    "AWS4-HMAC-SHA256 ",
    "Credential=",
    "SignedHeaders=",
    "Signature=",
    "AKIDEXAMPLE",
    "/",
    "//",
    "/.",
    "/..",
    ",",
    ", ",
    "=",
    "==",
    ";",
    ";;",
    "&",
    "?",
    "%",
    "%2",
    "%25",
    "%zz",
    "%C3%A9",
    "%FF",
    "+",
    " ",
    "\t",
    "  ",
    "20150830",
    "20150830T123600Z",
    "T",
    "Z",
    "99999999T999999Z",
    "00000000T000000Z",
    "Sun, 30 Aug 2015 12:36:00 GMT",
    "us-east-1",
    "service",
    "aws4_request",
    "host",
    "x-amz-date",
    "x-amz-security-token",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "604800",
    "18446744073709551615",
    "-1",
    "UNSIGNED-PAYLOAD",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    "é",
    "ሴ",
    "😀",
    "\u{0}",
    "\n",
];

const HEADER_NAMES: &[&str] = &[
    "Authorization",
    "authorization",
    "X-Amz-Date",
    "x-amz-date",
    "Date",
    "Host",
    "x-amz-content-sha256",
    "X-Amz-Security-Token",
    "My-Header",
    "",
    ":authority",
];

fn garbage_str(rng: &mut StdRng) -> String {
    let n = rng.random_range(0..12);
    let mut s = String::new();
    for _ in 0..n {
        if rng.random_bool(0.8) {
            s.push_str(TOKENS[rng.random_range(0..TOKENS.len())]);
        } else {
            s.push(rng.random::<char>());
        }
    }
    s
}

fn garbage_bytes(rng: &mut StdRng) -> Vec<u8> {
    let mut v = garbage_str(rng).into_bytes();
    if rng.random_bool(0.3) {
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..=v.len());
            v.insert(at, rng.random::<u8>()); // possibly invalid UTF-8
        }
    }
    v
}

/// Damages a valid string: splices garbage in, cuts, or replaces it (at byte positions, then
/// made valid UTF-8 again lossily).
fn damage(rng: &mut StdRng, valid: &str) -> Vec<u8> {
    let mut v = valid.as_bytes().to_vec();
    match rng.random_range(0..4) {
        0 => {
            let at = rng.random_range(0..=v.len());
            let junk = garbage_bytes(rng);
            v.splice(at..at, junk);
        }
        1 => {
            let at = rng.random_range(0..=v.len());
            v.truncate(at);
        }
        2 => {
            if !v.is_empty() {
                let at = rng.random_range(0..v.len());
                v[at] = rng.random();
            }
        }
        _ => v = garbage_bytes(rng),
    }
    v
}

#[test]
fn random_inputs_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed_cafe);
    let verifier = Verifier::with_cache_capacity(Duration::from_secs(900), 8);
    let anyone = |akid: &str| {
        Some(Credential {
            access_key_id: akid.to_string(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string(),
            account_id: "123456789012".to_string(),
            principal: "root".to_string(),
        })
    };
    let mut oks = 0;
    let iterations = 20_000;
    for i in 0..iterations {
        let mut headers: Vec<(String, Vec<u8>)> = vec![
            ("Host".into(), b"example.amazonaws.com".to_vec()),
            ("X-Amz-Date".into(), b"20150830T123600Z".to_vec()),
            ("Authorization".into(), VALID_AUTH.as_bytes().to_vec()),
        ];
        // Damage some of the valid headers, add random ones.
        for h in headers.iter_mut() {
            if rng.random_bool(0.4) {
                let valid = String::from_utf8_lossy(&h.1).into_owned();
                h.1 = damage(&mut rng, &valid);
            }
        }
        for _ in 0..rng.random_range(0..4) {
            let name = if rng.random_bool(0.7) {
                HEADER_NAMES[rng.random_range(0..HEADER_NAMES.len())].to_string()
            } else {
                garbage_str(&mut rng)
            };
            headers.push((name, garbage_bytes(&mut rng)));
        }
        let path = if rng.random_bool(0.5) {
            "/".to_string()
        } else {
            garbage_str(&mut rng)
        };
        let query = match rng.random_range(0..3) {
            0 => None,
            1 => Some(garbage_str(&mut rng)),
            _ => {
                // A damaged presigned query.
                let valid = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d";
                Some(String::from_utf8_lossy(&damage(&mut rng, valid)).into_owned())
            }
        };
        let method = if rng.random_bool(0.8) {
            "GET".to_string()
        } else {
            garbage_str(&mut rng)
        };
        let body = garbage_bytes(&mut rng);

        let header_refs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let req = RequestParts {
            method: &method,
            path: &path,
            query: query.as_deref(),
            headers: &header_refs,
            body: &body,
        };
        // Around the signing time, or anywhere at all.
        let now = if i % 5 == 0 {
            UNIX_EPOCH + Duration::from_secs(rng.random_range(0..u64::from(u32::MAX) * 4))
        } else {
            UNIX_EPOCH + Duration::from_secs(1_440_938_160 + rng.random_range(0..600))
        };

        let verified = verifier.verify(&req, now, &anyone);
        let parsed = verifier.parse_only(&req, now);
        let _ = canonical_request(&req);
        if let Ok(v) = &verified {
            oks += 1;
            // A verified request is also well-formed, with the same identity.
            let p = parsed.expect("verified but not well-formed");
            assert_eq!((&p.access_key_id, &p.region), (&v.access_key_id, &v.region));
        }
        if let Err(e) = &verified {
            // Every error has a code and a message.
            assert!(e.code().ends_with("Exception"));
            assert!(!e.to_string().is_empty());
        }
    }
    // Some mutations leave the request valid (unsigned extra headers, untouched parts).
    assert!(oks > 0 && oks < iterations, "{oks} verified");

    // Extremes of time.
    let headers: &[(&str, &[u8])] = &[
        ("Host", b"example.amazonaws.com"),
        ("X-Amz-Date", b"20150830T123600Z"),
        ("Authorization", VALID_AUTH.as_bytes()),
    ];
    let req = RequestParts {
        method: "GET",
        path: "/",
        query: None,
        headers,
        body: b"",
    };
    for now in [
        UNIX_EPOCH,
        UNIX_EPOCH - Duration::from_secs(u64::MAX / 4),
        UNIX_EPOCH + Duration::from_secs(u64::MAX / 4),
    ] {
        assert!(verifier.verify(&req, now, &anyone).is_err());
    }
    let huge = Verifier::new(Duration::from_secs(u64::MAX));
    assert!(huge.verify(&req, UNIX_EPOCH, &anyone).is_ok());
    assert!(huge
        .verify(
            &req,
            UNIX_EPOCH + Duration::from_secs(u64::MAX / 4),
            &anyone
        )
        .is_ok());
}
