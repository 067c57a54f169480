//! The cluster query language: parsing, canonical form, evaluation, errors.

use std::collections::BTreeMap;

use stevedore_scheduler::query::{Argument, Comparison, Operator, Subject};
use stevedore_scheduler::{
    parse_expression, Expr, InstanceSnapshot, InstanceStatus, ParseError, Resources, TaskSnapshot,
};

/// 2018-06-18T22:28:28Z
const REGISTERED_AT_MS: i64 = 1_529_360_908_000;

fn task(arn: &str, group: &str, desired: &str, last: &str) -> TaskSnapshot {
    TaskSnapshot {
        arn: arn.to_string(),
        group: group.to_string(),
        desired_status: desired.to_string(),
        last_status: last.to_string(),
        ..TaskSnapshot::default()
    }
}

fn fixture() -> InstanceSnapshot {
    let attrs: BTreeMap<String, Option<String>> = [
        ("ecs.instance-type", Some("t2.micro")),
        ("ecs.availability-zone", Some("us-east-1a")),
        ("ecs.os-type", Some("linux")),
        ("ecs.cpu-architecture", Some("x86_64")),
        ("com.amazonaws.ecs.capability.privileged-container", None),
        ("color", Some("green")),
        ("size", Some("10")),
        ("team", Some("ops team")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
    .collect();
    InstanceSnapshot {
        arn: "arn:aws:ecs:us-east-1:123456789012:container-instance/c1/abc".to_string(),
        ec2_instance_id: Some("i-abcd1234".to_string()),
        status: InstanceStatus::Active,
        agent_connected: true,
        agent_version: Some("1.105.1".to_string()),
        registered_at: REGISTERED_AT_MS,
        registered: Resources {
            cpu: 2048,
            memory: 4096,
            ..Resources::default()
        },
        attributes: attrs,
        running_tasks: vec![
            task("t1", "service:production", "RUNNING", "RUNNING"),
            task("t2", "family:web", "RUNNING", "PENDING"),
            task("t3", "database", "STOPPED", "STOPPED"),
            // Being stopped: still holds resources, but is not a live member
            // of its group and not counted as running.
            task("t4", "batch", "STOPPED", "RUNNING"),
        ],
    }
}

/// (expression, canonical form, result on the fixture)
const VALID: &[(&str, &str, bool)] = &[
    ("attribute:ecs.instance-type == t2.micro", "attribute:ecs.instance-type == t2.micro", true),
    ("attribute:ecs.instance-type equals t2.small", "attribute:ecs.instance-type == t2.small", false),
    ("attribute:ecs.instance-type =~ t2.*", "attribute:ecs.instance-type =~ t2.*", true),
    ("attribute:ecs.instance-type =~ t2", "attribute:ecs.instance-type =~ t2", false),
    ("attribute:ecs.instance-type matches 'g2.*'", "attribute:ecs.instance-type =~ g2.*", false),
    ("attribute:ecs.instance-type not_matches g2.*", "attribute:ecs.instance-type !~ g2.*", true),
    (
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
        true,
    ),
    (
        "attribute:ecs.availability-zone not_in ['us-east-1a']",
        "attribute:ecs.availability-zone !in [us-east-1a]",
        false,
    ),
    ("attribute:ecs.availability-zone !in [us-east-1c]", "attribute:ecs.availability-zone !in [us-east-1c]", true),
    (
        "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
        "(attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d)",
        false,
    ),
    (
        "attribute:ecs.instance-type =~ t2.* && attribute:ecs.availability-zone not_equals us-east-1d",
        "(attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d)",
        true,
    ),
    ("task:group == service:production", "task:group == service:production", true),
    ("not(task:group == database)", "not (task:group == database)", true),
    ("task:group == batch", "task:group == batch", false),
    ("task:group != service:production", "task:group != service:production", false),
    ("task:group in [family:web, other]", "task:group in [family:web, other]", true),
    ("task:group =~ family:.*", "task:group =~ family:.*", true),
    ("task:group exists", "task:group exists", true),
    ("runningTasksCount == 2", "runningTasksCount == 2", true),
    (
        "runningTasksCount > 1 and runningTasksCount <= 2",
        "(runningTasksCount > 1 and runningTasksCount <= 2)",
        true,
    ),
    ("runningTasksCount less_than 2", "runningTasksCount < 2", false),
    ("runningTasksCount greater_than_equal 2", "runningTasksCount >= 2", true),
    ("agentVersion < 1.14.5", "agentVersion < 1.14.5", false),
    ("agentVersion >= 1.14.5", "agentVersion >= 1.14.5", true),
    ("agentVersion greater_than 1.105", "agentVersion > 1.105", true),
    ("agentVersion == 1.105.1", "agentVersion == 1.105.1", true),
    ("registeredAt < 2018-02-13", "registeredAt < 2018-02-13", false),
    ("registeredAt == 2018-06-18", "registeredAt == 2018-06-18", true),
    ("registeredAt > 2018-06-18T22:28:27Z", "registeredAt > 2018-06-18T22:28:27Z", true),
    (
        "registeredAt <= 2018-06-18T22:28:28+00:00",
        "registeredAt <= 2018-06-18T22:28:28+00:00",
        true,
    ),
    ("registeredAt < 2018-06-19T00:28:28+02:00", "registeredAt < 2018-06-19T00:28:28+02:00", false),
    ("registeredAt less_than_equal 2018-06-18T22:28:28", "registeredAt <= 2018-06-18T22:28:28", true),
    (
        "ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
        "ec2InstanceId in [i-abcd1234, i-wxyx7890]",
        true,
    ),
    ("ec2InstanceId !~ 'i-0.*'", "ec2InstanceId !~ i-0.*", true),
    ("agentConnected == true", "agentConnected == true", true),
    ("agentConnected != FALSE", "agentConnected != false", true),
    ("agentConnected in [false]", "agentConnected in [false]", false),
    (
        "attribute:com.amazonaws.ecs.capability.privileged-container exists",
        "attribute:com.amazonaws.ecs.capability.privileged-container exists",
        true,
    ),
    // A value-less attribute exists but equals nothing.
    (
        "attribute:com.amazonaws.ecs.capability.privileged-container == x",
        "attribute:com.amazonaws.ecs.capability.privileged-container == x",
        false,
    ),
    ("attribute:missing exists", "attribute:missing exists", false),
    ("attribute:missing !exists", "attribute:missing !exists", true),
    ("attribute:missing not_exists", "attribute:missing !exists", true),
    ("attribute:color != red", "attribute:color != red", true),
    ("attribute:missing != red", "attribute:missing != red", true),
    ("attribute:missing == red", "attribute:missing == red", false),
    // Numeric ordering for numbers ("10" > "9"), string ordering otherwise.
    ("attribute:size > 9", "attribute:size > 9", true),
    ("attribute:size >= 10.0", "attribute:size >= 10.0", true),
    ("attribute:color < red", "attribute:color < red", true),
    (
        "(attribute:color == green or attribute:color == blue) and not attribute:ecs.os-type == windows",
        "((attribute:color == green or attribute:color == blue) and not (attribute:ecs.os-type == windows))",
        true,
    ),
    // `and` binds tighter than `or`.
    (
        "attribute:color == blue or attribute:color == green and attribute:ecs.os-type == windows",
        "(attribute:color == blue or (attribute:color == green and attribute:ecs.os-type == windows))",
        false,
    ),
    ("! attribute:color == green", "not (attribute:color == green)", false),
    ("!!attribute:color == green", "not not (attribute:color == green)", true),
    (
        "NOT (attribute:color == green) OR attribute:ecs.os-type EQUALS linux",
        "(not (attribute:color == green) or attribute:ecs.os-type == linux)",
        true,
    ),
    ("(attribute:color == green)", "attribute:color == green", true),
    ("attribute:color==green&&runningTasksCount>=1", "(attribute:color == green and runningTasksCount >= 1)", true),
    (
        "attribute:ecs.instance-type =~ (t2|t3)\\..*",
        "attribute:ecs.instance-type =~ '(t2|t3)\\..*'",
        true,
    ),
    (
        "attribute:ecs.instance-type =~ t[23]\\.(micro|small)",
        "attribute:ecs.instance-type =~ 't[23]\\.(micro|small)'",
        true,
    ),
    (
        "not(attribute:ecs.instance-type =~ (t2|t3).*)",
        "not (attribute:ecs.instance-type =~ '(t2|t3).*')",
        false,
    ),
    ("attribute:color == 'green'", "attribute:color == green", true),
    ("attribute:team == \"ops team\"", "attribute:team == 'ops team'", true),
    ("  attribute:team   ==   'ops team'  ", "attribute:team == 'ops team'", true),
];

#[test]
fn valid_expressions_parse_print_and_evaluate() {
    let inst = fixture();
    for (text, canonical, expected) in VALID {
        let expr = parse_expression(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(expr.to_string(), *canonical, "canonical form of {text:?}");
        assert_eq!(expr.matches(&inst), *expected, "evaluation of {text:?}");
        // The canonical form parses back to the same tree.
        let again = parse_expression(canonical).unwrap_or_else(|e| panic!("{canonical:?}: {e}"));
        assert_eq!(again, expr, "round trip of {text:?}");
    }
}

#[test]
fn parsed_tree_shape() {
    let cmp = |subject, op, arg| Expr::Compare(Comparison { subject, op, arg });
    assert_eq!(
        parse_expression(
            "attribute:a == x or attribute:b exists and not task:group in [g1, 'g 2']"
        )
        .unwrap(),
        Expr::Or(vec![
            cmp(
                Subject::Attribute("a".into()),
                Operator::Equals,
                Argument::Text("x".into())
            ),
            Expr::And(vec![
                cmp(
                    Subject::Attribute("b".into()),
                    Operator::Exists,
                    Argument::None
                ),
                Expr::Not(Box::new(cmp(
                    Subject::TaskGroup,
                    Operator::In,
                    Argument::List(vec!["g1".into(), "g 2".into()])
                ))),
            ]),
        ])
    );
    assert_eq!(
        parse_expression("runningTasksCount >= 3 && agentConnected equals TRUE").unwrap(),
        Expr::And(vec![
            cmp(
                Subject::RunningTasksCount,
                Operator::GreaterThanEqual,
                Argument::Int(3)
            ),
            cmp(
                Subject::AgentConnected,
                Operator::Equals,
                Argument::Bool(true)
            ),
        ])
    );
}

#[test]
fn planned_tasks_count_for_task_group_and_running_tasks_count() {
    let inst = fixture();
    let e = parse_expression("task:group == service:api").unwrap();
    assert!(!e.matches(&inst));
    assert!(e.matches_with(&inst, &["service:api"]));
    let e = parse_expression("runningTasksCount == 3").unwrap();
    assert!(!e.matches(&inst));
    assert!(e.matches_with(&inst, &["service:api"]));
}

#[test]
fn missing_values_are_false_for_positive_operators() {
    let mut inst = fixture();
    inst.ec2_instance_id = None;
    inst.agent_version = None;
    inst.agent_connected = false;
    for (text, expected) in [
        ("ec2InstanceId == i-abcd1234", false),
        ("ec2InstanceId != i-abcd1234", true),
        ("agentVersion < 99", false),
        ("agentVersion != 1.0", true),
        ("agentConnected == false", true),
        ("agentConnected =~ f.*", true),
    ] {
        assert_eq!(
            parse_expression(text).unwrap().matches(&inst),
            expected,
            "{text}"
        );
    }
}

/// (expression, error as displayed)
const INVALID: &[(&str, &str)] = &[
    ("", "position 0: empty expression"),
    ("   ", "position 3: empty expression"),
    (
        "attribute:ecs.instance-type ==",
        "position 30: expected a value after operator '==', found end of input",
    ),
    (
        "(attribute:color == green",
        "position 25: unbalanced parentheses: '(' at position 0 is never closed",
    ),
    (
        "attribute:color == green)",
        "position 24: unbalanced parentheses: ')' has no matching '('",
    ),
    (
        "((attribute:color == green) or attribute:size > 1",
        "position 49: unbalanced parentheses: '(' at position 0 is never closed",
    ),
    ("attribute:color ~= green", "position 16: unknown operator '~='"),
    ("attribute:color = green", "position 16: unknown operator '='"),
    ("attribute:color like green", "position 16: unknown operator 'like'"),
    ("attribute:color !like green", "position 16: unknown operator '!like'"),
    (
        "attribute:ecs.instance-type =~ t2.(",
        "position 31: invalid regular expression 't2.(': unclosed group",
    ),
    (
        "attribute:ecs.instance-type =~ '[a-'",
        "position 31: invalid regular expression '[a-': unclosed character class",
    ),
    (
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b",
        "position 58: unterminated list: '[' at position 35 is never closed",
    ),
    (
        "attribute:ecs.availability-zone in [us-east-1a,",
        "position 47: unterminated list: '[' at position 35 is never closed",
    ),
    (
        "attribute:x in [a b]",
        "position 18: expected ',' or ']' in the list opened at position 15, found 'b'",
    ),
    ("attribute:x in [a, ]", "position 19: expected a list item, found ']'"),
    ("attribute:x in a", "position 15: operator 'in' expects a list such as [a, b], found 'a'"),
    ("attribute:x in []", "position 16: empty list: give at least one value between [ and ]"),
    (
        "foo == bar",
        "position 0: unknown subject 'foo'; expected agentConnected, agentVersion, \
         attribute:<name>, ec2InstanceId, registeredAt, runningTasksCount or task:group",
    ),
    ("attribute: == x", "position 0: missing attribute name after 'attribute:'"),
    (
        "runningTasksCount =~ 1",
        "position 18: operator '=~' is not valid for subject 'runningTasksCount'; \
         valid operators: ==, !=, >, >=, <, <=",
    ),
    (
        "ec2InstanceId > i-1",
        "position 14: operator '>' is not valid for subject 'ec2InstanceId'; \
         valid operators: ==, !=, in, !in, =~, !~",
    ),
    (
        "runningTasksCount == one",
        "position 21: invalid number 'one' for runningTasksCount: expected a whole number",
    ),
    (
        "registeredAt < yesterday",
        "position 15: invalid date 'yesterday' for registeredAt: expected \
         2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 or 2018-06-18",
    ),
    (
        "agentVersion < 1.x",
        "position 15: invalid agent version '1.x': expected numbers separated by dots, such as 1.14.5",
    ),
    (
        "agentConnected == maybe",
        "position 18: invalid value 'maybe' for agentConnected: expected true or false",
    ),
    (
        "agentConnected in [true, maybe]",
        "position 25: invalid value 'maybe' for agentConnected: expected true or false",
    ),
    (
        "attribute:x == 'abc",
        "position 19: unterminated quoted string: ' at position 15 is never closed",
    ),
    (
        "attribute:x == a b",
        "position 17: unexpected 'b'; expected 'and', 'or' or the end of the expression",
    ),
    (
        "attribute:x == a and",
        "position 20: expected a condition (subject operator value), found end of input",
    ),
    (
        "attribute:x == a || || attribute:y exists",
        "position 20: expected a condition (subject operator value), found '||'",
    ),
    ("attribute:x", "position 11: expected an operator after 'attribute:x', found end of input"),
    ("attribute:x exists y", "position 19: unexpected 'y'; expected 'and', 'or' or the end of the expression"),
    ("()", "position 1: expected a condition (subject operator value), found ')'"),
    (
        "(attribute:x exists attribute:y exists)",
        "position 20: unexpected 'attribute:y'; expected 'and', 'or' or ')' to close '(' at position 0",
    ),
];

#[test]
fn malformed_expressions_report_problem_and_position() {
    for (text, expected) in INVALID {
        match parse_expression(text) {
            Ok(e) => panic!("{text:?} parsed as {e}"),
            Err(err) => assert_eq!(err.to_string(), *expected, "error for {text:?}"),
        }
    }
}

#[test]
fn limits() {
    let long = format!("attribute:x == {}", "a".repeat(2000));
    assert_eq!(
        parse_expression(&long).unwrap_err(),
        ParseError {
            message: "expression is 2015 characters long; the maximum is 2000".into(),
            position: 2000,
        }
    );
    let deep = format!("{}attribute:x exists{}", "(".repeat(150), ")".repeat(150));
    let err = parse_expression(&deep).unwrap_err();
    assert_eq!(
        err.to_string(),
        "position 100: expression is nested too deeply (more than 100 levels)"
    );
    let ok = format!("{}attribute:x exists{}", "(".repeat(50), ")".repeat(50));
    assert!(parse_expression(&ok).is_ok());
}
