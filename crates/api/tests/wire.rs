//! Wire behaviour of the generated ECS types: JSON round trips, timestamps,
//! enums, validation and operation metadata.

// The RegisterTaskDefinition fixture is a deeply nested `json!` literal.
#![recursion_limit = "256"]

use serde_json::{json, Value};
use stevedore_api::ecs::{self, ErrorCode, Operation};
use stevedore_api::{Blob, Timestamp, Validate, ValidationError};

fn register_task_definition_json() -> Value {
    json!({
        "family": "web",
        "taskRoleArn": "arn:aws:iam::123456789012:role/web-task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE", "EC2"],
        "cpu": "512",
        "memory": "1024",
        "pidMode": "task",
        "ipcMode": "none",
        "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        "ephemeralStorage": {"sizeInGiB": 30},
        "tags": [{"key": "team", "value": "platform"}, {"key": "env", "value": "prod"}],
        "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.availability-zone in [us-east-1a]"}
        ],
        "volumes": [
            {"name": "scratch", "host": {"sourcePath": "/mnt/scratch"}},
            {
                "name": "shared",
                "efsVolumeConfiguration": {
                    "fileSystemId": "fs-12345678",
                    "rootDirectory": "/",
                    "transitEncryption": "ENABLED",
                    "transitEncryptionPort": 2049,
                    "authorizationConfig": {"accessPointId": "fsap-1234", "iam": "ENABLED"}
                }
            },
            {"name": "cache", "configuredAtLaunch": false}
        ],
        "containerDefinitions": [
            {
                "name": "app",
                "image": "registry.local/app:1.4.2",
                "cpu": 256,
                "memory": 512,
                "memoryReservation": 256,
                "essential": true,
                "command": ["serve", "--port", "8080"],
                "entryPoint": ["/bin/app"],
                "workingDirectory": "/srv",
                "user": "1000:1000",
                "portMappings": [
                    {"containerPort": 8080, "hostPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"},
                    {"containerPortRange": "9000-9010", "protocol": "udp"}
                ],
                "environment": [
                    {"name": "RUST_LOG", "value": "info"},
                    {"name": "PORT", "value": "8080"}
                ],
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/db"}],
                "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/tmp/scratch", "readOnly": false}],
                "healthCheck": {
                    "command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"],
                    "interval": 30,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 10
                },
                "linuxParameters": {
                    "capabilities": {"add": ["SYS_PTRACE"], "drop": ["NET_RAW"]},
                    "initProcessEnabled": true,
                    "sharedMemorySize": 64,
                    "tmpfs": [{"containerPath": "/run", "size": 32, "mountOptions": ["rw", "noexec"]}],
                    "devices": [{"hostPath": "/dev/fuse", "permissions": ["read", "write"]}],
                    "maxSwap": 0,
                    "swappiness": 60
                },
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/ecs/web",
                        "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "app"
                    },
                    "secretOptions": [{"name": "token", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:t"}]
                },
                "dependsOn": [{"containerName": "sidecar", "condition": "HEALTHY"}],
                "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
                "dockerLabels": {"com.example.tier": "web"},
                "stopTimeout": 30,
                "readonlyRootFilesystem": true,
                "restartPolicy": {"enabled": true, "ignoredExitCodes": [0], "restartAttemptPeriod": 60}
            },
            {
                "name": "sidecar",
                "image": "registry.local/envoy:1.30",
                "essential": false,
                "memory": 128,
                "environmentFiles": [{"value": "arn:aws:s3:::bucket/env", "type": "s3"}],
                "firelensConfiguration": {"type": "fluentbit", "options": {"enable-ecs-log-metadata": "true"}}
            }
        ]
    })
}

#[test]
fn register_task_definition_round_trips() {
    let input = register_task_definition_json();
    let req: ecs::RegisterTaskDefinitionRequest = serde_json::from_value(input.clone()).unwrap();

    // A few typed spot checks.
    assert_eq!(req.family.as_deref(), Some("web"));
    assert_eq!(req.network_mode, Some(ecs::NetworkMode::Awsvpc));
    assert_eq!(
        req.requires_compatibilities,
        Some(vec![ecs::Compatibility::Fargate, ecs::Compatibility::Ec2])
    );
    assert_eq!(req.cpu.as_deref(), Some("512"));
    let app = &req.container_definitions.as_ref().unwrap()[0];
    let pm = &app.port_mappings.as_ref().unwrap()[0];
    assert_eq!(pm.container_port, Some(8080));
    assert_eq!(pm.protocol, Some(ecs::TransportProtocol::Tcp));
    assert_eq!(pm.app_protocol, Some(ecs::ApplicationProtocol::Http));
    let log = app.log_configuration.as_ref().unwrap();
    assert_eq!(log.log_driver, Some(ecs::LogDriver::Awslogs));
    assert_eq!(log.options.as_ref().unwrap()["awslogs-group"], "/ecs/web");
    let dep = &app.depends_on.as_ref().unwrap()[0];
    assert_eq!(dep.condition, Some(ecs::ContainerCondition::Healthy));
    let ulimit = &app.ulimits.as_ref().unwrap()[0];
    assert_eq!(ulimit.name, Some(ecs::UlimitName::Nofile));
    assert_eq!(ulimit.soft_limit, Some(65536));
    let lp = app.linux_parameters.as_ref().unwrap();
    assert_eq!(lp.shared_memory_size, Some(64));
    assert_eq!(
        lp.devices.as_ref().unwrap()[0].permissions,
        Some(vec![
            ecs::DeviceCgroupPermission::Read,
            ecs::DeviceCgroupPermission::Write
        ])
    );
    let sidecar = &req.container_definitions.as_ref().unwrap()[1];
    assert_eq!(
        sidecar.environment_files.as_ref().unwrap()[0].r#type,
        Some(ecs::EnvironmentFileType::S3)
    );
    assert_eq!(req.validate(""), Ok(()));

    // Every given field comes back, and nothing else.
    let output = serde_json::to_value(&req).unwrap();
    assert_eq!(output, input);
}

#[test]
fn unknown_fields_ignored_and_null_is_absent() {
    let req: ecs::CreateClusterRequest = serde_json::from_value(json!({
        "clusterName": "default",
        "someFutureField": {"nested": [1, 2, 3]},
        "tags": null,
        "settings": [{"name": "containerInsights", "value": "enabled"}]
    }))
    .unwrap();
    assert_eq!(req.cluster_name.as_deref(), Some("default"));
    assert_eq!(req.tags, None);
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        json!({
            "clusterName": "default",
            "settings": [{"name": "containerInsights", "value": "enabled"}]
        })
    );
    // An all-absent struct serializes as an empty object.
    assert_eq!(
        serde_json::to_string(&ecs::CreateClusterRequest::default()).unwrap(),
        "{}"
    );
}

#[test]
fn timestamps_serialize_as_epoch_seconds() {
    let whole = Timestamp::from_secs(1_718_000_000);
    assert_eq!(whole.as_millis(), 1_718_000_000_000);
    assert_eq!(serde_json::to_string(&whole).unwrap(), "1718000000");
    let frac = Timestamp::from_millis(1_718_000_000_123);
    assert_eq!(serde_json::to_string(&frac).unwrap(), "1718000000.123");
    assert_eq!(
        serde_json::to_string(&Timestamp::from_millis(1_718_000_000_500)).unwrap(),
        "1718000000.5"
    );
    assert_eq!(whole.to_string(), "1718000000");
    assert_eq!(frac.to_string(), "1718000000.123");

    let parsed: Timestamp = serde_json::from_str("1718000000").unwrap();
    assert_eq!(parsed, whole);
    let parsed: Timestamp = serde_json::from_str("1718000000.123").unwrap();
    assert_eq!(parsed.as_millis(), 1_718_000_000_123);
    let parsed: Timestamp = serde_json::from_str("1718000000.1234").unwrap();
    assert_eq!(parsed.as_millis(), 1_718_000_000_123);
    let parsed: Timestamp = serde_json::from_str("1.718e9").unwrap();
    assert_eq!(parsed, whole);
    assert!(serde_json::from_str::<Timestamp>("\"2024-06-10T06:13:20Z\"").is_err());
    assert!(serde_json::from_str::<Timestamp>("1e300").is_err());

    // In a struct (Task.createdAt is a timestamp member).
    let task: ecs::Task =
        serde_json::from_value(json!({"createdAt": 1718000000.25, "lastStatus": "RUNNING"}))
            .unwrap();
    assert_eq!(
        task.created_at,
        Some(Timestamp::from_millis(1_718_000_000_250))
    );
    assert_eq!(
        serde_json::to_value(&task).unwrap(),
        json!({"createdAt": 1718000000.25, "lastStatus": "RUNNING"})
    );

    let now = Timestamp::now();
    assert!(now.as_secs() > 1_700_000_000);
    let st: std::time::SystemTime = now.into();
    assert_eq!(Timestamp::from(st), now);
}

#[test]
fn unknown_enum_values_round_trip() {
    let lt: ecs::LaunchType = serde_json::from_str("\"QUANTUM\"").unwrap();
    assert_eq!(lt, ecs::LaunchType::Unknown("QUANTUM".to_string()));
    assert_eq!(lt.as_str(), "QUANTUM");
    assert_eq!(serde_json::to_string(&lt).unwrap(), "\"QUANTUM\"");

    assert_eq!(
        ecs::LaunchType::from("MANAGED_INSTANCES"),
        ecs::LaunchType::ManagedInstances
    );
    assert_eq!(
        ecs::LaunchType::ManagedInstances.to_string(),
        "MANAGED_INSTANCES"
    );
    assert_eq!(
        ecs::LaunchType::VALUES,
        &["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"]
    );
    assert_eq!(
        "FARGATE".parse::<ecs::LaunchType>(),
        Ok(ecs::LaunchType::Fargate)
    );
    assert_eq!(
        ecs::CPUArchitecture::from("X86_64"),
        ecs::CPUArchitecture::X8664
    );
    assert_eq!(ecs::LogDriver::JsonFile.as_str(), "json-file");
    // The model value UNKNOWN is distinct from the catch-all.
    assert_eq!(
        ecs::HealthStatus::from("UNKNOWN"),
        ecs::HealthStatus::UnknownValue
    );
    assert_eq!(
        ecs::HealthStatus::from("unknown"),
        ecs::HealthStatus::Unknown("unknown".into())
    );

    // Inside a struct the unknown value survives a round trip.
    let input = json!({"cluster": "default", "launchType": "QUANTUM"});
    let req: ecs::ListTasksRequest = serde_json::from_value(input.clone()).unwrap();
    assert_eq!(serde_json::to_value(&req).unwrap(), input);
}

fn error(field: &str, message: &str) -> ValidationError {
    ValidationError {
        field: field.to_string(),
        message: message.to_string(),
    }
}

#[test]
fn validation_missing_required() {
    let req = ecs::RegisterTaskDefinitionRequest {
        family: Some("web".into()),
        ..Default::default()
    };
    assert_eq!(
        req.validate(""),
        Err(error(
            "containerDefinitions",
            "Missing required parameter containerDefinitions"
        ))
    );

    // Nested: a required member of a list element.
    let mut req: ecs::RegisterTaskDefinitionRequest =
        serde_json::from_value(register_task_definition_json()).unwrap();
    req.container_definitions.as_mut().unwrap()[0]
        .ulimits
        .as_mut()
        .unwrap()[0]
        .hard_limit = None;
    let err = req.validate("").unwrap_err();
    assert_eq!(
        err,
        error(
            "containerDefinitions[0].ulimits[0].hardLimit",
            "Missing required parameter containerDefinitions[0].ulimits[0].hardLimit"
        )
    );
    assert_eq!(
        err.to_string(),
        "Missing required parameter containerDefinitions[0].ulimits[0].hardLimit"
    );

    // A non-empty base path is prefixed.
    let dep = ecs::ContainerDependency {
        container_name: Some("db".into()),
        condition: None,
    };
    assert_eq!(
        dep.validate("dependsOn[3]"),
        Err(error(
            "dependsOn[3].condition",
            "Missing required parameter dependsOn[3].condition"
        ))
    );
}

#[test]
fn validation_rejects_unknown_enum_values_with_path() {
    let mut input = register_task_definition_json();
    input["containerDefinitions"][1]["portMappings"] =
        json!([{"containerPort": 80}, {"containerPort": 81, "protocol": "sctp"}]);
    let req: ecs::RegisterTaskDefinitionRequest = serde_json::from_value(input).unwrap();
    assert_eq!(
        req.validate(""),
        Err(error(
            "containerDefinitions[1].portMappings[1].protocol",
            "Invalid value 'sctp' for containerDefinitions[1].portMappings[1].protocol; \
             valid values: tcp, udp"
        ))
    );

    let mut input = register_task_definition_json();
    input["networkMode"] = json!("overlay");
    let req: ecs::RegisterTaskDefinitionRequest = serde_json::from_value(input).unwrap();
    assert_eq!(
        req.validate(""),
        Err(error(
            "networkMode",
            "Invalid value 'overlay' for networkMode; valid values: bridge, host, awsvpc, none"
        ))
    );

    let mut input = register_task_definition_json();
    input["requiresCompatibilities"] = json!(["FARGATE", "LAMBDA"]);
    let req: ecs::RegisterTaskDefinitionRequest = serde_json::from_value(input).unwrap();
    assert_eq!(
        req.validate(""),
        Err(error(
            "requiresCompatibilities[1]",
            "Invalid value 'LAMBDA' for requiresCompatibilities[1]; \
             valid values: EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES"
        ))
    );
}

#[test]
fn validation_list_and_string_bounds() {
    let tag = |i: usize| ecs::Tag {
        key: Some(format!("k{i}")),
        value: Some("v".into()),
    };
    let mut req = ecs::TagResourceRequest {
        resource_arn: Some("arn:aws:ecs:us-east-1:123456789012:cluster/default".into()),
        tags: Some((0..50).map(tag).collect()),
    };
    assert_eq!(req.validate(""), Ok(()));
    req.tags.as_mut().unwrap().push(tag(50));
    assert_eq!(
        req.validate(""),
        Err(error("tags", "tags must have at most 50 items, got 51"))
    );

    // TagKey: 1..=128 characters (counted as characters, not bytes).
    let mut req = ecs::TagResourceRequest {
        resource_arn: Some("arn".into()),
        tags: Some(vec![tag(0), tag(1)]),
    };
    req.tags.as_mut().unwrap()[1].key = Some("ü".repeat(128));
    assert_eq!(req.validate(""), Ok(()));
    req.tags.as_mut().unwrap()[1].key = Some("k".repeat(129));
    assert_eq!(
        req.validate(""),
        Err(error(
            "tags[1].key",
            "tags[1].key must be at most 128 characters long, got 129"
        ))
    );
    req.tags.as_mut().unwrap()[1].key = Some(String::new());
    assert_eq!(
        req.validate(""),
        Err(error(
            "tags[1].key",
            "tags[1].key must be at least 1 character long, got 0"
        ))
    );
}

#[test]
fn validation_numeric_ranges() {
    // CapacityProviderStrategyItem.weight is 0..=1000, base 0..=100000.
    let item = |weight: i32| ecs::CapacityProviderStrategyItem {
        capacity_provider: Some("FARGATE".into()),
        weight: Some(weight),
        base: Some(0),
    };
    assert_eq!(item(1000).validate("s[0]"), Ok(()));
    assert_eq!(
        item(1001).validate("s[0]"),
        Err(error(
            "s[0].weight",
            "s[0].weight must be at most 1000, got 1001"
        ))
    );
    assert_eq!(
        item(-1).validate("s[0]"),
        Err(error(
            "s[0].weight",
            "s[0].weight must be at least 0, got -1"
        ))
    );
}

#[test]
fn operation_metadata() {
    assert_eq!(ecs::TARGET_PREFIX, "AmazonEC2ContainerServiceV20141113");
    assert_eq!(ecs::SIGNING_NAME, "ecs");
    assert_eq!(ecs::API_VERSION, "2014-11-13");
    assert_eq!(ecs::JSON_VERSION, "1.1");

    assert_eq!(
        Operation::from_name("CreateCluster"),
        Some(Operation::CreateCluster)
    );
    assert_eq!(Operation::from_name("createCluster"), None);
    assert_eq!(
        Operation::RegisterTaskDefinition.name(),
        "RegisterTaskDefinition"
    );
    assert_eq!(
        Operation::CreateCluster.errors(),
        &[
            "AccessDeniedException",
            "ClientException",
            "InvalidParameterException",
            "NamespaceNotFoundException",
            "ServerException"
        ]
    );
    assert_eq!(Operation::ALL.len(), 88);
    for op in Operation::ALL {
        assert_eq!(Operation::from_name(op.name()), Some(*op));
        for e in op.errors() {
            assert!(ErrorCode::from_name(e).is_some(), "{op}: {e}");
        }
    }

    assert_eq!(ErrorCode::ServerException.http_status(), 500);
    assert_eq!(ErrorCode::ClientException.http_status(), 400);
    assert_eq!(ErrorCode::ClusterNotFoundException.http_status(), 400);
    assert_eq!(
        ErrorCode::ClusterNotFoundException.as_str(),
        "ClusterNotFoundException"
    );
    assert_eq!(
        ErrorCode::from_name("InvalidParameterException"),
        Some(ErrorCode::InvalidParameterException)
    );
    assert_eq!(ErrorCode::ALL.len(), 31);

    // Exception shapes are plain structs too.
    let e: ecs::ClientException = serde_json::from_str(r#"{"message":"boom"}"#).unwrap();
    assert_eq!(e.message.as_deref(), Some("boom"));
}

#[test]
fn blob_base64() {
    for (bytes, text) in [
        (&b""[..], ""),
        (b"f", "Zg=="),
        (b"fo", "Zm8="),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg=="),
        (b"\xff\x00\xfe", "/wD+"),
    ] {
        let blob = Blob::from_bytes(bytes);
        assert_eq!(blob.as_base64(), text);
        assert_eq!(blob.decode().as_deref(), Some(bytes));
        assert_eq!(serde_json::to_string(&blob).unwrap(), format!("\"{text}\""));
    }
    assert_eq!(Blob("Zm8".into()).decode().as_deref(), Some(&b"fo"[..]));
    assert_eq!(Blob("Z!==".into()).decode(), None);
    assert_eq!(Blob("Z".into()).decode(), None);
}
