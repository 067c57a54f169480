//! AWS Signature Version 4 verification for Stevedore, with no HTTP framework types.
//!
//! The server hands every request to [`Verifier::verify`] as plain borrowed parts
//! ([`RequestParts`]: method, raw path, raw query, headers, body) and gets back who signed it
//! ([`Verified`]) or the AWS error to return ([`AuthError`], with [`AuthError::code`] and a
//! `Display` message matching what a real AWS JSON 1.1 service says).
//!
//! # What is checked, and why
//!
//! A SigV4 signature is an HMAC over a *canonical* rendering of the request, so the server must
//! rebuild exactly the bytes the client hashed. Everything below mirrors what the AWS SDKs
//! (aws-sigv4 for Rust, botocore for the aws CLI / boto3) do for a non-S3 service.
//!
//! * **Authorization header** `AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/service/aws4_request,
//!   SignedHeaders=a;b;c, Signature=<64 hex>`; any other algorithm, a missing part or a malformed
//!   credential scope is an [`AuthError::IncompleteSignature`]. No `Authorization` header and no
//!   presigned query is [`AuthError::MissingAuthenticationToken`]; both at once is rejected.
//! * **Presigned URLs** (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//!   `X-Amz-SignedHeaders`, `X-Amz-Signature` in the query) are supported too. Their canonical
//!   query is every parameter but `X-Amz-Signature`; their payload hash is `UNSIGNED-PAYLOAD`
//!   (botocore, S3-style presigners) or, failing that, the body's SHA-256 (what aws-sigv4 and the
//!   CRT test suite use when a body was given). Either way the signature binds what the signer
//!   chose; the URL is valid from `X-Amz-Date` (no more than the max skew in the future) until
//!   `X-Amz-Date + X-Amz-Expires` (at most 7 days).
//! * **Canonical URI: the raw path, normalized, then URI-encoded once more ("double encoding").**
//!   The SDKs sign non-S3 requests by taking the path *as sent on the wire* (already
//!   percent-encoded), removing `.`/`..` and empty segments, and URI-encoding it again with the
//!   RFC 3986 unreserved rule, `/` kept. So a wire path `/a%20b/@x` is signed as `/a%2520b/%40x`.
//!   The server must therefore use the raw path it received (not a decoded one) and repeat the
//!   same steps; decoding first, or encoding only once, breaks every path with a `%` in it.
//!   (S3 is the exception: it signs single-encoded, unnormalized paths. Stevedore is not S3.)
//! * **Canonical query string**: each `k=v` pair is decoded (`+` is a space) and re-encoded with
//!   the RFC 3986 unreserved rule, then sorted by key and then value (so repeated keys are
//!   ordered by value), so the client's choice of encoding or order does not matter.
//! * **Canonical headers** for exactly the `SignedHeaders` list, in that order: each value has
//!   leading/trailing spaces removed and runs of spaces collapsed to one (spaces only, like
//!   aws-sigv4 and the AWS test suite); repeated headers are joined with `,` in the order
//!   received. Headers not in the list (e.g. `user-agent`, which proxies rewrite) are ignored. `host` must be signed (so a request can't be replayed
//!   against another endpoint), and an `X-Amz-Security-Token` header, if present, must be signed
//!   too (there is no STS here, so the token is only ever part of the signature).
//! * **Payload hash**: `x-amz-content-sha256` if the client sent it (a literal hash must equal
//!   the SHA-256 of the body received, otherwise [`AuthError::ContentSha256Mismatch`];
//!   `UNSIGNED-PAYLOAD` is accepted as is), else the SHA-256 of the body.
//! * **Time**: `X-Amz-Date` (or, failing that, an HTTP `Date` header) must be present; the scope
//!   date must be its first 8 characters ([`AuthError::ScopeDateMismatch`]); the request time must
//!   be within ±`max_skew` (15 minutes, like AWS) of the server clock, or it is
//!   [`AuthError::RequestExpired`] with AWS's "Signature expired" / "Signature not yet current"
//!   message and the skew in seconds. This bounds how long a captured request can be replayed.
//! * **Signature**: string to sign `AWS4-HMAC-SHA256\n{amzdate}\n{date}/{region}/{service}/aws4_request\n{hex(sha256(canonical request))}`,
//!   HMAC with the derived signing key, compared to the given one in constant time (`subtle`).
//!   Unknown access key: [`AuthError::UnrecognizedClient`]; mismatch: [`AuthError::InvalidSignature`].
//!
//! The region and service are returned, not checked: the caller decides which ones it serves.
//!
//! [`Verifier::parse_only`] runs every check above except the secret lookup and the HMAC (for a
//! server started with `--accept-any-credentials`), and [`canonical_request`] renders the
//! canonical request for debug logs when a client's signature does not match.
//!
//! Signing keys are cached per (access key, date, region, service), and the cache entry also
//! remembers the secret it was derived from, so a rotated secret is never served a stale key.
//!
//! No input makes this crate panic: every slice and parse is checked.
//!
//! # Example
//! ```
//! use std::time::{Duration, SystemTime};
//! use stevedore_auth::{AuthError, Credential, RequestParts, Verifier};
//!
//! let verifier = Verifier::new(Duration::from_secs(15 * 60));
//! let lookup = |akid: &str| -> Option<Credential> { None };
//! let req = RequestParts { method: "POST", path: "/", query: None, headers: &[], body: b"{}" };
//! let err = verifier.verify(&req, SystemTime::now(), &lookup).unwrap_err();
//! assert_eq!(err, AuthError::MissingAuthenticationToken);
//! assert_eq!(err.code(), "MissingAuthenticationTokenException");
//! ```

mod cache;
mod canonical;
mod error;

pub use error::AuthError;

use cache::{HmacSha256, SigningKeyCache};
use hmac::Mac;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The only signing algorithm supported.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash placeholder for unsigned bodies.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The longest `X-Amz-Expires` accepted for a presigned URL (7 days, as in AWS).
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;
/// How many signing keys [`Verifier::new`] caches.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// One HTTP request, as borrowed parts.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method, as received (`POST`).
    pub method: &'a str,
    /// The raw path, still percent-encoded exactly as on the wire (`/a%20b`), without the query.
    pub path: &'a str,
    /// The raw query string without the `?`, still percent-encoded; `None` or `Some("")` if none.
    pub query: Option<&'a str>,
    /// All headers in the order received; names in any case, names may repeat. `host` must be
    /// among them (for HTTP/2, pass the `:authority` as `host`).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The full request body.
    pub body: &'a [u8],
}

/// A known access key.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// `AKIA...`
    pub access_key_id: String,
    /// The secret used to derive signing keys.
    pub secret_access_key: String,
    /// The 12-digit account the key belongs to.
    pub account_id: String,
    /// `root` or a user name.
    pub principal: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("account_id", &self.account_id)
            .field("principal", &self.principal)
            .finish()
    }
}

/// Finds the credential for an access key id. Implemented for closures
/// `Fn(&str) -> Option<Credential>` and for `HashMap<String, Credential>` keyed by access key id.
pub trait CredentialLookup {
    /// The credential for `access_key_id`, or `None` if the key is unknown (or disabled).
    fn lookup(&self, access_key_id: &str) -> Option<Credential>;
}

impl<F> CredentialLookup for F
where
    F: Fn(&str) -> Option<Credential>,
{
    fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        self(access_key_id)
    }
}

impl<S: std::hash::BuildHasher> CredentialLookup for HashMap<String, Credential, S> {
    fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        self.get(access_key_id).cloned()
    }
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id that signed the request.
    pub access_key_id: String,
    /// The account of that key.
    pub account_id: String,
    /// The principal of that key (`root` or a user name).
    pub principal: String,
    /// The region of the credential scope (not checked against anything).
    pub region: String,
    /// The service of the credential scope (not checked against anything).
    pub service: String,
    /// The date of the credential scope, `yyyymmdd`.
    pub date: String,
}

/// What [`Verifier::parse_only`] learns from a well-formed (but unchecked) signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    /// The access key id the client claims.
    pub access_key_id: String,
    /// The region of the credential scope.
    pub region: String,
    /// The service of the credential scope.
    pub service: String,
    /// The date of the credential scope, `yyyymmdd`.
    pub date: String,
}

/// Verifies SigV4-signed requests. Cheap to share between threads (`Send + Sync`).
pub struct Verifier {
    max_skew_secs: i64,
    cache: SigningKeyCache,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("max_skew_secs", &self.max_skew_secs)
            .field("cached_signing_keys", &self.cache.len())
            .finish()
    }
}

impl Default for Verifier {
    /// A verifier with AWS's 15-minute clock-skew window.
    fn default() -> Self {
        Self::new(Duration::from_secs(15 * 60))
    }
}

impl Verifier {
    /// A verifier accepting request times within ±`max_skew` of the server clock (AWS uses 15
    /// minutes), caching up to [`DEFAULT_CACHE_CAPACITY`] signing keys.
    pub fn new(max_skew: Duration) -> Self {
        Self::with_cache_capacity(max_skew, DEFAULT_CACHE_CAPACITY)
    }

    /// Like [`Verifier::new`] with a given signing-key cache size (0 disables the cache).
    pub fn with_cache_capacity(max_skew: Duration, capacity: usize) -> Self {
        Self {
            max_skew_secs: i64::try_from(max_skew.as_secs()).unwrap_or(i64::MAX),
            cache: SigningKeyCache::new(capacity),
        }
    }

    /// The clock-skew window.
    pub fn max_skew(&self) -> Duration {
        Duration::from_secs(self.max_skew_secs.unsigned_abs())
    }

    /// Verifies the request's signature (header or presigned query) against the secret that
    /// `lookup` returns for its access key, at server time `now`.
    pub fn verify(
        &self,
        req: &RequestParts<'_>,
        now: SystemTime,
        lookup: &dyn CredentialLookup,
    ) -> Result<Verified, AuthError> {
        let info = parse_request(req)?;
        self.check_time(&info, now)?;
        let payload = payload_hashes(req, info.presigned)?;
        let credential = lookup
            .lookup(&info.access_key_id)
            .ok_or(AuthError::UnrecognizedClient)?;
        let mac = self
            .cache
            .signing_mac(
                &credential.secret_access_key,
                &info.access_key_id,
                &info.date,
                &info.region,
                &info.service,
            )
            .ok_or(AuthError::InvalidSignature)?;

        let mut creq = Vec::with_capacity(512);
        write_canonical_prefix(&mut creq, req, &info);
        let mut matched = signature_matches(&mac, &creq, payload.first, req.body, &info);
        if !matched {
            if let Some(fallback) = payload.fallback {
                matched = signature_matches(&mac, &creq, fallback, req.body, &info);
            }
        }
        if !matched {
            return Err(AuthError::InvalidSignature);
        }
        Ok(Verified {
            access_key_id: info.access_key_id.into_owned(),
            account_id: credential.account_id,
            principal: credential.principal,
            region: info.region.into_owned(),
            service: info.service.into_owned(),
            date: info.date.into_owned(),
        })
    }

    /// For `--accept-any-credentials`: checks that the signature is *well-formed* (the
    /// `Authorization` header or presigned query parses, the credential scope parses and matches
    /// the date, `host` is signed, the request time is within the window, a literal
    /// `x-amz-content-sha256` matches the body) without looking up a secret or checking the HMAC.
    pub fn parse_only(
        &self,
        req: &RequestParts<'_>,
        now: SystemTime,
    ) -> Result<ParsedSignature, AuthError> {
        let info = parse_request(req)?;
        self.check_time(&info, now)?;
        payload_hashes(req, info.presigned)?;
        Ok(ParsedSignature {
            access_key_id: info.access_key_id.into_owned(),
            region: info.region.into_owned(),
            service: info.service.into_owned(),
            date: info.date.into_owned(),
        })
    }

    fn check_time(&self, info: &AuthInfo<'_>, now: SystemTime) -> Result<(), AuthError> {
        let now_secs = unix_secs(now);
        let max = self.max_skew_secs;
        // Request time minus server time: negative when the request is in the past.
        let skew = info.request_secs.saturating_sub(now_secs);
        let window = || {
            if max % 60 == 0 {
                format!("{} min.", max / 60)
            } else {
                format!("{max} sec.")
            }
        };
        let expired = |message: String| AuthError::RequestExpired {
            skew_secs: skew,
            request_time: info.amz_date.to_string(),
            server_time: format_amz_date(now_secs),
            message,
        };
        if skew > max {
            return Err(expired(format!(
                "Signature not yet current: {} is still later than {} ({} + {}); \
                 clock skew: {} seconds.",
                info.amz_date,
                format_amz_date(now_secs.saturating_add(max)),
                format_amz_date(now_secs),
                window(),
                skew.unsigned_abs(),
            )));
        }
        match info.expires_secs {
            Some(expires) => {
                let expires_at = info
                    .request_secs
                    .saturating_add(i64::try_from(expires).unwrap_or(i64::MAX));
                if now_secs > expires_at {
                    return Err(expired(format!(
                        "Signature expired: {} + {expires} sec. ({}) is now earlier than {}; \
                         the presigned request was signed {} seconds ago.",
                        info.amz_date,
                        format_amz_date(expires_at),
                        format_amz_date(now_secs),
                        skew.unsigned_abs(),
                    )));
                }
            }
            None => {
                if skew < max.saturating_neg() {
                    return Err(expired(format!(
                        "Signature expired: {} is now earlier than {} ({} - {}); \
                         clock skew: {} seconds.",
                        info.amz_date,
                        format_amz_date(now_secs.saturating_sub(max)),
                        format_amz_date(now_secs),
                        window(),
                        skew.unsigned_abs(),
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The canonical request the verifier computes for `req` (with the first payload hash it would
/// try), for debug logging when a client's signature does not match. Invalid UTF-8 in header
/// values is shown lossily.
pub fn canonical_request(req: &RequestParts<'_>) -> Result<String, AuthError> {
    let info = parse_request(req)?;
    let payload = payload_hashes(req, info.presigned)?;
    let mut creq = Vec::with_capacity(512);
    write_canonical_prefix(&mut creq, req, &info);
    match payload.first {
        PayloadHash::Unsigned => creq.extend_from_slice(UNSIGNED_PAYLOAD.as_bytes()),
        PayloadHash::Literal(s) => creq.extend_from_slice(s.as_bytes()),
        PayloadHash::Body => creq.extend_from_slice(&sha256_hex(req.body)),
    }
    Ok(String::from_utf8_lossy(&creq).into_owned())
}

/// A new access key pair: `AKIA` + 16 characters of the base32 alphabet (`A-Z2-7`), 20 in all,
/// and a 40-character secret from the base64 alphabet (`A-Za-z0-9+/`), like AWS keys. Uses the
/// thread-local CSPRNG.
pub fn generate_access_key() -> (String, String) {
    use rand::Rng;
    const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    let mut akid = String::with_capacity(20);
    akid.push_str("AKIA");
    for _ in 0..16 {
        akid.push(char::from(BASE32[rng.random_range(0..BASE32.len())]));
    }
    let secret = (0..40)
        .map(|_| char::from(BASE64[rng.random_range(0..BASE64.len())]))
        .collect();
    (akid, secret)
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Everything the signature says about itself.
struct AuthInfo<'a> {
    presigned: bool,
    access_key_id: Cow<'a, str>,
    date: Cow<'a, str>,
    region: Cow<'a, str>,
    service: Cow<'a, str>,
    signed_headers: Cow<'a, str>,
    signature: [u8; 32],
    /// `yyyymmddThhmmssZ`, as it goes into the string to sign.
    amz_date: Cow<'a, str>,
    request_secs: i64,
    expires_secs: Option<u64>,
    /// Decoded query parameters.
    query: Vec<(String, String)>,
}

const PRESIGN_MARKERS: [&str; 3] = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"];

fn parse_request<'a>(req: &RequestParts<'a>) -> Result<AuthInfo<'a>, AuthError> {
    let query = match req.query {
        Some(q) if !q.is_empty() => canonical::parse_query(q),
        _ => Vec::new(),
    };
    let presigned = query
        .iter()
        .any(|(k, _)| PRESIGN_MARKERS.contains(&k.as_str()));
    let mut auth_headers = req.headers.iter().filter(|(name, value)| {
        name.eq_ignore_ascii_case("authorization") && value.iter().any(|&b| b != b' ' && b != b'\t')
    });
    let authorization = auth_headers.next();
    if auth_headers.next().is_some() {
        return Err(AuthError::incomplete(
            "Only one Authorization header may be specified.",
        ));
    }
    let info = match (authorization, presigned) {
        (Some(_), true) => {
            return Err(AuthError::incomplete(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
                 Signature query string parameter or the Authorization header should be specified",
            ))
        }
        (None, false) => return Err(AuthError::MissingAuthenticationToken),
        (Some((_, value)), false) => parse_header_auth(req, value, query)?,
        (None, true) => parse_presigned(query)?,
    };

    let request_date = info.amz_date.get(..8).unwrap_or_default();
    if request_date != info.date {
        return Err(AuthError::ScopeDateMismatch {
            scope_date: info.date.into_owned(),
            amz_date: info.amz_date.into_owned(),
        });
    }
    // One pass over SignedHeaders: well-formed names, `host` signed, token signed if sent.
    let (mut host_signed, mut token_signed) = (false, false);
    for name in info.signed_headers.split(';') {
        if name.is_empty() || !name.bytes().all(is_header_name_char) {
            return Err(AuthError::incomplete(format!(
                "SignedHeaders must be a ';'-separated list of header names. Got '{}'.",
                shown(&info.signed_headers)
            )));
        }
        host_signed |= name.eq_ignore_ascii_case("host");
        token_signed |= name.eq_ignore_ascii_case("x-amz-security-token");
    }
    if !host_signed {
        return Err(AuthError::incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    if !token_signed && header_present(req.headers, "x-amz-security-token") {
        return Err(AuthError::incomplete(
            "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    Ok(info)
}

fn parse_header_auth<'a>(
    req: &RequestParts<'a>,
    value: &'a [u8],
    query: Vec<(String, String)>,
) -> Result<AuthInfo<'a>, AuthError> {
    let value = std::str::from_utf8(value)
        .map_err(|_| AuthError::incomplete("The Authorization header is not valid UTF-8."))?
        .trim_matches(|c| c == ' ' || c == '\t');
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(AuthError::incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'; only '{ALGORITHM}' is supported.",
            shown(algorithm)
        )));
    }

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_matches(|c| c == ' ' || c == '\t');
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(AuthError::incomplete(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                shown(part)
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(val).is_some() {
            return Err(AuthError::incomplete(format!(
                "Authorization header has more than one '{key}' parameter."
            )));
        }
    }
    let mut missing = String::new();
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }

    // Date: X-Amz-Date, else Date.
    let (amz_date, request_secs): (Cow<'a, str>, i64) =
        if let Some(raw) = single_header(req.headers, "x-amz-date")? {
            let raw = std::str::from_utf8(raw).unwrap_or("").trim_matches(' ');
            let secs = parse_amz_date(raw).ok_or_else(|| {
                AuthError::incomplete(format!(
                    "Date must be in ISO-8601 'basic format'. Got '{}'. \
                     See http://en.wikipedia.org/wiki/ISO_8601",
                    shown(raw)
                ))
            })?;
            (Cow::Borrowed(raw), secs)
        } else if let Some(raw) = single_header(req.headers, "date")? {
            let raw = std::str::from_utf8(raw).unwrap_or("").trim_matches(' ');
            let secs = parse_http_date(raw).ok_or_else(|| {
                AuthError::incomplete(format!(
                    "The Date header must be an HTTP date ('Sun, 06 Nov 1994 08:49:37 GMT'). \
                     Got '{}'.",
                    shown(raw)
                ))
            })?;
            (Cow::Owned(format_amz_date(secs)), secs)
        } else {
            missing.push_str(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
                 header. ",
            );
            (Cow::Borrowed(""), 0)
        };
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(AuthError::incomplete(missing.trim_end()));
    };
    if !missing.is_empty() {
        return Err(AuthError::incomplete(missing.trim_end()));
    }

    let (access_key_id, date, region, service) = parse_scope(credential)?;
    let signature = parse_signature(signature)?;
    Ok(AuthInfo {
        presigned: false,
        access_key_id: Cow::Borrowed(access_key_id),
        date: Cow::Borrowed(date),
        region: Cow::Borrowed(region),
        service: Cow::Borrowed(service),
        signed_headers: Cow::Borrowed(signed_headers),
        signature,
        amz_date,
        request_secs,
        expires_secs: None,
        query,
    })
}

fn parse_presigned<'a>(query: Vec<(String, String)>) -> Result<AuthInfo<'a>, AuthError> {
    const REQUIRED: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
    ];
    let mut values: [Option<&str>; 6] = [None; 6];
    for (key, value) in &query {
        if let Some(i) = REQUIRED.iter().position(|r| r == key) {
            if values[i].replace(value.as_str()).is_some() {
                return Err(AuthError::incomplete(format!(
                    "The query string has more than one '{key}' parameter."
                )));
            }
        }
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .zip(values.iter())
        .filter(|(_, v)| v.is_none())
        .map(|(name, _)| *name)
        .collect();
    let [Some(algorithm), Some(credential), Some(signature), Some(amz_date), Some(signed_headers), Some(expires)] =
        values
    else {
        return Err(AuthError::incomplete(format!(
            "AWS query-string authentication requires the X-Amz-Algorithm, X-Amz-Credential, \
             X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters; \
             missing: {}.",
            missing.join(", ")
        )));
    };
    if algorithm != ALGORITHM {
        return Err(AuthError::incomplete(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\"."
        )));
    }
    let expires_secs =
        (!expires.is_empty() && expires.len() <= 19 && expires.bytes().all(|b| b.is_ascii_digit()))
            .then(|| expires.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| AuthError::incomplete("X-Amz-Expires should be a number."))?;
    if expires_secs > MAX_PRESIGNED_EXPIRES_SECS {
        return Err(AuthError::incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is \
             {MAX_PRESIGNED_EXPIRES_SECS}."
        )));
    }
    let request_secs = parse_amz_date(amz_date).ok_or_else(|| {
        AuthError::incomplete(format!(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\". Got '{}'.",
            shown(amz_date)
        ))
    })?;
    let (access_key_id, date, region, service) = parse_scope(credential)?;
    let signature = parse_signature(signature)?;
    let owned = |s: &str| Cow::Owned(s.to_owned());
    Ok(AuthInfo {
        presigned: true,
        access_key_id: owned(access_key_id),
        date: owned(date),
        region: owned(region),
        service: owned(service),
        signed_headers: owned(signed_headers),
        signature,
        amz_date: owned(amz_date),
        request_secs,
        expires_secs: Some(expires_secs),
        query,
    })
}

/// `AKID/yyyymmdd/region/service/aws4_request` → (akid, date, region, service).
fn parse_scope(credential: &str) -> Result<(&str, &str, &str, &str), AuthError> {
    let malformed = || {
        AuthError::incomplete(format!(
            "Credential should be of the form '<access key>/<yyyymmdd>/<region>/<service>/\
             aws4_request'. Got '{}'.",
            shown(credential)
        ))
    };
    let mut parts = credential.split('/');
    let (Some(akid), Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(malformed());
    };
    if akid.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed());
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::incomplete(format!(
            "Credential should be scoped to a valid date ('yyyymmdd'), not '{}'.",
            shown(date)
        )));
    }
    if terminator != "aws4_request" {
        return Err(AuthError::incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            shown(terminator)
        )));
    }
    Ok((akid, date, region, service))
}

/// RFC 9110 `tchar`.
fn is_header_name_char(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~')
}

fn parse_signature(sig: &str) -> Result<[u8; 32], AuthError> {
    let mut out = [0u8; 32];
    if sig.len() != 64 || hex::decode_to_slice(sig, &mut out).is_err() {
        return Err(AuthError::incomplete(
            "Signature must be 64 hexadecimal characters.",
        ));
    }
    Ok(out)
}

fn header_present(headers: &[(&str, &[u8])], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// The value of a header that must appear at most once.
fn single_header<'a>(
    headers: &[(&str, &'a [u8])],
    name: &str,
) -> Result<Option<&'a [u8]>, AuthError> {
    let mut found = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let first = found.next().map(|(_, v)| *v);
    if found.next().is_some() {
        return Err(AuthError::incomplete(format!(
            "Only one '{name}' header may be specified."
        )));
    }
    Ok(first)
}

/// At most 64 characters of client input, for error messages.
fn shown(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(64) {
        Some((i, _)) => Cow::Owned(format!("{}...", &s[..i])),
        None => Cow::Borrowed(s),
    }
}

// ---------------------------------------------------------------------------------------------
// Payload and signature

#[derive(Clone, Copy)]
enum PayloadHash<'a> {
    Unsigned,
    /// A hash from `x-amz-content-sha256`, already checked against the body.
    Literal(&'a str),
    /// The SHA-256 of the body, computed when needed.
    Body,
}

struct PayloadHashes<'a> {
    first: PayloadHash<'a>,
    fallback: Option<PayloadHash<'a>>,
}

fn payload_hashes<'a>(
    req: &RequestParts<'a>,
    presigned: bool,
) -> Result<PayloadHashes<'a>, AuthError> {
    if let Some(raw) = single_header(req.headers, "x-amz-content-sha256")? {
        let value = std::str::from_utf8(raw).unwrap_or("").trim_matches(' ');
        if value == UNSIGNED_PAYLOAD {
            return Ok(PayloadHashes {
                first: PayloadHash::Unsigned,
                fallback: None,
            });
        }
        if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            let computed = sha256_hex(req.body);
            if !value.as_bytes().eq_ignore_ascii_case(&computed) {
                return Err(AuthError::ContentSha256Mismatch);
            }
            return Ok(PayloadHashes {
                first: PayloadHash::Literal(value),
                fallback: None,
            });
        }
        return Err(AuthError::incomplete(format!(
            "Unsupported x-amz-content-sha256 value '{}': only the hex SHA-256 of the body or \
             {UNSIGNED_PAYLOAD} is accepted.",
            shown(value)
        )));
    }
    Ok(if presigned {
        PayloadHashes {
            first: PayloadHash::Unsigned,
            fallback: Some(PayloadHash::Body),
        }
    } else {
        PayloadHashes {
            first: PayloadHash::Body,
            fallback: None,
        }
    })
}

/// Canonical request up to (and including) the signed-headers line; the payload hash follows.
fn write_canonical_prefix(out: &mut Vec<u8>, req: &RequestParts<'_>, info: &AuthInfo<'_>) {
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    canonical::write_canonical_uri(out, req.path);
    out.push(b'\n');
    let skip = info.presigned.then_some("X-Amz-Signature");
    canonical::write_canonical_query(out, &info.query, skip);
    out.push(b'\n');
    canonical::write_canonical_headers(out, info.signed_headers.split(';'), req.headers);
    out.push(b'\n');
    out.extend_from_slice(info.signed_headers.as_bytes());
    out.push(b'\n');
}

fn signature_matches(
    mac: &HmacSha256,
    creq_prefix: &[u8],
    payload: PayloadHash<'_>,
    body: &[u8],
    info: &AuthInfo<'_>,
) -> bool {
    let mut hasher = Sha256::new();
    hasher.update(creq_prefix);
    match payload {
        PayloadHash::Unsigned => hasher.update(UNSIGNED_PAYLOAD.as_bytes()),
        PayloadHash::Literal(s) => hasher.update(s.as_bytes()),
        PayloadHash::Body => hasher.update(sha256_hex(body)),
    }
    let mut creq_hex = [0u8; 64];
    if hex::encode_to_slice(hasher.finalize(), &mut creq_hex).is_err() {
        return false;
    }
    let mut mac = mac.clone();
    mac.update(ALGORITHM.as_bytes());
    mac.update(b"\n");
    mac.update(info.amz_date.as_bytes());
    mac.update(b"\n");
    mac.update(info.date.as_bytes());
    mac.update(b"/");
    mac.update(info.region.as_bytes());
    mac.update(b"/");
    mac.update(info.service.as_bytes());
    mac.update(b"/aws4_request\n");
    mac.update(&creq_hex);
    let computed = mac.finalize().into_bytes();
    computed.as_slice().ct_eq(&info.signature).into()
}

fn sha256_hex(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // Cannot fail: 32 bytes always encode to 64 hex characters.
    let _ = hex::encode_to_slice(Sha256::digest(data), &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Time

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn digits(s: &str, range: std::ops::Range<usize>) -> Option<u32> {
    let part = s.get(range)?;
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn unix_from_parts(year: u32, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<i64> {
    let year = i32::try_from(year).ok()?;
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(s).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// `yyyymmddThhmmssZ` → unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    unix_from_parts(
        digits(s, 0..4)?,
        digits(s, 4..6)?,
        digits(s, 6..8)?,
        digits(s, 9..11)?,
        digits(s, 11..13)?,
        digits(s, 13..15)?,
    )
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) → unix seconds.
fn parse_http_date(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    if b.len() != 29
        || b[3] != b','
        || b[4] != b' '
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || s.get(25..) != Some(" GMT")
    {
        return None;
    }
    let month = MONTHS.iter().position(|m| Some(*m) == s.get(8..11))?;
    unix_from_parts(
        digits(s, 12..16)?,
        u32::try_from(month + 1).ok()?,
        digits(s, 5..7)?,
        digits(s, 17..19)?,
        digits(s, 20..22)?,
        digits(s, 23..25)?,
    )
}

/// Unix seconds → `yyyymmddThhmmssZ`.
fn format_amz_date(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("@{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_and_format() {
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(format_amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(1_440_938_160)
        );
        for bad in [
            "",
            "20150830T123600",
            "20151330T123600Z",
            "20150830T246000Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "2015083é123600Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        assert_eq!(parse_http_date("Sun, 30 Foo 2015 12:36:00 GMT"), None);
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 UTC"), None);
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMTé"), None);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }

    #[test]
    fn scope_parsing() {
        assert_eq!(
            parse_scope("AKID/20150830/us-east-1/ecs/aws4_request").unwrap(),
            ("AKID", "20150830", "us-east-1", "ecs")
        );
        for bad in [
            "AKID/20150830/us-east-1/ecs",
            "AKID/20150830/us-east-1/ecs/aws4_request/x",
            "/20150830/us-east-1/ecs/aws4_request",
            "AKID/2015083/us-east-1/ecs/aws4_request",
            "AKID/20150830//ecs/aws4_request",
            "AKID/20150830/us-east-1/ecs/aws5_request",
        ] {
            assert!(
                matches!(parse_scope(bad), Err(AuthError::IncompleteSignature(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn generated_keys_have_the_aws_shape() {
        let (akid, secret) = generate_access_key();
        assert_eq!(akid.len(), 20);
        assert!(akid.starts_with("AKIA"));
        assert!(akid[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(secret.len(), 40);
        assert!(secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
        assert_ne!(generate_access_key(), (akid, secret));
    }
}
