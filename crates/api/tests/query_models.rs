//! The Query codec over the real models: every Query (or query-compatible)
//! model reads, and requests laid out as botocore's Query serializer lays
//! them out decode into the generated input types.

use serde_json::json;
use stevedore_api::{cloudwatch, elbv2, query::QueryModel, sts, Validate};

fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn decode<T: serde::de::DeserializeOwned + Validate>(
    m: &QueryModel,
    op: &str,
    p: &[(&str, &str)],
) -> T {
    let tree = m.decode_input(op, &params(p)).expect("decodes");
    let v: T = serde_json::from_value(tree).expect("fits the generated type");
    v.validate("").expect("valid");
    v
}

#[test]
fn the_query_models_read() {
    assert_eq!(sts::query_model().api_version(), sts::API_VERSION);
    assert_eq!(
        sts::query_model().namespace(),
        "https://sts.amazonaws.com/doc/2011-06-15/"
    );
    assert_eq!(elbv2::query_model().api_version(), "2015-12-01");
    assert_eq!(cloudwatch::query_model().api_version(), "2010-08-01");
}

#[test]
fn elbv2_create_target_group_as_the_cli_sends_it() {
    let m = elbv2::query_model();
    let tg: elbv2::CreateTargetGroupInput = decode(
        m,
        "CreateTargetGroup",
        &[
            ("Name", "web-tg"),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("VpcId", "vpc-1"),
            ("TargetType", "ip"),
            ("HealthCheckPath", "/health"),
            ("HealthCheckEnabled", "true"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "web"),
        ],
    );
    assert_eq!(tg.name.as_deref(), Some("web-tg"));
    assert_eq!(tg.protocol, Some(elbv2::ProtocolEnum::Http));
    assert_eq!(tg.port, Some(80));
    assert_eq!(tg.target_type, Some(elbv2::TargetTypeEnum::Ip));
    assert_eq!(tg.health_check_enabled, Some(true));
    let tags = tg.tags.unwrap();
    assert_eq!(tags[0].key.as_deref(), Some("team"));
    assert_eq!(tags[0].value.as_deref(), Some("web"));
}

#[test]
fn elbv2_rules_and_attributes_nest_lists_in_lists() {
    let m = elbv2::query_model();
    let rule: elbv2::CreateRuleInput = decode(
        m,
        "CreateRule",
        &[
            ("ListenerArn", "arn:l"),
            ("Priority", "10"),
            ("Conditions.member.1.Field", "path-pattern"),
            ("Conditions.member.1.Values.member.1", "/api/*"),
            ("Conditions.member.1.Values.member.2", "/v2/*"),
            ("Actions.member.1.Type", "forward"),
            ("Actions.member.1.TargetGroupArn", "arn:tg"),
        ],
    );
    let c = &rule.conditions.unwrap()[0];
    assert_eq!(c.field.as_deref(), Some("path-pattern"));
    assert_eq!(
        c.values.as_deref(),
        Some(&["/api/*".to_string(), "/v2/*".to_string()][..])
    );
    assert_eq!(rule.priority, Some(10));
    let attrs: elbv2::ModifyTargetGroupAttributesInput = decode(
        m,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", "arn:tg"),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "5"),
            ("Attributes.member.2.Key", "stickiness.enabled"),
            ("Attributes.member.2.Value", "true"),
        ],
    );
    let attrs = attrs.attributes.unwrap();
    assert_eq!(attrs.len(), 2);
    assert_eq!(attrs[1].key.as_deref(), Some("stickiness.enabled"));
}

#[test]
fn elbv2_refuses_what_the_model_does_not_have() {
    let m = elbv2::query_model();
    let e = m
        .decode_input(
            "CreateTargetGroup",
            &params(&[("Name", "x"), ("Port", "http")]),
        )
        .unwrap_err();
    assert_eq!(e.0, "Port must be an integer (got \"http\").");
    let e = m
        .decode_input("CreateTargetGroup", &params(&[("Colour", "red")]))
        .unwrap_err();
    assert_eq!(e.0, "Colour is not a parameter of CreateTargetGroupInput.");
}

#[test]
fn elbv2_output_is_laid_out_as_the_model_says() {
    let m = elbv2::query_model();
    let out = elbv2::DescribeTargetGroupsOutput {
        target_groups: Some(vec![elbv2::TargetGroup {
            target_group_name: Some("web-tg".into()),
            port: Some(80),
            load_balancer_arns: Some(vec!["arn:lb".into()]),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let xml = m
        .encode_output(
            "DescribeTargetGroups",
            &serde_json::to_value(&out).unwrap(),
            "rid",
        )
        .unwrap();
    assert!(
        xml.contains(
            "<DescribeTargetGroupsResult><TargetGroups><member>\
         <LoadBalancerArns><member>arn:lb</member></LoadBalancerArns>\
         <Port>80</Port><TargetGroupName>web-tg</TargetGroupName>\
         </member></TargetGroups></DescribeTargetGroupsResult>"
        ),
        "{xml}"
    );
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeTargetGroupsResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">"));
}

#[test]
fn sts_get_caller_identity_takes_nothing() {
    let m = sts::query_model();
    assert_eq!(m.decode_input("GetCallerIdentity", &[]).unwrap(), json!({}));
    let out = sts::GetCallerIdentityResponse {
        account: Some("000000000000".into()),
        arn: Some("arn:aws:iam::000000000000:root".into()),
        user_id: Some("000000000000".into()),
    };
    let xml = m
        .encode_output(
            "GetCallerIdentity",
            &serde_json::to_value(&out).unwrap(),
            "rid",
        )
        .unwrap();
    assert!(xml.contains("<GetCallerIdentityResult><Account>000000000000</Account><Arn>arn:aws:iam::000000000000:root</Arn><UserId>000000000000</UserId></GetCallerIdentityResult>"), "{xml}");
}
