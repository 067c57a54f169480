//! The planner: resource accounting, strategies, constraints, failures and
//! commit-time verification.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stevedore_scheduler::{
    parse_expression, plan, static_host_ports, verify_plan, BinpackField, ClusterSnapshot,
    Conflict, ConflictReason, Constraint, Failure, InstanceSnapshot, InstanceStatus, Plan,
    PortMappingSpec, Reason, SpreadField, Strategy, TaskRequest, TaskSnapshot, MAX_RESERVED_PORTS,
};

const GROUP: &str = "family:web";

fn inst(arn: &str, cpu: i64, memory: i64) -> InstanceSnapshot {
    let mut i = InstanceSnapshot::new(arn, cpu, memory);
    i.attributes
        .insert("ecs.availability-zone".into(), Some("us-east-1a".into()));
    i
}

fn in_az(mut i: InstanceSnapshot, az: &str) -> InstanceSnapshot {
    i.attributes
        .insert("ecs.availability-zone".into(), Some(az.into()));
    i
}

fn attr(mut i: InstanceSnapshot, name: &str, value: Option<&str>) -> InstanceSnapshot {
    i.attributes.insert(name.into(), value.map(str::to_string));
    i
}

fn with_task(mut i: InstanceSnapshot, t: TaskSnapshot) -> InstanceSnapshot {
    i.running_tasks.push(t);
    i
}

fn task(group: &str, cpu: i64, memory: i64) -> TaskSnapshot {
    TaskSnapshot {
        arn: format!("task-{group}-{cpu}-{memory}"),
        group: group.into(),
        cpu,
        memory,
        desired_status: "RUNNING".into(),
        last_status: "RUNNING".into(),
        ..TaskSnapshot::default()
    }
}

fn status(mut t: TaskSnapshot, desired: &str, last: &str) -> TaskSnapshot {
    t.desired_status = desired.into();
    t.last_status = last.into();
    t
}

fn ports(p: &[u16]) -> BTreeSet<u16> {
    p.iter().copied().collect()
}

fn req(cpu: i64, memory: i64, count: u32) -> TaskRequest {
    TaskRequest {
        cpu,
        memory,
        group: GROUP.into(),
        count,
        ..TaskRequest::default()
    }
}

fn cluster(instances: Vec<InstanceSnapshot>) -> ClusterSnapshot {
    ClusterSnapshot::new(instances)
}

fn fail(arn: &str, reason: Reason) -> Failure {
    Failure {
        arn: Some(arn.into()),
        reason,
    }
}

fn placed(arns: &[&str]) -> Vec<String> {
    arns.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------
// Resource accounting
// ---------------------------------------------------------------------------

#[test]
fn each_instance_reports_its_first_reason() {
    const ENI: &str = "ecs.capability.task-eni";
    let ok = |i: InstanceSnapshot| attr(i, ENI, None);
    let mut disconnected = ok(inst("a", 4096, 4096));
    disconnected.agent_connected = false;
    let mut draining = ok(inst("g", 4096, 4096));
    draining.status = InstanceStatus::Draining;
    let mut everything_wrong = inst("h", 0, 0);
    everything_wrong.agent_connected = false;
    let mut reserved_80 = ok(inst("e", 4096, 4096));
    reserved_80.registered.ports_tcp = ports(&[22, 80]);
    let mut udp_53 = task("other", 0, 0);
    udp_53.ports_udp = ports(&[53]);

    let snapshot = cluster(vec![
        disconnected,
        inst("b", 4096, 4096),
        ok(inst("c", 256, 4096)),
        ok(inst("d", 4096, 100)),
        reserved_80,
        with_task(ok(inst("f", 4096, 4096)), udp_53),
        draining,
        everything_wrong,
    ]);
    let request = TaskRequest {
        ports_tcp: ports(&[80]),
        ports_udp: ports(&[53]),
        required_attributes: vec![ENI.into()],
        ..req(512, 512, 1)
    };
    assert_eq!(
        plan(&snapshot, &request),
        Plan {
            placements: vec![],
            failures: vec![
                fail("a", Reason::Agent),
                fail("b", Reason::Attribute),
                fail("c", Reason::ResourceCpu),
                fail("d", Reason::ResourceMemory),
                fail("e", Reason::ResourcePorts),
                fail("f", Reason::ResourcePortsUdp),
                // g is DRAINING: skipped, not reported.
                fail("h", Reason::Agent),
            ],
        }
    );
}

#[test]
fn single_instance_accounting_table() {
    type Case = (
        &'static str,
        fn(InstanceSnapshot) -> InstanceSnapshot,
        fn(TaskRequest) -> TaskRequest,
        Result<(), Reason>,
    );
    let cases: &[Case] = &[
        ("exact fit", |i| i, |r| r, Ok(())),
        (
            "cpu one unit short",
            |i| i,
            |r| TaskRequest { cpu: 1025, ..r },
            Err(Reason::ResourceCpu),
        ),
        (
            "memory one MiB short",
            |i| i,
            |r| TaskRequest { memory: 2049, ..r },
            Err(Reason::ResourceMemory),
        ),
        (
            "cpu checked before memory",
            |i| i,
            |r| TaskRequest {
                cpu: 9999,
                memory: 9999,
                ..r
            },
            Err(Reason::ResourceCpu),
        ),
        (
            "running task reserves cpu",
            |i| with_task(i, task("x", 1, 0)),
            |r| r,
            Err(Reason::ResourceCpu),
        ),
        (
            "stopped task released its reservation",
            |i| with_task(i, status(task("x", 1024, 2048), "STOPPED", "STOPPED")),
            |r| r,
            Ok(()),
        ),
        (
            "stopping task still holds its reservation",
            |i| with_task(i, status(task("x", 0, 1), "STOPPED", "RUNNING")),
            |r| r,
            Err(Reason::ResourceMemory),
        ),
        (
            "pending task holds its reservation",
            |i| with_task(i, status(task("x", 0, 1), "RUNNING", "PENDING")),
            |r| r,
            Err(Reason::ResourceMemory),
        ),
        (
            "zero cpu fits on a full instance",
            |i| with_task(i, task("x", 1024, 0)),
            |r| TaskRequest { cpu: 0, ..r },
            Ok(()),
        ),
        (
            "static port held by a running task",
            |i| {
                let mut t = task("x", 0, 0);
                t.ports_tcp = ports(&[8080]);
                with_task(i, t)
            },
            |r| TaskRequest {
                ports_tcp: ports(&[8080]),
                cpu: 0,
                memory: 0,
                ..r
            },
            Err(Reason::ResourcePorts),
        ),
        (
            "static port of a stopped task is free again",
            |i| {
                let mut t = status(task("x", 0, 0), "STOPPED", "STOPPED");
                t.ports_tcp = ports(&[8080]);
                with_task(i, t)
            },
            |r| TaskRequest {
                ports_tcp: ports(&[8080]),
                ..r
            },
            Ok(()),
        ),
        (
            "registered reserved port",
            |i| {
                let mut i = i;
                i.registered.ports_tcp = ports(&[22, 2375, 2376, 51678, 51679]);
                i
            },
            |r| TaskRequest {
                ports_tcp: ports(&[2375]),
                ..r
            },
            Err(Reason::ResourcePorts),
        ),
        (
            "same number on the other protocol does not clash",
            |i| {
                let mut i = i;
                i.registered.ports_tcp = ports(&[53]);
                i
            },
            |r| TaskRequest {
                ports_udp: ports(&[53]),
                ..r
            },
            Ok(()),
        ),
        (
            "udp clash",
            |i| {
                let mut i = i;
                i.registered.ports_udp = ports(&[53]);
                i
            },
            |r| TaskRequest {
                ports_udp: ports(&[53]),
                ports_tcp: ports(&[53]),
                ..r
            },
            Err(Reason::ResourcePortsUdp),
        ),
        (
            "at most 100 reserved ports: 99 + 1 fits",
            |i| {
                let mut i = i;
                i.registered.ports_tcp = (1000..1099).collect();
                i
            },
            |r| TaskRequest {
                ports_tcp: ports(&[80]),
                ..r
            },
            Ok(()),
        ),
        (
            "at most 100 reserved ports: 99 + 2 does not",
            |i| {
                let mut i = i;
                i.registered.ports_tcp = (1000..1099).collect();
                i
            },
            |r| TaskRequest {
                ports_tcp: ports(&[80, 81]),
                ..r
            },
            Err(Reason::ResourcePorts),
        ),
    ];
    assert_eq!(MAX_RESERVED_PORTS, 100);
    for (name, shape_instance, shape_request, expected) in cases {
        let snapshot = cluster(vec![shape_instance(inst("a", 1024, 2048))]);
        let request = shape_request(req(1024, 2048, 1));
        let got = plan(&snapshot, &request);
        let want = match expected {
            Ok(()) => Plan {
                placements: placed(&["a"]),
                failures: vec![],
            },
            Err(r) => Plan {
                placements: vec![],
                failures: vec![fail("a", *r)],
            },
        };
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn static_ports_limit_one_task_per_instance_within_a_plan() {
    let snapshot = cluster(vec![inst("a", 8192, 8192), inst("b", 8192, 8192)]);
    let request = TaskRequest {
        ports_tcp: ports(&[8080]),
        ..req(128, 128, 3)
    };
    let p = plan(&snapshot, &request);
    assert_eq!(p.placements, placed(&["a", "b"]));
    assert_eq!(
        p.failures,
        vec![
            fail("a", Reason::ResourcePorts),
            fail("b", Reason::ResourcePorts)
        ]
    );
}

#[test]
fn dynamic_and_awsvpc_ports_are_not_reserved() {
    let tcp = |host_port, container_port| PortMappingSpec {
        container_port: Some(container_port),
        host_port,
        udp: false,
    };
    let mappings = [
        tcp(None, 80),
        tcp(Some(0), 443),
        tcp(Some(8080), 8080),
        PortMappingSpec {
            container_port: Some(53),
            host_port: Some(5353),
            udp: true,
        },
    ];
    let bridge = static_host_ports("bridge", &mappings);
    assert_eq!((bridge.tcp, bridge.udp), (ports(&[8080]), ports(&[5353])));
    let host = static_host_ports("host", &mappings);
    assert_eq!(
        (host.tcp, host.udp),
        (ports(&[80, 443, 8080]), ports(&[5353]))
    );
    for mode in ["awsvpc", "none"] {
        let none = static_host_ports(mode, &mappings);
        assert!(none.tcp.is_empty() && none.udp.is_empty(), "{mode}");
    }

    // Tasks with only dynamic ports stack on one instance.
    let dynamic = static_host_ports("bridge", &[tcp(None, 80), tcp(Some(0), 81)]);
    let snapshot = cluster(vec![inst("a", 8192, 8192)]);
    let request = TaskRequest {
        ports_tcp: dynamic.tcp,
        ports_udp: dynamic.udp,
        ..req(128, 128, 5)
    };
    assert_eq!(plan(&snapshot, &request).placements.len(), 5);
}

#[test]
fn count_ten_spreads_without_overcommit() {
    let snapshot = cluster(vec![
        inst("a", 4096, 8192),
        inst("b", 4096, 8192),
        inst("c", 4096, 8192),
    ]);
    let spread = vec![Strategy::Spread(SpreadField::InstanceId)];
    let p = plan(
        &snapshot,
        &TaskRequest {
            strategies: spread.clone(),
            ..req(1024, 1024, 10)
        },
    );
    assert_eq!(
        p.placements,
        placed(&["a", "b", "c", "a", "b", "c", "a", "b", "c", "a"])
    );
    assert!(p.failures.is_empty());

    // Capacity is 4 per instance: 14 asked, 12 placed, every instance full.
    let p = plan(
        &snapshot,
        &TaskRequest {
            strategies: spread,
            ..req(1024, 1024, 14)
        },
    );
    assert_eq!(p.placements.len(), 12);
    assert_eq!(
        p.failures,
        vec![
            fail("a", Reason::ResourceCpu),
            fail("b", Reason::ResourceCpu),
            fail("c", Reason::ResourceCpu),
        ]
    );
}

#[test]
fn empty_or_inactive_cluster() {
    let none = Plan {
        placements: vec![],
        failures: vec![Failure {
            arn: None,
            reason: Reason::NoContainerInstances,
        }],
    };
    assert_eq!(plan(&cluster(vec![]), &req(1, 1, 1)), none);
    let mut draining = inst("a", 1024, 1024);
    draining.status = InstanceStatus::Draining;
    let mut inactive = inst("b", 1024, 1024);
    inactive.status = InstanceStatus::Inactive;
    assert_eq!(
        plan(&cluster(vec![draining, inactive]), &req(1, 1, 1)),
        none
    );
    assert_eq!(plan(&cluster(vec![]), &req(1, 1, 0)), Plan::default());
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

#[test]
fn binpack_memory_prefers_least_remaining_that_fits() {
    let snapshot = cluster(vec![
        inst("a", 8192, 4096),
        inst("b", 8192, 2048),
        inst("c", 8192, 1024),
        inst("d", 8192, 256), // too small
    ]);
    let p = plan(
        &snapshot,
        &TaskRequest {
            strategies: vec![Strategy::Binpack(BinpackField::Memory)],
            ..req(0, 512, 7)
        },
    );
    assert_eq!(p.placements, placed(&["c", "c", "b", "b", "b", "b", "a"]));
}

#[test]
fn binpack_cpu_counts_existing_reservations() {
    let snapshot = cluster(vec![
        inst("a", 2048, 8192),
        with_task(inst("b", 4096, 8192), task("other", 3072, 0)), // 1024 left
        inst("c", 1024, 8192),
    ]);
    let p = plan(
        &snapshot,
        &TaskRequest {
            strategies: vec![Strategy::Binpack(BinpackField::Cpu)],
            ..req(512, 0, 5)
        },
    );
    // b and c tie at 1024 left (ARN breaks it), then the emptied ones.
    assert_eq!(p.placements, placed(&["b", "b", "c", "c", "a"]));
}

#[test]
fn binpack_memory_then_spread_instance_id() {
    // a and b tie on memory; a already runs two tasks of the group.
    let snapshot = cluster(vec![
        with_task(
            with_task(inst("a", 8192, 2048), task(GROUP, 0, 0)),
            task(GROUP, 0, 0),
        ),
        inst("b", 8192, 2048),
        inst("c", 8192, 4096),
    ]);
    let binpack_only = TaskRequest {
        strategies: vec![Strategy::Binpack(BinpackField::Memory)],
        ..req(0, 512, 1)
    };
    assert_eq!(plan(&snapshot, &binpack_only).placements, placed(&["a"]));
    let chained = TaskRequest {
        strategies: vec![
            Strategy::Binpack(BinpackField::Memory),
            Strategy::Spread(SpreadField::InstanceId),
        ],
        count: 3,
        ..binpack_only
    };
    // The tie goes to b; after that b has less memory, so binpack keeps it.
    assert_eq!(
        plan(&snapshot, &chained).placements,
        placed(&["b", "b", "b"])
    );
}

#[test]
fn spread_by_availability_zone_evens_out() {
    let snapshot = cluster(vec![
        with_task(
            with_task(in_az(inst("a1", 8192, 8192), "az-1"), task(GROUP, 0, 0)),
            task(GROUP, 0, 0),
        ),
        in_az(inst("a2", 8192, 8192), "az-1"),
        // Other groups and stopping tasks do not count.
        with_task(
            with_task(in_az(inst("b1", 8192, 8192), "az-2"), task("other", 0, 0)),
            status(task(GROUP, 0, 0), "STOPPED", "RUNNING"),
        ),
        in_az(inst("c1", 8192, 8192), "az-3"),
    ]);
    let request = TaskRequest {
        strategies: vec![
            Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
            Strategy::Spread(SpreadField::InstanceId),
        ],
        ..req(128, 128, 7)
    };
    let p = plan(&snapshot, &request);
    assert_eq!(
        p.placements,
        placed(&["b1", "c1", "b1", "c1", "a2", "b1", "c1"])
    );
    // No strategies given: the default is the same AZ-then-instance spread.
    let default = TaskRequest {
        strategies: vec![],
        ..request
    };
    assert_eq!(plan(&snapshot, &default), p);
}

#[test]
fn spread_by_attribute_treats_missing_as_one_value() {
    let mut bare = InstanceSnapshot::new("z", 8192, 8192);
    bare.attributes.clear();
    let snapshot = cluster(vec![
        attr(inst("a", 8192, 8192), "rack", Some("r1")),
        attr(inst("b", 8192, 8192), "rack", Some("r2")),
        bare,
        inst("y", 8192, 8192), // no rack either: same bucket as z
    ]);
    let request = TaskRequest {
        strategies: vec![Strategy::Spread(SpreadField::Attribute("rack".into()))],
        ..req(1, 1, 6)
    };
    assert_eq!(
        plan(&snapshot, &request).placements,
        placed(&["a", "b", "y", "a", "b", "y"])
    );
}

#[test]
fn random_is_deterministic_per_seed() {
    let snapshot = cluster((0..8).map(|i| inst(&format!("i{i}"), 8192, 8192)).collect());
    let request = |seed| TaskRequest {
        strategies: vec![Strategy::Random],
        seed,
        ..req(1, 1, 8)
    };
    let runs: Vec<Vec<String>> = (0..5)
        .map(|s| plan(&snapshot, &request(s)).placements)
        .collect();
    for (seed, r) in runs.iter().enumerate() {
        assert_eq!(&plan(&snapshot, &request(seed as u64)).placements, r);
        assert_eq!(r.len(), 8);
    }
    assert!(
        runs.windows(2).any(|w| w[0] != w[1]),
        "seeds should differ: {runs:?}"
    );
    // Seed 0's sequence is pinned: a change to the PRNG is a visible change.
    assert_eq!(
        runs[0],
        placed(&["i2", "i0", "i2", "i7", "i1", "i2", "i5", "i0"])
    );

    // Random only picks among instances that fit.
    let mut small = snapshot.clone();
    for i in small.instances.iter_mut().skip(1) {
        i.registered.memory = 0;
    }
    for seed in 0..20 {
        assert_eq!(plan(&small, &request(seed)).placements[0], "i0");
    }

    // Random as a tie-breaker after binpack.
    let chained = |seed| TaskRequest {
        strategies: vec![Strategy::Binpack(BinpackField::Memory), Strategy::Random],
        seed,
        ..req(0, 1, 1)
    };
    let firsts: BTreeSet<String> = (0..40)
        .map(|s| plan(&snapshot, &chained(s)).placements[0].clone())
        .collect();
    assert!(
        firsts.len() > 1,
        "random should break binpack ties: {firsts:?}"
    );
}

#[test]
fn strategies_from_wire_shapes() {
    let ok: &[(&str, Option<&str>, Strategy)] = &[
        ("random", None, Strategy::Random),
        ("random", Some("ignored"), Strategy::Random),
        ("binpack", Some("cpu"), Strategy::Binpack(BinpackField::Cpu)),
        (
            "binpack",
            Some("MEMORY"),
            Strategy::Binpack(BinpackField::Memory),
        ),
        (
            "spread",
            Some("instanceId"),
            Strategy::Spread(SpreadField::InstanceId),
        ),
        (
            "spread",
            Some("host"),
            Strategy::Spread(SpreadField::InstanceId),
        ),
        (
            "spread",
            Some("attribute:ecs.availability-zone"),
            Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        ),
    ];
    for (kind, field, want) in ok {
        assert_eq!(
            Strategy::parse(kind, *field).as_ref(),
            Ok(want),
            "{kind} {field:?}"
        );
    }
    let bad: &[(&str, Option<&str>, &str)] = &[
        ("binpack", None, "the binpack placement strategy needs a field: cpu or memory"),
        (
            "binpack",
            Some("disk"),
            "invalid field 'disk' for the binpack placement strategy: valid values are cpu and memory",
        ),
        (
            "spread",
            None,
            "the spread placement strategy needs a field: instanceId, host or attribute:<name>",
        ),
        (
            "spread",
            Some("attribute:"),
            "invalid field 'attribute:' for the spread placement strategy: valid values are instanceId, host or attribute:<name>",
        ),
        (
            "pack",
            None,
            "invalid placement strategy type 'pack': valid values are random, spread and binpack",
        ),
    ];
    for (kind, field, msg) in bad {
        assert_eq!(Strategy::parse(kind, *field).unwrap_err().to_string(), *msg);
    }
}

// ---------------------------------------------------------------------------
// Constraints
// ---------------------------------------------------------------------------

#[test]
fn distinct_instance_counts_plan_and_existing_group_tasks() {
    let snapshot = cluster(vec![
        with_task(inst("a", 8192, 8192), task(GROUP, 0, 0)),
        // Other groups and stopped tasks of the group do not block.
        with_task(
            with_task(inst("b", 8192, 8192), task("other", 0, 0)),
            status(task(GROUP, 0, 0), "STOPPED", "STOPPED"),
        ),
        inst("c", 8192, 8192),
    ]);
    let request = TaskRequest {
        constraints: vec![Constraint::DistinctInstance],
        ..req(1, 1, 3)
    };
    assert_eq!(
        plan(&snapshot, &request),
        Plan {
            placements: placed(&["b", "c"]),
            failures: vec![
                fail("a", Reason::DistinctInstance),
                fail("b", Reason::DistinctInstance),
                fail("c", Reason::DistinctInstance),
            ],
        }
    );
}

#[test]
fn member_of_filters_instances() {
    let snapshot = cluster(vec![
        attr(inst("a", 1024, 1024), "ecs.instance-type", Some("m5.large")),
        attr(inst("b", 1024, 1024), "ecs.instance-type", Some("t2.micro")),
        attr(inst("c", 1024, 1024), "ecs.instance-type", Some("t2.small")),
    ]);
    let request = TaskRequest {
        constraints: vec![Constraint::MemberOf(
            parse_expression("attribute:ecs.instance-type =~ t2.*").unwrap(),
        )],
        strategies: vec![Strategy::Spread(SpreadField::InstanceId)],
        ..req(512, 512, 5)
    };
    assert_eq!(
        plan(&snapshot, &request),
        Plan {
            placements: placed(&["b", "c", "b", "c"]),
            failures: vec![
                fail("a", Reason::MemberOf),
                fail("b", Reason::ResourceCpu),
                fail("c", Reason::ResourceCpu),
            ],
        }
    );
}

#[test]
fn member_of_sees_tasks_placed_earlier_in_the_plan() {
    let snapshot = cluster(vec![inst("a", 8192, 8192), inst("b", 8192, 8192)]);
    let empty_only = TaskRequest {
        constraints: vec![Constraint::MemberOf(
            parse_expression("runningTasksCount == 0").unwrap(),
        )],
        strategies: vec![Strategy::Binpack(BinpackField::Memory)],
        ..req(1, 1, 3)
    };
    assert_eq!(
        plan(&snapshot, &empty_only),
        Plan {
            placements: placed(&["a", "b"]),
            failures: vec![fail("a", Reason::MemberOf), fail("b", Reason::MemberOf)],
        }
    );
    // Anti-affinity with the request's own group behaves like distinctInstance.
    let anti = TaskRequest {
        constraints: vec![Constraint::MemberOf(
            parse_expression(&format!("not(task:group == {GROUP})")).unwrap(),
        )],
        ..empty_only
    };
    assert_eq!(plan(&snapshot, &anti).placements, placed(&["a", "b"]));
}

#[test]
fn reason_order_resources_then_constraints_in_request_order() {
    let snapshot = cluster(vec![with_task(inst("a", 1024, 1024), task(GROUP, 0, 0))]);
    let member = Constraint::MemberOf(parse_expression("attribute:color == blue").unwrap());
    let first = |constraints: Vec<Constraint>, cpu| {
        plan(
            &snapshot,
            &TaskRequest {
                constraints,
                ..req(cpu, 1, 1)
            },
        )
        .failures[0]
            .reason
    };
    assert_eq!(
        first(vec![Constraint::DistinctInstance, member.clone()], 1),
        Reason::DistinctInstance
    );
    assert_eq!(
        first(vec![member.clone(), Constraint::DistinctInstance], 1),
        Reason::MemberOf
    );
    assert_eq!(
        first(vec![member, Constraint::DistinctInstance], 4096),
        Reason::ResourceCpu
    );
}

#[test]
fn constraints_from_wire_shapes() {
    assert_eq!(
        Constraint::parse("distinctInstance", None),
        Ok(Constraint::DistinctInstance)
    );
    assert_eq!(
        Constraint::parse("memberOf", Some("attribute:a exists")),
        Ok(Constraint::MemberOf(
            parse_expression("attribute:a exists").unwrap()
        ))
    );
    let bad: &[(&str, Option<&str>, &str)] = &[
        (
            "distinctInstance",
            Some("attribute:a exists"),
            "an expression cannot be specified for the distinctInstance placement constraint",
        ),
        ("memberOf", None, "the memberOf placement constraint needs an expression"),
        ("memberOf", Some("  "), "the memberOf placement constraint needs an expression"),
        (
            "memberOf",
            Some("attribute:a =="),
            "invalid memberOf expression: position 14: expected a value after operator '==', found end of input",
        ),
        (
            "sameZone",
            None,
            "invalid placement constraint type 'sameZone': valid values are distinctInstance and memberOf",
        ),
    ];
    for (kind, expr, msg) in bad {
        assert_eq!(
            Constraint::parse(kind, *expr).unwrap_err().to_string(),
            *msg
        );
    }
}

// ---------------------------------------------------------------------------
// Commit-time verification
// ---------------------------------------------------------------------------

#[test]
fn verify_plan_detects_conflicts() {
    let snapshot = cluster(vec![inst("a", 2048, 2048), inst("b", 2048, 2048)]);
    let request = TaskRequest {
        strategies: vec![Strategy::Spread(SpreadField::InstanceId)],
        ..req(1024, 1024, 3)
    };
    let p = plan(&snapshot, &request);
    assert_eq!(p.placements, placed(&["a", "b", "a"]));
    assert_eq!(verify_plan(&snapshot, &request, &p.placements), Ok(()));

    // Another planner committed a task on a in the meantime.
    let mut raced = snapshot.clone();
    raced.instances[0]
        .running_tasks
        .push(task("other", 0, 1024));
    assert_eq!(
        verify_plan(&raced, &request, &p.placements),
        Err(Conflict {
            index: 2,
            instance_arn: "a".into(),
            reason: ConflictReason::Refused(Reason::ResourceMemory),
        })
    );

    let mut drained = snapshot.clone();
    drained.instances[1].status = InstanceStatus::Draining;
    assert_eq!(
        verify_plan(&drained, &request, &p.placements)
            .unwrap_err()
            .reason,
        ConflictReason::NotActive(InstanceStatus::Draining)
    );
    let gone = cluster(vec![inst("a", 2048, 2048)]);
    assert_eq!(
        verify_plan(&gone, &request, &p.placements),
        Err(Conflict {
            index: 1,
            instance_arn: "b".into(),
            reason: ConflictReason::Refused(Reason::Missing),
        })
    );
    let mut disconnected = snapshot.clone();
    disconnected.instances[0].agent_connected = false;
    assert_eq!(
        verify_plan(&disconnected, &request, &p.placements)
            .unwrap_err()
            .reason,
        ConflictReason::Refused(Reason::Agent)
    );
}

// ---------------------------------------------------------------------------
// Property test: random clusters never over-commit
// ---------------------------------------------------------------------------

fn random_snapshot(rng: &mut StdRng) -> ClusterSnapshot {
    let n = rng.random_range(0..7);
    let instances = (0..n)
        .map(|i| {
            let mut inst = inst(
                &format!("ci-{i}"),
                rng.random_range(0..5) * 1024,
                rng.random_range(0..9) * 512,
            );
            inst.status = if rng.random_bool(0.85) {
                InstanceStatus::Active
            } else {
                InstanceStatus::Draining
            };
            inst.agent_connected = rng.random_bool(0.9);
            let az = ["az-1", "az-2", "az-3"][rng.random_range(0..3)];
            inst = in_az(inst, az);
            if rng.random_bool(0.8) {
                inst = attr(inst, "ecs.capability.task-eni", None);
            }
            inst.registered.ports_tcp = ports(&[22]);
            for _ in 0..rng.random_range(0..4) {
                let group = ["family:web", "service:api", "family:batch"][rng.random_range(0..3)];
                let mut t = task(
                    group,
                    rng.random_range(0..3) * 256,
                    rng.random_range(0..3) * 256,
                );
                if rng.random_bool(0.3) {
                    t.ports_tcp = ports(&[[80, 443, 8080][rng.random_range(0..3)]]);
                }
                if rng.random_bool(0.2) {
                    t.ports_udp = ports(&[53]);
                }
                let (d, l) = [
                    ("RUNNING", "RUNNING"),
                    ("RUNNING", "PENDING"),
                    ("STOPPED", "RUNNING"),
                    ("STOPPED", "STOPPED"),
                ][rng.random_range(0..4)];
                inst.running_tasks.push(status(t, d, l));
            }
            inst
        })
        .collect();
    cluster(instances)
}

fn random_request(rng: &mut StdRng) -> TaskRequest {
    let all_strategies = [
        Strategy::Random,
        Strategy::Binpack(BinpackField::Cpu),
        Strategy::Binpack(BinpackField::Memory),
        Strategy::Spread(SpreadField::InstanceId),
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
    ];
    let strategies = (0..rng.random_range(0..3))
        .map(|_| all_strategies[rng.random_range(0..all_strategies.len())].clone())
        .collect();
    let mut constraints = Vec::new();
    if rng.random_bool(0.3) {
        constraints.push(Constraint::DistinctInstance);
    }
    if rng.random_bool(0.3) {
        let e = [
            "attribute:ecs.availability-zone != az-3",
            "runningTasksCount < 4",
            "not(task:group == service:api)",
        ][rng.random_range(0..3)];
        constraints.push(Constraint::MemberOf(parse_expression(e).unwrap()));
    }
    TaskRequest {
        cpu: rng.random_range(0..3) * 256,
        memory: rng.random_range(0..3) * 256,
        ports_tcp: if rng.random_bool(0.3) {
            ports(&[80])
        } else {
            BTreeSet::new()
        },
        ports_udp: if rng.random_bool(0.2) {
            ports(&[53])
        } else {
            BTreeSet::new()
        },
        group: ["family:web", "service:api"][rng.random_range(0..2)].into(),
        required_attributes: if rng.random_bool(0.3) {
            vec!["ecs.capability.task-eni".into()]
        } else {
            vec![]
        },
        count: rng.random_range(0..11),
        strategies,
        constraints,
        seed: rng.random(),
    }
}

#[test]
fn plans_never_exceed_remaining_resources() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for round in 0..3000 {
        let snapshot = random_snapshot(&mut rng);
        let request = random_request(&mut rng);
        let p = plan(&snapshot, &request);
        let ctx = format!("round {round}: {request:?}\n{snapshot:#?}\n{p:?}");

        assert_eq!(plan(&snapshot, &request), p, "deterministic; {ctx}");
        assert!(p.placements.len() <= request.count as usize, "{ctx}");

        // Per-instance totals stay within what was remaining.
        let mut per_instance: BTreeMap<&str, i64> = BTreeMap::new();
        for arn in &p.placements {
            *per_instance.entry(arn).or_default() += 1;
        }
        for (arn, n) in &per_instance {
            let inst = snapshot.instance(arn).expect("placed on a known instance");
            assert_eq!(inst.status, InstanceStatus::Active, "{ctx}");
            assert!(inst.agent_connected, "{ctx}");
            let rem = inst.remaining();
            if request.cpu > 0 {
                assert!(
                    n * request.cpu <= rem.cpu,
                    "cpu over-committed on {arn}; {ctx}"
                );
            }
            if request.memory > 0 {
                assert!(
                    n * request.memory <= rem.memory,
                    "memory over-committed on {arn}; {ctx}"
                );
            }
            if !request.ports_tcp.is_empty() {
                assert_eq!(*n, 1, "{ctx}");
                assert!(request.ports_tcp.is_disjoint(&rem.ports_tcp), "{ctx}");
            }
            if !request.ports_udp.is_empty() {
                assert_eq!(*n, 1, "{ctx}");
                assert!(request.ports_udp.is_disjoint(&rem.ports_udp), "{ctx}");
            }
            if request.constraints.contains(&Constraint::DistinctInstance) {
                assert_eq!(*n, 1, "{ctx}");
            }
        }

        // Every binding rule holds when re-checked from scratch.
        assert_eq!(
            verify_plan(&snapshot, &request, &p.placements),
            Ok(()),
            "{ctx}"
        );

        let active: Vec<&InstanceSnapshot> = snapshot
            .instances
            .iter()
            .filter(|i| i.status == InstanceStatus::Active)
            .collect();
        if p.placements.len() == request.count as usize {
            assert!(p.failures.is_empty(), "{ctx}");
        } else if active.is_empty() {
            assert_eq!(p.failures.len(), 1, "{ctx}");
            assert_eq!(p.failures[0].reason, Reason::NoContainerInstances, "{ctx}");
        } else {
            // One failure per ACTIVE instance, in order, and each reason is
            // exactly why one more task would not fit there.
            assert_eq!(p.failures.len(), active.len(), "{ctx}");
            for (f, inst) in p.failures.iter().zip(&active) {
                assert_eq!(f.arn.as_deref(), Some(inst.arn.as_str()), "{ctx}");
                let mut extended = p.placements.clone();
                extended.push(inst.arn.clone());
                let conflict = verify_plan(&snapshot, &request, &extended).unwrap_err();
                assert_eq!(conflict.index, p.placements.len(), "{ctx}");
                assert_eq!(conflict.reason, ConflictReason::Refused(f.reason), "{ctx}");
            }
        }
    }
}

#[test]
fn name_value_requirements_compare_the_value() {
    let arm = attr(
        inst("arm", 4096, 4096),
        "ecs.cpu-architecture",
        Some("arm64"),
    );
    let x86 = attr(
        inst("x86", 4096, 4096),
        "ecs.cpu-architecture",
        Some("x86_64"),
    );
    let bare = inst("bare", 4096, 4096);
    let snapshot = cluster(vec![arm, x86, bare]);
    let request = TaskRequest {
        required_attributes: vec!["ecs.cpu-architecture=x86_64".into()],
        // A whole host's CPU each: one fits, the second reports every host.
        ..req(4096, 128, 2)
    };
    let p = plan(&snapshot, &request);
    assert_eq!(p.placements, placed(&["x86"]));
    assert_eq!(
        p.failures,
        vec![
            fail("arm", Reason::Attribute),
            fail("x86", Reason::ResourceCpu),
            fail("bare", Reason::Attribute),
        ]
    );
    // A bare name is met by any value.
    let request = TaskRequest {
        required_attributes: vec!["ecs.cpu-architecture".into()],
        ..req(4096, 128, 2)
    };
    let mut got = plan(&snapshot, &request).placements;
    got.sort();
    assert_eq!(got, placed(&["arm", "x86"]));
}

#[test]
fn reasons_keep_their_wire_text() {
    let wire = [
        "AGENT",
        "ATTRIBUTE",
        "RESOURCE:CPU",
        "RESOURCE:MEMORY",
        "RESOURCE:PORTS",
        "RESOURCE:PORTS_UDP",
        "MemberOf placement constraint unsatisfied.",
        "DistinctInstance placement constraint unsatisfied.",
        "No Container Instances were found in your cluster.",
        "MISSING",
    ];
    let texts: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(texts, wire);
    for r in Reason::ALL {
        assert_eq!(Reason::parse(r.as_str()), Some(r));
        assert_eq!(r.to_string(), r.as_str());
    }
    assert_eq!(Reason::parse("DRAINING"), None);
    assert_eq!(
        ConflictReason::NotActive(InstanceStatus::Draining).as_str(),
        "DRAINING"
    );
    assert_eq!(ConflictReason::Refused(Reason::Missing).as_str(), "MISSING");
}
