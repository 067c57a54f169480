//! Wire types of the APIs Stevedore speaks (ECS, CloudWatch Logs and CloudWatch over JSON; STS and ELBv2 over Query), and the Query codec ([`query`]).
//!
//! The types under [`generated`] come from the botocore models in
//! `crates/api/model/` via `cargo xtask codegen`; this file holds the
//! hand-written support they use: [`Timestamp`], [`Blob`], [`Validate`] and
//! [`ValidationError`]. No HTTP types live in this crate.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Generated modules, one per model. Regenerate with `cargo xtask codegen`.
pub mod generated {
    pub mod cloudwatch;
    pub mod ecs;
    pub mod elbv2;
    pub mod logs;
    pub mod sts;
}

pub use generated::{cloudwatch, ecs, elbv2, logs, sts};

pub mod agent;
pub mod query;

/// A point in time, stored as milliseconds since the Unix epoch.
///
/// On the wire (JSON 1.1 protocol) a timestamp is epoch seconds as a JSON
/// number: whole seconds serialize as an integer (`1718000000`), anything
/// else with millisecond precision (`1718000000.123`). Deserializing accepts
/// any JSON number, integer or fractional (rounded to the millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From milliseconds since the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// From whole seconds since the epoch (saturating).
    pub const fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Seconds since the epoch as a float (the wire value).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// The current time, from [`SystemTime::now`].
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        let millis = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_millis())
                .map(|m| -m)
                .unwrap_or(i64::MIN),
        };
        Timestamp(millis)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        let d = Duration::from_millis(t.0.unsigned_abs());
        if t.0 >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }
}

impl fmt::Display for Timestamp {
    /// The wire form: epoch seconds, with milliseconds only when non-zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1000 == 0 {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}", self.as_secs_f64())
        }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            serializer.serialize_i64(self.0 / 1000)
        } else {
            serializer.serialize_f64(self.as_secs_f64())
        }
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch seconds as a JSON number")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                v.checked_mul(1000)
                    .map(Timestamp)
                    .ok_or_else(|| E::custom(format!("timestamp {v} out of range")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(1000))
                    .map(Timestamp)
                    .ok_or_else(|| E::custom(format!("timestamp {v} out of range")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Timestamp, E> {
                let millis = (v * 1000.0).round();
                // i64::MAX as f64 rounds up to 2^63, so compare with `<`.
                if millis.is_finite() && millis >= i64::MIN as f64 && millis < i64::MAX as f64 {
                    Ok(Timestamp(millis as i64))
                } else {
                    Err(E::custom(format!("timestamp {v} out of range")))
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A blob: binary data, carried on the wire as a base64 string. The text is
/// kept as received (so parsing never fails on it); [`Blob::decode`] checks
/// and decodes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Blob(pub String);

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl Blob {
    /// Encode bytes (standard alphabet, padded).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    s.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        Blob(s)
    }

    /// The base64 text.
    pub fn as_base64(&self) -> &str {
        &self.0
    }

    /// Decode the base64 text (standard alphabet; padding optional).
    /// `None` when it is not valid base64.
    pub fn decode(&self) -> Option<Vec<u8>> {
        let text = self.0.trim_end_matches('=');
        if self.0.len() - text.len() > 2 || text.len() % 4 == 1 {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let mut acc: u32 = 0;
        let mut bits = 0;
        for c in text.bytes() {
            let v = B64.iter().position(|&b| b == c)? as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        Some(out)
    }
}

/// Validation of a request against the model: required members present,
/// enum values known, length and range bounds respected, recursively.
pub trait Validate {
    /// Validate `self`, found at wire path `path` (`""` for a whole request).
    /// Returns the first problem found.
    fn validate(&self, path: &str) -> Result<(), ValidationError>;
}

impl<T: Validate + ?Sized> Validate for Box<T> {
    fn validate(&self, path: &str) -> Result<(), ValidationError> {
        (**self).validate(path)
    }
}

/// A request that breaks the model's constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Dotted wire path of the offending value, e.g.
    /// `containerDefinitions[2].portMappings[0].containerPort`.
    pub field: String,
    /// Human-readable message; it names the path too.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Helpers for the generated `Validate` impls; not a stable API.
#[doc(hidden)]
pub mod __private {
    use super::ValidationError;

    /// `path.name`, or `name` at the top level.
    pub fn join(path: &str, name: &str) -> String {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    }

    /// `path[i]`.
    pub fn index(path: &str, i: usize) -> String {
        format!("{path}[{i}]")
    }

    /// Path of a map entry: `path.key`.
    pub fn key(path: &str, key: &impl std::fmt::Display) -> String {
        format!("{path}.{key}")
    }

    fn err(field: String, message: String) -> ValidationError {
        ValidationError { field, message }
    }

    pub fn missing(field: String) -> ValidationError {
        let message = format!("Missing required parameter {field}");
        err(field, message)
    }

    pub fn bad_enum(field: String, value: &str, valid: &[&str]) -> ValidationError {
        let message = format!(
            "Invalid value '{value}' for {field}; valid values: {}",
            valid.join(", ")
        );
        err(field, message)
    }

    pub fn union_count(path: &str, members: &[&str], set: usize) -> ValidationError {
        let field = if path.is_empty() { "(request)" } else { path };
        let message = format!(
            "{field} must have exactly one of {} set, got {set}",
            members.join(", ")
        );
        err(path.to_string(), message)
    }

    /// Range check; `unit` is `(verb, singular, plural)` phrasing, e.g.
    /// `("have", " item", " items")` -> "must have at most 50 items".
    fn bounds<T: PartialOrd + std::fmt::Display + Copy>(
        v: T,
        min: Option<T>,
        max: Option<T>,
        is_one: impl Fn(T) -> bool,
        unit: (&str, &str, &str),
        path: impl FnOnce() -> String,
    ) -> Result<(), ValidationError> {
        let (verb, one, many) = unit;
        let violated = match (min, max) {
            (Some(min), _) if v < min => Some(("least", min)),
            (_, Some(max)) if v > max => Some(("most", max)),
            _ => None,
        };
        if let Some((side, bound)) = violated {
            let field = path();
            let unit = if is_one(bound) { one } else { many };
            let message = format!("{field} must {verb} at {side} {bound}{unit}, got {v}");
            return Err(err(field, message));
        }
        Ok(())
    }

    /// String length, counted in characters.
    pub fn check_str_len(
        v: &str,
        min: Option<usize>,
        max: Option<usize>,
        path: impl FnOnce() -> String,
    ) -> Result<(), ValidationError> {
        let unit = ("be", " character long", " characters long");
        bounds(v.chars().count(), min, max, |n| n == 1, unit, path)
    }

    /// Number of list items (`unit` "items") or map entries ("entries").
    pub fn check_len(
        len: usize,
        min: Option<usize>,
        max: Option<usize>,
        unit: &str,
        path: impl FnOnce() -> String,
    ) -> Result<(), ValidationError> {
        let (one, many) = match unit {
            "entries" => (" entry", " entries"),
            _ => (" item", " items"),
        };
        bounds(len, min, max, |n| n == 1, ("have", one, many), path)
    }

    pub fn check_int(
        v: i64,
        min: Option<i64>,
        max: Option<i64>,
        path: impl FnOnce() -> String,
    ) -> Result<(), ValidationError> {
        bounds(v, min, max, |_| false, ("be", "", ""), path)
    }

    pub fn check_f64(
        v: f64,
        min: Option<f64>,
        max: Option<f64>,
        path: impl FnOnce() -> String,
    ) -> Result<(), ValidationError> {
        if v.is_nan() {
            let field = path();
            let message = format!("{field} must be a number");
            return Err(err(field, message));
        }
        bounds(v, min, max, |_| false, ("be", "", ""), path)
    }
}
