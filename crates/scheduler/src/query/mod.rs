//! The ECS cluster query language (ECS-SEMANTICS 6.4; DG
//! `cluster-query-language.md`), used by `memberOf` placement constraints
//! and by `ListContainerInstances --filter`.
//!
//! [`parse_expression`] turns text into an [`Expr`]; [`Expr::matches`]
//! evaluates it against one [`InstanceSnapshot`]. Both are pure, so the
//! server can parse once (turning a [`ParseError`] into
//! `InvalidParameterException`) and evaluate per instance.
//!
//! # Grammar
//!
//! ```text
//! expr       := and_expr (("||" | "or") and_expr)*
//! and_expr   := unary (("&&" | "and") unary)*
//! unary      := ("!" | "not") unary | "(" expr ")" | comparison
//! comparison := subject operator [argument]
//! subject    := agentConnected | agentVersion | attribute:<name> | ec2InstanceId
//!             | registeredAt | runningTasksCount | task:group
//! argument   := value | "[" value ("," value)* "]"
//! value      := bare-word | '…' | "…"
//! ```
//!
//! `not` binds tighter than `and`, which binds tighter than `or`. Keywords
//! (`and`, `or`, `not`) and word operators (`equals`, `not_in`, …) are
//! case-insensitive; subjects and values are case-sensitive. Quoted values
//! have no escapes. A bare value runs to the next blank, parenthesis,
//! bracket, comma, quote, `&&` or `||`; a bare regex (after `=~` / `!~`) may
//! also contain balanced parentheses and bracket classes, and `\` escapes the
//! next character. Parentheses around a single comparison are accepted.
//!
//! # Operators per subject
//!
//! | subject | operators | argument type |
//! |---|---|---|
//! | `agentConnected` | `== != in !in =~ !~` | `true` / `false` |
//! | `agentVersion` | `== != > >= < <=` | dotted version, compared numerically |
//! | `attribute:<name>` | all | text; ordering compares numerically when both sides are numbers, else as strings |
//! | `ec2InstanceId` | `== != in !in =~ !~` | text |
//! | `registeredAt` | `== != > >= < <=` | date or timestamp (see [`DateArg`]) |
//! | `runningTasksCount` | `== != > >= < <=` | integer |
//! | `task:group` | `== != in !in =~ !~ exists !exists` | text |
//!
//! # Evaluation rules
//!
//! * Every negative operator is the negation of its positive twin:
//!   `a != b` ≡ `not(a == b)`, likewise `!in`, `!~`, `!exists`. So
//!   `attribute:color != red` holds for an instance without a `color`
//!   attribute, and `task:group != db` holds for an instance that runs no
//!   `db` task (the task anti-affinity of the DG's `not(task:group == db)`).
//! * A positive comparison on something that is absent (attribute missing
//!   or without a value, no `ec2InstanceId`, no agent version) is false.
//!   `attribute:x exists` holds for a value-less attribute.
//! * `task:group` looks at the groups of the instance's live tasks (see
//!   [`crate::TaskSnapshot::is_live`]) plus tasks the plan has already put
//!   there; a positive comparison holds if *any* of them matches.
//!   `task:group exists` holds when there is at least one task with a group.
//! * `runningTasksCount` counts tasks whose desired status is RUNNING, plus
//!   the tasks the plan has already put there.
//! * `=~` is anchored at both ends (see [`Pattern`]).

mod parse;
mod values;

use std::cmp::Ordering;
use std::fmt;

pub use parse::{parse_expression, ParseError, MAX_EXPRESSION_LEN};
pub use values::{DateArg, Pattern, Version};

use crate::snapshot::InstanceSnapshot;

/// A parsed cluster query expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// All must hold (two or more operands).
    And(Vec<Expr>),
    /// At least one must hold (two or more operands).
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare(Comparison),
}

/// `subject operator [argument]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub subject: Subject,
    pub op: Operator,
    pub arg: Argument,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    AgentConnected,
    AgentVersion,
    /// `attribute:<name>`.
    Attribute(String),
    Ec2InstanceId,
    RegisteredAt,
    RunningTasksCount,
    /// `task:group`.
    TaskGroup,
}

impl Subject {
    /// Operators the subject accepts (see the module table).
    pub fn allows(&self, op: Operator) -> bool {
        use Operator::*;
        match self {
            Subject::Attribute(_) => true,
            Subject::AgentConnected | Subject::Ec2InstanceId => {
                matches!(op, Equals | NotEquals | In | NotIn | Matches | NotMatches)
            }
            Subject::TaskGroup => matches!(
                op,
                Equals | NotEquals | In | NotIn | Matches | NotMatches | Exists | NotExists
            ),
            Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => {
                matches!(
                    op,
                    Equals | NotEquals | GreaterThan | GreaterThanEqual | LessThan | LessThanEqual
                )
            }
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::AgentConnected => f.write_str("agentConnected"),
            Subject::AgentVersion => f.write_str("agentVersion"),
            Subject::Attribute(name) => write!(f, "attribute:{name}"),
            Subject::Ec2InstanceId => f.write_str("ec2InstanceId"),
            Subject::RegisteredAt => f.write_str("registeredAt"),
            Subject::RunningTasksCount => f.write_str("runningTasksCount"),
            Subject::TaskGroup => f.write_str("task:group"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Equals,
    NotEquals,
    GreaterThan,
    GreaterThanEqual,
    LessThan,
    LessThanEqual,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

impl Operator {
    /// The symbol form (`==`, `!in`, `exists`, ...), used by `Display`.
    pub fn symbol(self) -> &'static str {
        match self {
            Operator::Equals => "==",
            Operator::NotEquals => "!=",
            Operator::GreaterThan => ">",
            Operator::GreaterThanEqual => ">=",
            Operator::LessThan => "<",
            Operator::LessThanEqual => "<=",
            Operator::Exists => "exists",
            Operator::NotExists => "!exists",
            Operator::In => "in",
            Operator::NotIn => "!in",
            Operator::Matches => "=~",
            Operator::NotMatches => "!~",
        }
    }

    /// Splits a negative operator into its positive twin and `true`.
    fn positive(self) -> (Operator, bool) {
        match self {
            Operator::NotEquals => (Operator::Equals, true),
            Operator::NotExists => (Operator::Exists, true),
            Operator::NotIn => (Operator::In, true),
            Operator::NotMatches => (Operator::Matches, true),
            op => (op, false),
        }
    }

    /// For `==` and the ordering operators: whether `ord` (subject compared
    /// with argument) satisfies the operator.
    fn accepts(self, ord: Ordering) -> bool {
        match self {
            Operator::Equals => ord == Ordering::Equal,
            Operator::GreaterThan => ord == Ordering::Greater,
            Operator::GreaterThanEqual => ord != Ordering::Less,
            Operator::LessThan => ord == Ordering::Less,
            Operator::LessThanEqual => ord != Ordering::Greater,
            _ => false,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// The argument of a comparison, typed by subject at parse time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argument {
    /// `exists` / `!exists`.
    None,
    Text(String),
    /// `in` / `!in` (for `agentConnected`, items are `true` / `false`).
    List(Vec<String>),
    /// `agentConnected == true`.
    Bool(bool),
    /// `runningTasksCount`.
    Int(i64),
    /// `agentVersion`.
    Version(Version),
    /// `registeredAt`.
    Date(DateArg),
    /// `=~` / `!~`.
    Pattern(Pattern),
}

impl fmt::Display for Argument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Argument::None => Ok(()),
            Argument::Text(s) => write_value(f, s),
            Argument::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_value(f, item)?;
                }
                f.write_str("]")
            }
            Argument::Bool(b) => write!(f, "{b}"),
            Argument::Int(n) => write!(f, "{n}"),
            Argument::Version(v) => f.write_str(&v.raw),
            Argument::Date(d) => f.write_str(&d.raw),
            Argument::Pattern(p) => write_value(f, &p.source),
        }
    }
}

/// Writes a value bare when it lexes back as the same bare word, else
/// single-quoted (double-quoted if it contains a single quote).
fn write_value(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let bare = !s.is_empty()
        && !s.contains("&&")
        && !s.contains("||")
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | '\'' | '"'));
    if bare {
        f.write_str(s)
    } else if s.contains('\'') {
        write!(f, "\"{s}\"")
    } else {
        write!(f, "'{s}'")
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject, self.op)?;
        if self.arg != Argument::None {
            write!(f, " {}", self.arg)?;
        }
        Ok(())
    }
}

/// A canonical, fully parenthesised form that parses back to the same
/// expression: `(a == b and not (c exists))`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(items) | Expr::Or(items) => {
                let sep = if matches!(self, Expr::And(_)) {
                    " and "
                } else {
                    " or "
                };
                f.write_str("(")?;
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str(")")
            }
            Expr::Not(inner) => match **inner {
                Expr::Compare(_) => write!(f, "not ({inner})"),
                _ => write!(f, "not {inner}"),
            },
            Expr::Compare(c) => write!(f, "{c}"),
        }
    }
}

impl Expr {
    /// Evaluates the expression against an instance as stored (the
    /// `ListContainerInstances --filter` case).
    pub fn matches(&self, instance: &InstanceSnapshot) -> bool {
        self.matches_with(instance, &[])
    }

    /// Evaluates the expression against an instance on which the plan being
    /// built has already put tasks of the groups `planned_groups` (one entry
    /// per task). Those tasks count for `task:group` and `runningTasksCount`.
    pub fn matches_with(&self, instance: &InstanceSnapshot, planned_groups: &[&str]) -> bool {
        match self {
            Expr::And(items) => items
                .iter()
                .all(|e| e.matches_with(instance, planned_groups)),
            Expr::Or(items) => items
                .iter()
                .any(|e| e.matches_with(instance, planned_groups)),
            Expr::Not(e) => !e.matches_with(instance, planned_groups),
            Expr::Compare(c) => c.matches_with(instance, planned_groups),
        }
    }
}

impl Comparison {
    /// See [`Expr::matches_with`].
    pub fn matches_with(&self, inst: &InstanceSnapshot, planned_groups: &[&str]) -> bool {
        let (op, negate) = self.op.positive();
        self.positive_holds(op, inst, planned_groups) != negate
    }

    fn positive_holds(&self, op: Operator, inst: &InstanceSnapshot, planned: &[&str]) -> bool {
        match &self.subject {
            Subject::AgentConnected => {
                let value = if inst.agent_connected {
                    "true"
                } else {
                    "false"
                };
                match &self.arg {
                    Argument::Bool(b) => op.accepts(inst.agent_connected.cmp(b)),
                    _ => self.text_holds(op, value),
                }
            }
            Subject::AgentVersion => {
                let Argument::Version(want) = &self.arg else {
                    return false;
                };
                inst.agent_version
                    .as_deref()
                    .and_then(Version::parse_lenient)
                    .is_some_and(|have| op.accepts(have.compare(want)))
            }
            Subject::Attribute(name) => match inst.attribute(name) {
                None => false,
                Some(_) if op == Operator::Exists => true,
                Some(None) => false,
                Some(Some(value)) => self.text_holds(op, value),
            },
            Subject::Ec2InstanceId => inst
                .ec2_instance_id
                .as_deref()
                .is_some_and(|id| self.text_holds(op, id)),
            Subject::RegisteredAt => match &self.arg {
                Argument::Date(d) => op.accepts(d.compare_instant(inst.registered_at)),
                _ => false,
            },
            Subject::RunningTasksCount => match &self.arg {
                Argument::Int(n) => {
                    let count = inst.running_tasks_count() + planned.len() as i64;
                    op.accepts(count.cmp(n))
                }
                _ => false,
            },
            Subject::TaskGroup => {
                let mut groups = inst
                    .live_tasks()
                    .map(|t| t.group.as_str())
                    .chain(planned.iter().copied());
                if op == Operator::Exists {
                    groups.any(|g| !g.is_empty())
                } else {
                    groups.any(|g| self.text_holds(op, g))
                }
            }
        }
    }

    /// A positive operator applied to a text value.
    fn text_holds(&self, op: Operator, value: &str) -> bool {
        match (&self.arg, op) {
            (Argument::List(items), Operator::In) => items.iter().any(|i| i == value),
            (Argument::Pattern(p), Operator::Matches) => p.is_match(value),
            (Argument::Text(want), Operator::Equals) => value == want,
            (Argument::Text(want), _) => op.accepts(loose_cmp(value, want)),
            _ => false,
        }
    }
}

/// Ordering for attribute values: numeric when both are numbers, else
/// lexicographic.
fn loose_cmp(a: &str, b: &str) -> Ordering {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        _ => a.cmp(b),
    }
}
