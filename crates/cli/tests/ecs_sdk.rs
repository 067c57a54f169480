//! The ECS endpoint driven by the real Rust SDK, `aws-sdk-ecs`.

mod common;

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::{
    ClusterField, Compatibility, ContainerDefinition, KeyValuePair, NetworkMode, PortMapping, Tag,
    TaskDefinitionField, TransportProtocol,
};
use common::TestServer;

fn container(name: &str) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name(name)
        .image("busybox:latest")
        .memory(64)
        .essential(true)
        .command("sleep")
        .command("3600")
        .environment(KeyValuePair::builder().name("MODE").value("test").build())
        .port_mappings(
            PortMapping::builder()
                .container_port(8080)
                .host_port(0)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn clusters_round_trip_through_the_sdk() {
    let server = TestServer::start();
    let ecs = server.client();

    let created = ecs
        .create_cluster()
        .cluster_name("web")
        .tags(Tag::builder().key("team").value("core").build())
        .send()
        .await
        .expect("create");
    let cluster = created.cluster().expect("cluster");
    assert_eq!(
        cluster.cluster_arn(),
        Some("arn:aws:ecs:us-east-1:000000000000:cluster/web")
    );
    assert_eq!(cluster.status(), Some("ACTIVE"));

    // Idempotent on name.
    let again = ecs
        .create_cluster()
        .cluster_name("web")
        .send()
        .await
        .expect("create again");
    assert_eq!(
        again.cluster().and_then(|c| c.cluster_arn()),
        cluster.cluster_arn()
    );

    let described = ecs
        .describe_clusters()
        .clusters("web")
        .clusters("nope")
        .include(ClusterField::Statistics)
        .include(ClusterField::Tags)
        .send()
        .await
        .expect("describe");
    let c = &described.clusters()[0];
    assert_eq!(c.running_tasks_count(), 0);
    assert_eq!(c.registered_container_instances_count(), 0);
    assert_eq!(c.tags().len(), 1);
    assert!(c
        .statistics()
        .iter()
        .any(|kv| kv.name() == Some("runningEC2TasksCount")));
    let failure = &described.failures()[0];
    assert_eq!(failure.reason(), Some("MISSING"));
    assert_eq!(
        failure.arn(),
        Some("arn:aws:ecs:us-east-1:000000000000:cluster/nope")
    );

    let deleted = ecs
        .delete_cluster()
        .cluster("web")
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.cluster().and_then(|c| c.status()), Some("INACTIVE"));
    let listed = ecs.list_clusters().send().await.expect("list");
    assert!(listed.cluster_arns().is_empty());

    let err = ecs
        .update_cluster_settings()
        .cluster("missing")
        .settings(
            aws_sdk_ecs::types::ClusterSetting::builder()
                .name(aws_sdk_ecs::types::ClusterSettingName::ContainerInsights)
                .value("disabled")
                .build(),
        )
        .send()
        .await
        .expect_err("missing cluster");
    assert!(
        err.as_service_error()
            .map(|e| e.is_cluster_not_found_exception())
            .unwrap_or(false),
        "{err:?}"
    );
}

#[tokio::test]
async fn task_definitions_keep_every_field() {
    let server = TestServer::start();
    let ecs = server.client();

    let mut app = container("app");
    app.depends_on = Some(vec![aws_sdk_ecs::types::ContainerDependency::builder()
        .container_name("sidecar")
        .condition(aws_sdk_ecs::types::ContainerCondition::Start)
        .build()
        .expect("dependency")]);
    let mut sidecar = container("sidecar");
    sidecar.essential = Some(false);
    sidecar.port_mappings = None;

    let reg = ecs
        .register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(app)
        .container_definitions(sidecar)
        .cpu("0.25 vCPU")
        .memory("512")
        .tags(Tag::builder().key("env").value("test").build())
        .send()
        .await
        .expect("register");
    let td = reg.task_definition().expect("td");
    assert_eq!(td.revision(), 1);
    assert_eq!(td.cpu(), Some("256"));
    assert_eq!(
        td.task_definition_arn(),
        Some("arn:aws:ecs:us-east-1:000000000000:task-definition/web:1")
    );
    assert!(td.compatibilities().contains(&Compatibility::Ec2));
    assert!(td.registered_at().is_some());
    assert_eq!(td.registered_by(), Some("arn:aws:iam::000000000000:root"));
    assert!(td
        .requires_attributes()
        .iter()
        .any(|a| a.name() == "ecs.capability.container-ordering"));

    let second = ecs
        .register_task_definition()
        .family("web")
        .container_definitions(container("app"))
        .send()
        .await
        .expect("register 2");
    assert_eq!(second.task_definition().map(|t| t.revision()), Some(2));

    let d = ecs
        .describe_task_definition()
        .task_definition("web:1")
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .expect("describe");
    let got = d.task_definition().expect("td");
    let app = &got.container_definitions()[0];
    assert_eq!(app.command(), ["sleep", "3600"]);
    assert_eq!(app.environment()[0].value(), Some("test"));
    assert_eq!(app.port_mappings()[0].container_port(), Some(8080));
    assert_eq!(app.depends_on()[0].container_name(), "sidecar");
    assert_eq!(got.container_definitions()[1].essential(), Some(false));
    assert_eq!(d.tags().len(), 1);

    let latest = ecs
        .describe_task_definition()
        .task_definition("web")
        .send()
        .await
        .expect("latest");
    assert_eq!(latest.task_definition().map(|t| t.revision()), Some(2));

    let err = ecs
        .register_task_definition()
        .family("bad family!")
        .container_definitions(container("app"))
        .send()
        .await
        .expect_err("bad family");
    assert_eq!(err.code(), Some("ClientException"));
    assert!(
        err.message().unwrap_or_default().contains("family"),
        "{err:?}"
    );
}

#[tokio::test]
async fn unimplemented_operations_say_so() {
    let server = TestServer::start();
    let ecs = server.client();
    let err = ecs
        .describe_capacity_providers()
        .send()
        .await
        .expect_err("not built yet");
    assert_eq!(err.code(), Some("UnsupportedFeatureException"));
    assert!(err
        .message()
        .unwrap_or_default()
        .contains("DescribeCapacityProviders"));
}

#[tokio::test]
async fn wrong_secret_is_refused() {
    let server = TestServer::start();
    let (id, _) = server.admin_key();
    let ecs = server.client_with(&id, "not-the-secret", "us-east-1");
    let err = ecs.list_clusters().send().await.expect_err("bad signature");
    assert_eq!(err.code(), Some("InvalidSignatureException"));
    let ecs = server.client_with("AKIAUNKNOWNUNKNOWN00", "x", "us-east-1");
    let err = ecs.list_clusters().send().await.expect_err("unknown key");
    assert_eq!(err.code(), Some("UnrecognizedClientException"));
}

/// Every write the server acknowledged before SIGKILL is there after a
/// restart, and no revision is half-written.
#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = TestServer::start_in(tmp.path());
    let ecs = server.client();
    let acked = std::sync::Arc::new(parking_lot_free::Acked::default());
    let mut workers = Vec::new();
    for w in 0..8 {
        let ecs = ecs.clone();
        let acked = acked.clone();
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("c{w}-{i}");
                match ecs.create_cluster().cluster_name(&name).send().await {
                    Ok(_) => acked.push(format!("cluster:{name}")),
                    Err(_) => break,
                }
                match ecs
                    .register_task_definition()
                    .family(format!("f{w}"))
                    .container_definitions(container("app"))
                    .send()
                    .await
                {
                    Ok(r) => acked.push(format!(
                        "td:{}",
                        r.task_definition()
                            .and_then(|t| t.task_definition_arn())
                            .unwrap_or_default()
                    )),
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill9();
    for w in workers {
        let _ = w.await;
    }
    let acked = acked.take();
    assert!(
        acked.len() > 20,
        "too few writes before the kill: {}",
        acked.len()
    );

    let server = TestServer::start_in(tmp.path());
    let ecs = server.client();
    for item in &acked {
        if let Some(name) = item.strip_prefix("cluster:") {
            let d = ecs
                .describe_clusters()
                .clusters(name)
                .send()
                .await
                .expect("describe");
            assert_eq!(d.clusters().len(), 1, "acknowledged cluster {name} lost");
        } else if let Some(arn) = item.strip_prefix("td:") {
            let d = ecs
                .describe_task_definition()
                .task_definition(arn)
                .send()
                .await;
            assert!(d.is_ok(), "acknowledged task definition {arn} lost: {d:?}");
        }
    }
    // Revisions of every family are contiguous from 1: no half-written txn.
    for w in 0..8 {
        let arns = ecs
            .list_task_definitions()
            .family_prefix(format!("f{w}"))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("list");
        for (i, arn) in arns.iter().enumerate() {
            assert!(arn.ends_with(&format!("f{w}:{}", i + 1)), "gap at {arn}");
        }
    }
}

mod parking_lot_free {
    #[derive(Default)]
    pub struct Acked(std::sync::Mutex<Vec<String>>);
    impl Acked {
        pub fn push(&self, s: String) {
            self.0.lock().expect("lock").push(s);
        }
        pub fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().expect("lock"))
        }
    }
}
