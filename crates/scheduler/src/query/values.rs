//! Typed arguments of the query language: agent versions, registration dates
//! and regular expressions.

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;

/// A dotted version number such as `1.14.5` (for `agentVersion`).
///
/// Compared component by component, numerically; missing trailing
/// components count as 0, so `1.14 == 1.14.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub raw: String,
    pub parts: Vec<u64>,
}

impl Version {
    /// Strict form used for query arguments: one or more dot-separated
    /// decimal numbers.
    pub fn parse(s: &str) -> Option<Version> {
        if s.is_empty() {
            return None;
        }
        let parts = s
            .split('.')
            .map(|p| {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    p.parse::<u64>().ok()
                }
            })
            .collect::<Option<Vec<u64>>>()?;
        Some(Version {
            raw: s.to_string(),
            parts,
        })
    }

    /// Lenient form used for what agents report: an optional leading `v`,
    /// then the longest `digits(.digits)*` prefix (so `1.105.1-dev` is
    /// `1.105.1`).
    pub fn parse_lenient(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        Version::parse(s[..end].trim_end_matches('.'))
    }

    /// Numeric comparison; missing components are 0.
    pub fn compare(&self, other: &Version) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        for i in 0..n {
            let a = self.parts.get(i).copied().unwrap_or(0);
            let b = other.parts.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        Ordering::Equal
    }
}

const MS_PER_SECOND: i64 = 1_000;
const MS_PER_DAY: i64 = 86_400_000;

/// A `registeredAt` argument, kept at the precision it was written in.
///
/// A date (`2018-06-18`) compares whole UTC days: `registeredAt == 2018-06-18`
/// holds for any instance registered that day and `registeredAt < 2018-06-18`
/// for those registered before it began. A timestamp compares whole seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateArg {
    pub raw: String,
    /// The argument in units of `unit_ms` since the Unix epoch.
    pub units: i64,
    /// 86 400 000 for a date, 1 000 for a timestamp.
    pub unit_ms: i64,
}

impl DateArg {
    /// Accepts `2018-06-18T22:28:28+00:00` (any `±HH:MM` or `±HHMM` offset),
    /// `2018-06-18T22:28:28Z`, `2018-06-18T22:28:28` (UTC) and `2018-06-18`.
    /// Fractional seconds (`22:28:28.123`) are accepted and truncated.
    pub fn parse(s: &str) -> Option<DateArg> {
        let b = s.as_bytes();
        if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let days = days_from_civil(year, month, day);
        if b.len() == 10 {
            return Some(DateArg {
                raw: s.to_string(),
                units: days,
                unit_ms: MS_PER_DAY,
            });
        }
        if b.len() < 19 || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut rest = &b[19..];
        if let Some(frac) = rest.strip_prefix(b".") {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            rest = &frac[n..];
        }
        let offset_secs = match rest {
            [] | [b'Z'] | [b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
                let oh = digits(&[*h1, *h2])?;
                let om = digits(&[*m1, *m2])?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 3600 + om * 60;
                if *sign == b'+' {
                    o
                } else {
                    -o
                }
            }
            _ => return None,
        };
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        Some(DateArg {
            raw: s.to_string(),
            units: secs,
            unit_ms: MS_PER_SECOND,
        })
    }

    /// Compares an instant (epoch ms) with the argument at its precision.
    pub fn compare_instant(&self, epoch_ms: i64) -> Ordering {
        epoch_ms.div_euclid(self.unit_ms).cmp(&self.units)
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(b.iter().fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0')))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A compiled `=~` / `!~` pattern.
///
/// ECS documents Java regex syntax; this uses the `regex` crate, which covers
/// the common subset (no backreferences or look-around). The pattern must
/// match the **whole** value, as Java's `String.matches` does:
/// `attribute:ecs.instance-type =~ t2.*` matches `t2.micro`, and `=~ t2`
/// does not.
#[derive(Clone)]
pub struct Pattern {
    pub source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles `source` anchored at both ends. The error is a one-line
    /// description from the regex parser.
    pub fn new(source: &str) -> Result<Pattern, String> {
        // Validate the pattern on its own first, so errors describe what the
        // user wrote rather than the anchored wrapper.
        match Regex::new(source).and_then(|_| Regex::new(&format!("^(?:{source})$"))) {
            Ok(regex) => Ok(Pattern {
                source: source.to_string(),
                regex,
            }),
            Err(e) => {
                let text = e.to_string();
                let line = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid pattern")
                    .trim();
                Err(line.strip_prefix("error: ").unwrap_or(line).to_string())
            }
        }
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d = DateArg::parse("1970-01-02").unwrap();
        assert_eq!((d.units, d.unit_ms), (1, MS_PER_DAY));
        let t = DateArg::parse("2018-06-18T22:28:28Z").unwrap();
        assert_eq!(t.units, 1_529_360_908);
        assert_eq!(
            DateArg::parse("2018-06-18T22:28:28").unwrap().units,
            t.units
        );
        assert_eq!(
            DateArg::parse("2018-06-18T22:28:28+00:00").unwrap().units,
            t.units
        );
        assert_eq!(
            DateArg::parse("2018-06-19T00:28:28+02:00").unwrap().units,
            t.units
        );
        assert_eq!(
            DateArg::parse("2018-06-18T17:28:28-0500").unwrap().units,
            t.units
        );
        assert_eq!(
            DateArg::parse("2018-06-18T22:28:28.999Z").unwrap().units,
            t.units
        );
        assert_eq!(DateArg::parse("2000-02-29").unwrap().units, 11_016);
        for bad in [
            "2018-13-01",
            "2019-02-29",
            "2018-06-18T25:00:00",
            "2018-06-18T22:28",
            "2018-06-18X22:28:28",
            "2018-06-18T22:28:28+5",
            "18-06-18",
            "yesterday",
        ] {
            assert_eq!(DateArg::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn versions() {
        let v = |s| Version::parse(s).unwrap();
        assert_eq!(v("1.14").compare(&v("1.14.0")), Ordering::Equal);
        assert_eq!(v("1.9.0").compare(&v("1.14.5")), Ordering::Less);
        assert_eq!(v("1.105.1").compare(&v("1.14.5")), Ordering::Greater);
        assert_eq!(Version::parse("1..2"), None);
        assert_eq!(Version::parse("1.x"), None);
        assert_eq!(
            Version::parse_lenient("v1.105.1-dev").unwrap().parts,
            vec![1, 105, 1]
        );
    }
}
