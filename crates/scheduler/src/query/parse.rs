//! Recursive-descent parser for the cluster query language.

use std::fmt;

use super::values::{DateArg, Pattern, Version};
use super::{Argument, Comparison, Expr, Operator, Subject};

/// ECS limit on a constraint expression (characters).
pub const MAX_EXPRESSION_LEN: usize = 2000;

/// Nesting limit for `(`, `not` and `!`, so a hostile expression cannot
/// exhaust the stack.
const MAX_DEPTH: usize = 100;

/// A malformed expression: what is wrong and where.
///
/// `position` is the 0-based character offset of the offending token (the
/// length of the input when the input ended too early). `Display` gives
/// `"position <n>: <message>"`, suitable for an `InvalidParameterException`
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub position: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "position {}: {}", self.position, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a cluster query expression (see the [module docs](super)).
pub fn parse_expression(input: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        chars: input.chars().collect(),
        pos: 0,
    };
    if p.chars.len() > MAX_EXPRESSION_LEN {
        return Err(p.error_at(
            format!(
                "expression is {} characters long; the maximum is {MAX_EXPRESSION_LEN}",
                p.chars.len()
            ),
            MAX_EXPRESSION_LEN,
        ));
    }
    p.skip_ws();
    if p.at_end() {
        return Err(p.error("empty expression"));
    }
    let expr = p.parse_or(0)?;
    p.skip_ws();
    match p.peek() {
        None => Ok(expr),
        Some(')') => Err(p.error("unbalanced parentheses: ')' has no matching '('")),
        Some(_) => Err(p.error(format!(
            "unexpected '{}'; expected 'and', 'or' or the end of the expression",
            p.preview()
        ))),
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

/// Characters of subjects and word operators.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':' | '@')
}

fn is_symbol_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '~')
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(message, self.pos)
    }

    fn error_at(&self, message: impl Into<String>, position: usize) -> ParseError {
        ParseError {
            message: message.into(),
            position,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    /// Whether `&&` or `||` starts here.
    fn at_bool_symbol(&self) -> bool {
        self.starts_with("&&") || self.starts_with("||")
    }

    /// The token at the cursor, for messages.
    fn preview(&self) -> String {
        match self.peek() {
            None => "end of input".to_string(),
            Some(c) if is_word_char(c) => self.chars[self.pos..]
                .iter()
                .take_while(|c| is_word_char(**c))
                .collect(),
            Some(c) if is_symbol_char(c) || c == '&' || c == '|' => self.chars[self.pos..]
                .iter()
                .take_while(|c| is_symbol_char(**c) || **c == '&' || **c == '|')
                .collect(),
            Some(c) => c.to_string(),
        }
    }

    /// `found '<token>'` or `found end of input`.
    fn found(&self) -> String {
        if self.at_end() {
            "found end of input".to_string()
        } else {
            format!("found '{}'", self.preview())
        }
    }

    /// Consumes a case-insensitive keyword that is not followed by a word
    /// character.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        let n = kw.chars().count();
        let matches = kw
            .chars()
            .enumerate()
            .all(|(i, k)| self.peek_at(i).is_some_and(|c| c.eq_ignore_ascii_case(&k)));
        if matches && !self.peek_at(n).is_some_and(is_word_char) {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        if self.starts_with(s) {
            self.pos += s.chars().count();
            true
        } else {
            false
        }
    }

    fn parse_or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut items = vec![self.parse_and(depth)?];
        loop {
            self.skip_ws();
            if self.eat_str("||") || self.eat_keyword("or") {
                items.push(self.parse_and(depth)?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn parse_and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut items = vec![self.parse_unary(depth)?];
        loop {
            self.skip_ws();
            if self.eat_str("&&") || self.eat_keyword("and") {
                items.push(self.parse_unary(depth)?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn parse_unary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        self.skip_ws();
        if depth >= MAX_DEPTH {
            return Err(self.error(format!(
                "expression is nested too deeply (more than {MAX_DEPTH} levels)"
            )));
        }
        match self.peek() {
            Some('(') => {
                let open = self.pos;
                self.pos += 1;
                let inner = self.parse_or(depth + 1)?;
                self.skip_ws();
                match self.peek() {
                    Some(')') => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    None => Err(self.error(format!(
                        "unbalanced parentheses: '(' at position {open} is never closed"
                    ))),
                    Some(_) => Err(self.error(format!(
                        "unexpected '{}'; expected 'and', 'or' or ')' to close '(' at position {open}",
                        self.preview()
                    ))),
                }
            }
            Some('!') if !self.starts_with("!=") && !self.starts_with("!~") => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.parse_unary(depth + 1)?)))
            }
            _ if self.eat_keyword("not") => Ok(Expr::Not(Box::new(self.parse_unary(depth + 1)?))),
            _ => self.parse_comparison().map(Expr::Compare),
        }
    }

    fn parse_comparison(&mut self) -> Result<Comparison, ParseError> {
        let start = self.pos;
        let word: String = self.chars[self.pos..]
            .iter()
            .take_while(|c| is_word_char(**c))
            .collect();
        if word.is_empty() {
            return Err(self.error(format!(
                "expected a condition (subject operator value), {}",
                self.found()
            )));
        }
        let subject = match word.as_str() {
            "agentConnected" => Subject::AgentConnected,
            "agentVersion" => Subject::AgentVersion,
            "ec2InstanceId" => Subject::Ec2InstanceId,
            "registeredAt" => Subject::RegisteredAt,
            "runningTasksCount" => Subject::RunningTasksCount,
            "task:group" => Subject::TaskGroup,
            w => match w.strip_prefix("attribute:") {
                Some("") => {
                    return Err(self.error_at("missing attribute name after 'attribute:'", start))
                }
                Some(name) => Subject::Attribute(name.to_string()),
                None => {
                    return Err(self.error_at(
                        format!(
                            "unknown subject '{w}'; expected agentConnected, agentVersion, \
                             attribute:<name>, ec2InstanceId, registeredAt, runningTasksCount \
                             or task:group"
                        ),
                        start,
                    ))
                }
            },
        };
        self.pos += word.chars().count();

        self.skip_ws();
        let op_pos = self.pos;
        let op = self.parse_operator(&word)?;
        if !subject.allows(op) {
            let valid: Vec<&str> = ALL_OPERATORS
                .iter()
                .filter(|o| subject.allows(**o))
                .map(|o| o.symbol())
                .collect();
            return Err(self.error_at(
                format!(
                    "operator '{op}' is not valid for subject '{subject}'; valid operators: {}",
                    valid.join(", ")
                ),
                op_pos,
            ));
        }

        let arg = match op {
            Operator::Exists | Operator::NotExists => Argument::None,
            Operator::In | Operator::NotIn => {
                let items = self.parse_list(op)?;
                if subject == Subject::AgentConnected {
                    Argument::List(
                        items
                            .into_iter()
                            .map(|(v, at)| parse_bool(&v).map(|b| b.to_string()).ok_or((v, at)))
                            .collect::<Result<_, _>>()
                            .map_err(|(v, at)| self.error_at(bool_message(&v), at))?,
                    )
                } else {
                    Argument::List(items.into_iter().map(|(v, _)| v).collect())
                }
            }
            Operator::Matches | Operator::NotMatches => {
                let (source, at) = self.parse_regex_value(op)?;
                let pattern = Pattern::new(&source).map_err(|e| {
                    self.error_at(format!("invalid regular expression '{source}': {e}"), at)
                })?;
                Argument::Pattern(pattern)
            }
            _ => {
                let (value, at) = self.parse_value(op, false)?;
                match subject {
                    Subject::AgentConnected => Argument::Bool(
                        parse_bool(&value)
                            .ok_or_else(|| self.error_at(bool_message(&value), at))?,
                    ),
                    Subject::AgentVersion => {
                        Argument::Version(Version::parse(&value).ok_or_else(|| {
                            self.error_at(
                                format!(
                                    "invalid agent version '{value}': expected numbers \
                                     separated by dots, such as 1.14.5"
                                ),
                                at,
                            )
                        })?)
                    }
                    Subject::RegisteredAt => {
                        Argument::Date(DateArg::parse(&value).ok_or_else(|| {
                            self.error_at(
                                format!(
                                    "invalid date '{value}' for registeredAt: expected \
                                 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, \
                                 2018-06-18T22:28:28 or 2018-06-18"
                                ),
                                at,
                            )
                        })?)
                    }
                    Subject::RunningTasksCount => {
                        Argument::Int(value.parse::<i64>().map_err(|_| {
                            self.error_at(
                                format!(
                                    "invalid number '{value}' for runningTasksCount: expected \
                                     a whole number"
                                ),
                                at,
                            )
                        })?)
                    }
                    _ => Argument::Text(value),
                }
            }
        };
        Ok(Comparison { subject, op, arg })
    }

    fn parse_operator(&mut self, subject: &str) -> Result<Operator, ParseError> {
        let start = self.pos;
        let token: String = match self.peek() {
            None => {
                return Err(self.error(format!(
                    "expected an operator after '{subject}', found end of input"
                )))
            }
            Some(c) if is_symbol_char(c) => {
                let mut t: String = self.chars[self.pos..]
                    .iter()
                    .take_while(|c| is_symbol_char(**c))
                    .collect();
                // `!exists`, `!in`
                if t == "!" {
                    t.extend(
                        self.chars[self.pos + 1..]
                            .iter()
                            .take_while(|c| is_word_char(**c)),
                    );
                }
                t
            }
            Some(c) if is_word_char(c) => self.chars[self.pos..]
                .iter()
                .take_while(|c| is_word_char(**c))
                .collect(),
            Some(_) => {
                return Err(self.error(format!(
                    "expected an operator after '{subject}', {}",
                    self.found()
                )))
            }
        };
        let op = match token.to_ascii_lowercase().as_str() {
            "==" | "equals" => Operator::Equals,
            "!=" | "not_equals" => Operator::NotEquals,
            ">" | "greater_than" => Operator::GreaterThan,
            ">=" | "greater_than_equal" => Operator::GreaterThanEqual,
            "<" | "less_than" => Operator::LessThan,
            "<=" | "less_than_equal" => Operator::LessThanEqual,
            "exists" => Operator::Exists,
            "!exists" | "not_exists" => Operator::NotExists,
            "in" => Operator::In,
            "!in" | "not_in" => Operator::NotIn,
            "=~" | "matches" => Operator::Matches,
            "!~" | "not_matches" => Operator::NotMatches,
            _ => return Err(self.error_at(format!("unknown operator '{token}'"), start)),
        };
        self.pos += token.chars().count();
        Ok(op)
    }

    /// A quoted string starting at the cursor (which is on the quote).
    fn parse_quoted(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        let q = self.chars[open];
        let rest = &self.chars[open + 1..];
        match rest.iter().position(|c| *c == q) {
            Some(len) => {
                self.pos = open + 1 + len + 1;
                Ok(rest[..len].iter().collect())
            }
            None => Err(self.error_at(
                format!("unterminated quoted string: {q} at position {open} is never closed"),
                self.chars.len(),
            )),
        }
    }

    /// A single value after `op`; `in_list` also stops bare words at `,`
    /// and `]`. Returns the value and where it started.
    fn parse_value(&mut self, op: Operator, in_list: bool) -> Result<(String, usize), ParseError> {
        self.skip_ws();
        let at = self.pos;
        match self.peek() {
            Some('\'' | '"') => return self.parse_quoted().map(|v| (v, at)),
            Some(c) if !matches!(c, '(' | ')' | '[' | ']' | ',') && !self.at_bool_symbol() => {
                let mut v = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace()
                        || matches!(c, '(' | ')' | '[' | ']' | ',' | '\'' | '"')
                        || self.at_bool_symbol()
                    {
                        break;
                    }
                    v.push(c);
                    self.pos += 1;
                }
                return Ok((v, at));
            }
            _ => {}
        }
        Err(self.error(if in_list {
            format!("expected a list item, {}", self.found())
        } else {
            format!("expected a value after operator '{op}', {}", self.found())
        }))
    }

    /// `[a, 'b', c]`; returns the items and where each started.
    fn parse_list(&mut self, op: Operator) -> Result<Vec<(String, usize)>, ParseError> {
        self.skip_ws();
        if self.peek() != Some('[') {
            return Err(self.error(format!(
                "operator '{op}' expects a list such as [a, b], {}",
                self.found()
            )));
        }
        let open = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(']') {
            return Err(self.error("empty list: give at least one value between [ and ]"));
        }
        loop {
            if self.at_end() {
                break;
            }
            items.push(self.parse_value(op, true)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                None => break,
                Some(_) => {
                    return Err(self.error(format!(
                        "expected ',' or ']' in the list opened at position {open}, {}",
                        self.found()
                    )))
                }
            }
        }
        Err(self.error(format!(
            "unterminated list: '[' at position {open} is never closed"
        )))
    }

    /// The argument of `=~` / `!~`: quoted, or a bare word that may contain
    /// balanced parentheses and bracket classes, with `\` escapes.
    fn parse_regex_value(&mut self, op: Operator) -> Result<(String, usize), ParseError> {
        self.skip_ws();
        let at = self.pos;
        match self.peek() {
            Some('\'' | '"') => return self.parse_quoted().map(|v| (v, at)),
            None | Some(')') => {
                return Err(self.error(format!(
                    "expected a pattern after operator '{op}', {}",
                    self.found()
                )))
            }
            _ if self.at_bool_symbol() => {
                return Err(self.error(format!(
                    "expected a pattern after operator '{op}', {}",
                    self.found()
                )))
            }
            _ => {}
        }
        let mut depth = 0usize;
        let mut in_class = false;
        let mut v = String::new();
        while let Some(c) = self.peek() {
            if c == '\\' {
                v.push(c);
                self.pos += 1;
                if let Some(n) = self.peek() {
                    v.push(n);
                    self.pos += 1;
                }
                continue;
            }
            if in_class {
                in_class = c != ']';
            } else {
                if depth == 0 && (c.is_whitespace() || c == ')' || self.at_bool_symbol()) {
                    break;
                }
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    '[' => in_class = true,
                    _ => {}
                }
            }
            v.push(c);
            self.pos += 1;
        }
        Ok((v, at))
    }
}

const ALL_OPERATORS: [Operator; 12] = [
    Operator::Equals,
    Operator::NotEquals,
    Operator::GreaterThan,
    Operator::GreaterThanEqual,
    Operator::LessThan,
    Operator::LessThanEqual,
    Operator::Exists,
    Operator::NotExists,
    Operator::In,
    Operator::NotIn,
    Operator::Matches,
    Operator::NotMatches,
];

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn bool_message(v: &str) -> String {
    format!("invalid value '{v}' for agentConnected: expected true or false")
}
