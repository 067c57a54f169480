//! FilterLogEvents' filter patterns, the term subset: space-separated terms
//! that must all appear, `"quoted phrases"`, `?term` (at least one of the
//! `?` terms must appear) and `-term` (must not appear). Matching is
//! case-sensitive, as in CloudWatch Logs. JSON (`{ ... }`) and
//! space-delimited (`[ ... ]`) patterns are refused, not misread.

use crate::error::ApiResult;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pattern {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

impl Pattern {
    pub fn parse(text: &str) -> ApiResult<Pattern> {
        let trimmed = text.trim();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            return Err(super::invalid(
                "JSON and space-delimited filter patterns are not supported by Stevedore; use terms, \"quoted phrases\", ?optional and -excluded terms.",
            ));
        }
        let mut p = Pattern::default();
        let mut chars = trimmed.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let Some(&first) = chars.peek() else { break };
            let kind = match first {
                '?' | '-' => {
                    chars.next();
                    first
                }
                _ => ' ',
            };
            let mut term = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            if let Some(n) = chars.next() {
                                term.push(n);
                            }
                        }
                        c => term.push(c),
                    }
                }
                if !closed {
                    return Err(super::invalid(format!(
                        "Invalid filter pattern {text:?}: unterminated quoted phrase."
                    )));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    term.push(c);
                    chars.next();
                }
            }
            if term.is_empty() {
                continue;
            }
            match kind {
                '?' => p.any.push(term),
                '-' => p.none.push(term),
                _ => p.all.push(term),
            }
        }
        Ok(p)
    }

    pub fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| message.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str())))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn m(p: &str, msg: &str) -> bool {
        Pattern::parse(p).unwrap().matches(msg)
    }

    #[test]
    fn terms_phrases_optional_and_excluded() {
        assert!(m("", "anything"));
        assert!(m("ERROR", "an ERROR here"));
        assert!(!m("ERROR", "an error here"));
        assert!(m("ERROR disk", "disk ERROR"));
        assert!(!m("ERROR disk", "ERROR net"));
        assert!(m("\"disk full\"", "the disk full now"));
        assert!(!m("\"disk full\"", "full disk"));
        assert!(m("?ERROR ?WARN", "WARN x"));
        assert!(!m("?ERROR ?WARN", "INFO x"));
        assert!(m("ERROR -retry", "ERROR final"));
        assert!(!m("ERROR -retry", "ERROR will retry"));
        assert!(Pattern::parse("{ $.a = 1 }").is_err());
        assert!(Pattern::parse("\"open").is_err());
    }
}
