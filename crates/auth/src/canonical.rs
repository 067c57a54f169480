//! Canonicalization of the request parts (SigV4 "Task 1: create a canonical request").
//!
//! These functions mirror, byte for byte, what the `aws-sigv4` crate (used by every AWS SDK for
//! Rust, and equivalent to botocore's and the other SDKs' signers) does on the client side with
//! its default settings for non-S3 services: URI path normalization enabled and
//! `PercentEncodingMode::Double`.

/// Appends `bytes` to `out`, percent-encoding (upper-case hex) every byte that is not an RFC 3986
/// unreserved character (`A-Z a-z 0-9 - . _ ~`); `/` is kept as is when `keep_slash`.
pub(crate) fn uri_encode_into(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]]);
        }
    }
}

#[inline]
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends the canonical URI for the raw (still percent-encoded, as received on the wire) path.
///
/// 1. Normalize: an empty path is `/`; a path not starting with `/` gets one; if the path contains
///    `.` or `//`, remove dot segments (RFC 3986 §5.2.4) and empty segments, keeping a trailing
///    slash if the input ended with `/`, `/.`, `/./`, `/..` or `/../`.
/// 2. URI-encode the result once more, leaving `/` alone ("double encoding": the client signed
///    `encode(wire path)`, so `%3D` on the wire is `%253D` in the canonical request).
pub(crate) fn write_canonical_uri(out: &mut Vec<u8>, raw_path: &str) {
    if raw_path.is_empty() {
        out.push(b'/');
        return;
    }
    let needs_prefix = !raw_path.starts_with('/');
    if !(raw_path.contains('.') || raw_path.contains("//")) {
        if needs_prefix {
            out.push(b'/');
        }
        uri_encode_into(out, raw_path.as_bytes(), true);
        return;
    }

    let prefixed;
    let path: &str = if needs_prefix {
        prefixed = format!("/{raw_path}");
        &prefixed
    } else {
        raw_path
    };
    let mut segments: Vec<&str> = Vec::with_capacity(8);
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    out.push(b'/');
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        uri_encode_into(out, segment.as_bytes(), true);
    }
    let ends_with_slash = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|suffix| path.ends_with(suffix));
    if ends_with_slash && !segments.is_empty() {
        out.push(b'/');
    }
}

/// Decodes one query-string component the way `application/x-www-form-urlencoded` parsers
/// (the `form_urlencoded` crate used by `aws-sigv4`) do: `+` is a space, valid `%XX` escapes are
/// decoded, invalid ones are kept literally, and invalid UTF-8 becomes U+FFFD.
pub(crate) fn decode_query_component(s: &str) -> String {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex_val(b)),
                bytes.get(i + 2).and_then(|&b| hex_val(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits a raw query string into decoded `(key, value)` pairs: pairs are separated by `&`
/// (empty pieces skipped), the key ends at the first `=` (no `=` means an empty value).
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            (decode_query_component(k), decode_query_component(v))
        })
        .collect()
}

/// Appends the canonical query string: every decoded pair re-encoded with the RFC 3986
/// unreserved rule (so `/` is `%2F`, space is `%20`), sorted by encoded key then encoded value,
/// joined as `k=v` with `&`. Pairs whose decoded key equals `skip` are left out (the presigned
/// `X-Amz-Signature`).
pub(crate) fn write_canonical_query(
    out: &mut Vec<u8>,
    params: &[(String, String)],
    skip: Option<&str>,
) {
    if params.is_empty() {
        return;
    }
    let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = params
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .map(|(k, v)| {
            let mut ek = Vec::with_capacity(k.len());
            uri_encode_into(&mut ek, k.as_bytes(), false);
            let mut ev = Vec::with_capacity(v.len());
            uri_encode_into(&mut ev, v.as_bytes(), false);
            (ek, ev)
        })
        .collect();
    encoded.sort_unstable();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
    }
}

/// Appends one header value in canonical form: leading and trailing spaces removed and every run
/// of spaces inside collapsed to one space (only the space character, exactly like `aws-sigv4`).
pub(crate) fn write_header_value(out: &mut Vec<u8>, value: &[u8]) {
    let Some(start) = value.iter().position(|&b| b != b' ') else {
        return;
    };
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |e| e + 1);
    let trimmed = value.get(start..end).unwrap_or_default();
    if !trimmed.windows(2).any(|w| w == b"  ") {
        out.extend_from_slice(trimmed);
        return;
    }
    let mut prev_space = false;
    for &b in trimmed {
        if b == b' ' {
            if !prev_space {
                out.push(b' ');
            }
            prev_space = true;
        } else {
            out.push(b);
            prev_space = false;
        }
    }
}

/// Appends the canonical headers block for the signed header names, in the order given: for each
/// name, `name:` followed by the canonical values of every request header with that name (any
/// case) in the order received, joined with `,`, then `\n`. A signed header absent from the request
/// contributes an empty value (the signature will then not match).
pub(crate) fn write_canonical_headers<'n>(
    out: &mut Vec<u8>,
    signed_headers: impl IntoIterator<Item = &'n str>,
    headers: &[(&str, &[u8])],
) {
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if !first {
                out.push(b',');
            }
            first = false;
            write_header_value(out, value);
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(path: &str) -> String {
        let mut out = Vec::new();
        write_canonical_uri(&mut out, path);
        String::from_utf8(out).unwrap()
    }

    fn query(q: &str) -> String {
        let mut out = Vec::new();
        write_canonical_query(&mut out, &parse_query(q), None);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn canonical_uri_double_encodes_and_normalizes() {
        // aws-sigv4 test vectors (double-encode-path / double-url-encode).
        assert_eq!(
            uri("/test/@connections/JBDvjfGEIAMCERw%3D"),
            "/test/%40connections/JBDvjfGEIAMCERw%253D"
        );
        assert_eq!(
            uri("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations"),
            "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-west-2%253A892717189312%253Afunction%253Amy-rusty-fun/invocations"
        );
        assert_eq!(uri(""), "/");
        assert_eq!(uri("/"), "/");
        assert_eq!(uri("//"), "/");
        assert_eq!(uri("/./"), "/");
        assert_eq!(uri("/./example"), "/example");
        assert_eq!(uri("//example//"), "/example/");
        assert_eq!(uri("/example/.."), "/");
        assert_eq!(uri("/example1/example2/../.."), "/");
        assert_eq!(uri("/../foo"), "/foo");
        assert_eq!(uri("/foo/bar/."), "/foo/bar/");
        assert_eq!(uri("/foo/bar/.."), "/foo/");
        assert_eq!(uri("foo"), "/foo");
        assert_eq!(uri("/a%20b/%E2%82%AC"), "/a%2520b/%25E2%2582%25AC");
        assert_eq!(uri("/ሴ"), "/%E1%88%B4");
        assert_eq!(
            uri("/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        );
        assert_eq!(uri("/a:b,c;d=e"), "/a%3Ab%2Cc%3Bd%3De");
    }

    #[test]
    fn canonical_query_sorts_and_reencodes() {
        assert_eq!(query(""), "");
        assert_eq!(
            query("Param2=value2&Param1=value1"),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(
            query("Param-3=Value3&Param=Value2&%E1%88%B4=Value1"),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
        );
        assert_eq!(query("b=2&a=2&a=1&&c"), "a=1&a=2&b=2&c=");
        assert_eq!(query("k=a+b%20c%2Fd/e"), "k=a%20b%20c%2Fd%2Fe");
        assert_eq!(query("k=%zz%4"), "k=%25zz%254");
        assert_eq!(query("k=%FF"), "k=%EF%BF%BD");
        assert_eq!(
            query("list-type=2&prefix=~objprefix&single&k=&unreserved=-_.~"),
            "k=&list-type=2&prefix=~objprefix&single=&unreserved=-_.~"
        );
    }

    #[test]
    fn header_values_trim_and_collapse_spaces() {
        let mut out = Vec::new();
        write_canonical_headers(
            &mut out,
            ["host", "my-header1", "my-header2", "x-missing"],
            &[
                ("Host", b"example.amazonaws.com"),
                ("My-Header1", b"  value1  "),
                ("my-header2", b"\"a   b   c\""),
                ("MY-HEADER1", b"value2"),
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "host:example.amazonaws.com\nmy-header1:value1,value2\nmy-header2:\"a b c\"\nx-missing:\n"
        );
        let mut out = Vec::new();
        write_header_value(&mut out, b"     ");
        assert!(out.is_empty());
    }
}
