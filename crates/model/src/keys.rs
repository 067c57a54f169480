//! The store's key layout. Every ECS resource key begins with the tenancy
//! (`/ecs/ACCOUNT/REGION/`), so one account's range scans can never reach
//! another's rows, whatever the handler does.
//!
//! Task-definition revisions sort by family and then by revision: the family
//! is followed by `!`, which sorts below every character a family may
//! contain, and the revision is zero-padded. ListTaskDefinitions can then
//! page in key order and still return ECS's order.

use crate::arn::Scope;

pub fn tenancy(scope: &Scope) -> String {
    format!("/ecs/{}/{}/", scope.account, scope.region)
}

pub fn clusters_prefix(scope: &Scope) -> String {
    format!("{}cluster/", tenancy(scope))
}

pub fn cluster(scope: &Scope, name: &str) -> String {
    format!("{}{}", clusters_prefix(scope), name)
}

pub fn task_definitions_prefix(scope: &Scope) -> String {
    format!("{}taskdef/", tenancy(scope))
}

pub fn task_definition_family_prefix(scope: &Scope, family: &str) -> String {
    format!("{}{}!", task_definitions_prefix(scope), family)
}

pub fn task_definition(scope: &Scope, family: &str, revision: i32) -> String {
    format!(
        "{}{:010}",
        task_definition_family_prefix(scope, family),
        revision
    )
}

pub fn families_prefix(scope: &Scope) -> String {
    format!("{}family/", tenancy(scope))
}

pub fn family(scope: &Scope, family: &str) -> String {
    format!("{}{}", families_prefix(scope), family)
}

pub fn account_settings_prefix(scope: &Scope) -> String {
    format!("{}setting/", tenancy(scope))
}

/// Settings are keyed by principal then name; the account default uses the
/// principal `default`, which no IAM ARN can collide with.
pub fn account_setting(scope: &Scope, principal: &str, name: &str) -> String {
    format!("{}{}/{}", account_settings_prefix(scope), principal, name)
}

/// Per-cluster children (later issues fill these): container instances,
/// tasks and services. Cluster statistics and deletion checks count them.
pub fn cluster_children_prefix(scope: &Scope, cluster: &str, kind: &str) -> String {
    format!("{}{}/{}/", tenancy(scope), kind, cluster)
}

pub fn task(scope: &Scope, cluster: &str, id: &str) -> String {
    format!("{}{id}", cluster_children_prefix(scope, cluster, KIND_TASK))
}

pub fn instance(scope: &Scope, cluster: &str, id: &str) -> String {
    format!(
        "{}{id}",
        cluster_children_prefix(scope, cluster, KIND_INSTANCE)
    )
}

/// RunTask idempotency: the tasks a clientToken produced.
pub fn client_token(scope: &Scope, cluster: &str, token: &str) -> String {
    format!(
        "{}{token}",
        cluster_children_prefix(scope, cluster, "token")
    )
}

/// The live-task index: one key per task of a cluster whose `lastStatus` is
/// not yet STOPPED, `/ecs/ACCOUNT/REGION/livetask/CLUSTER/TASK_ID`, value the
/// task ARN. Written in the transaction that creates the task record and
/// deleted in the transaction that records STOPPED, so readers that only care
/// about live tasks (placement, cluster counts, agent polls) read the index
/// and then the records instead of scanning every stopped task ever kept.
/// Kept outside the `task/` prefix so task watches never see index writes.
pub fn live_tasks_prefix(scope: &Scope, cluster: &str) -> String {
    cluster_children_prefix(scope, cluster, KIND_LIVE_TASK)
}

pub fn live_task(scope: &Scope, cluster: &str, id: &str) -> String {
    format!("{}{id}", live_tasks_prefix(scope, cluster))
}

/// Present once the live-task index covers every task record: a data
/// directory written before the index existed is indexed once at start.
pub fn live_task_index_marker() -> &'static str {
    "/meta/index/livetask/v1"
}

pub const KIND_INSTANCE: &str = "instance";
pub const KIND_TASK: &str = "task";
pub const KIND_LIVE_TASK: &str = "livetask";
pub const KIND_SERVICE: &str = "service";

/// Access keys are global: the key decides the account.
pub fn access_keys_prefix() -> &'static str {
    "/iam/key/"
}

pub fn access_key(access_key_id: &str) -> String {
    format!("{}{}", access_keys_prefix(), access_key_id)
}

/// The last segment of a key, i.e. the resource name below a prefix.
pub fn suffix<'a>(key: &'a str, prefix: &str) -> &'a str {
    key.strip_prefix(prefix).unwrap_or(key)
}

// ---- CloudWatch Logs ------------------------------------------------------
//
// Every Logs key begins with `/logs/ACCOUNT/REGION/`. Group names cannot
// contain `:` and stream names cannot contain `:` either, so `GROUP:` and
// `GROUP:STREAM:` are unambiguous prefixes. An event's key ends with its
// position: the timestamp (ms, 19 digits) then the stream's ingest sequence
// (12 digits), so a range scan reads a stream in time order.

pub fn logs_tenancy(scope: &Scope) -> String {
    format!("/logs/{}/{}/", scope.account, scope.region)
}

pub fn log_groups_prefix(scope: &Scope) -> String {
    format!("{}group/", logs_tenancy(scope))
}

pub fn log_group(scope: &Scope, group: &str) -> String {
    format!("{}{group}", log_groups_prefix(scope))
}

pub fn log_streams_prefix(scope: &Scope, group: &str) -> String {
    format!("{}stream/{group}:", logs_tenancy(scope))
}

pub fn log_stream(scope: &Scope, group: &str, stream: &str) -> String {
    format!("{}{stream}", log_streams_prefix(scope, group))
}

/// All events of a group (every stream).
pub fn log_group_events_prefix(scope: &Scope, group: &str) -> String {
    format!("{}event/{group}:", logs_tenancy(scope))
}

pub fn log_events_prefix(scope: &Scope, group: &str, stream: &str) -> String {
    format!("{}{stream}:", log_group_events_prefix(scope, group))
}

/// An event's position inside its stream: timestamp, then ingest sequence.
pub fn log_event_position(timestamp: i64, seq: u64) -> String {
    format!("{:019}{:012}", timestamp.max(0), seq)
}

/// The timestamp part of a position (`None` if it is not one).
pub fn log_event_position_timestamp(position: &str) -> Option<i64> {
    if position.len() != 31 || !position.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    position[..19].parse().ok()
}

/// Both parts of a position (`None` if it is not one).
pub fn parse_log_event_position(position: &str) -> Option<(i64, u64)> {
    let timestamp = log_event_position_timestamp(position)?;
    Some((timestamp, position[19..].parse().ok()?))
}

/// Written once the events of an older data directory (stored under
/// `event/` keys) have been moved to the log store.
pub fn logs_moved_marker() -> &'static str {
    "/meta/index/logstore/v1"
}

pub fn log_event(scope: &Scope, group: &str, stream: &str, timestamp: i64, seq: u64) -> String {
    format!(
        "{}{}",
        log_events_prefix(scope, group, stream),
        log_event_position(timestamp, seq)
    )
}

/// Groups with a retention policy, across all tenants: what the sweeper reads.
pub fn log_retention_index_prefix() -> &'static str {
    "/logsidx/retention/"
}

pub fn log_retention_index(scope: &Scope, group: &str) -> String {
    format!(
        "{}{}/{}/{group}",
        log_retention_index_prefix(),
        scope.account,
        scope.region
    )
}

// ---- Services ---------------------------------------------------------------

pub fn service(scope: &Scope, cluster: &str, name: &str) -> String {
    format!(
        "{}{name}",
        cluster_children_prefix(scope, cluster, KIND_SERVICE)
    )
}

/// Task scale-in protection, one key per protected task.
pub fn task_protection(scope: &Scope, cluster: &str, task_id: &str) -> String {
    format!(
        "{}{task_id}",
        cluster_children_prefix(scope, cluster, KIND_PROTECTION)
    )
}

pub const KIND_PROTECTION: &str = "protection";

/// Every service the controller must visit (ACTIVE or DRAINING), across
/// tenants: `/ctl/service/ACCOUNT/REGION/CLUSTER/NAME`. Written in the same
/// transaction as the service record; removed when the service is INACTIVE.
pub fn controller_services_prefix() -> &'static str {
    "/ctl/service/"
}

pub fn controller_service(scope: &Scope, cluster: &str, name: &str) -> String {
    format!(
        "{}{}/{}/{cluster}/{name}",
        controller_services_prefix(),
        scope.account,
        scope.region
    )
}

/// The stopped-task index, across tenants, in stop order:
/// `/ctl/stoppedtask/STOPPED_AT_MS/ACCOUNT/REGION/CLUSTER/TASK_ID` (the time
/// zero-padded to 19 digits, so key order is time order), value the task ARN.
/// Written in the transaction that records a task STOPPED and deleted with
/// the record, so the GC reads only the head (what is past retention) and
/// the service controller only the recent window, never the whole history.
pub fn stopped_tasks_prefix() -> &'static str {
    "/ctl/stoppedtask/"
}

pub fn stopped_task(scope: &Scope, cluster: &str, stopped_at_ms: i64, id: &str) -> String {
    format!(
        "{}{}{}/{}/{cluster}/{id}",
        stopped_tasks_prefix(),
        stopped_task_time(stopped_at_ms),
        scope.account,
        scope.region
    )
}

/// The time part of a stopped-task key; every key stopped at or after
/// `ms` sorts after `stopped_task_time(ms)`, every earlier one before it.
pub fn stopped_task_time(ms: i64) -> String {
    format!("{:019}/", ms.max(0))
}

/// A parsed stopped-task index key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedTaskKey {
    pub stopped_at_ms: i64,
    pub scope: Scope,
    pub cluster: String,
    pub id: String,
}

pub fn parse_stopped_task(key: &str) -> Option<StoppedTaskKey> {
    let rest = key.strip_prefix(stopped_tasks_prefix())?;
    let mut parts = rest.splitn(5, '/');
    let ms = parts.next()?;
    if ms.len() != 19 || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let account = parts.next()?;
    let region = parts.next()?;
    let cluster = parts.next()?;
    let id = parts.next()?;
    Some(StoppedTaskKey {
        stopped_at_ms: ms.parse().ok()?,
        scope: Scope::new(account, region),
        cluster: cluster.to_string(),
        id: id.to_string(),
    })
}

/// Present once the stopped-task index covers every STOPPED task record.
pub fn stopped_task_index_marker() -> &'static str {
    "/meta/index/stoppedtask/v1"
}

/// Splits a `controller_service` key back into (scope, cluster, name).
pub fn parse_controller_service(key: &str) -> Option<(Scope, String, String)> {
    let rest = key.strip_prefix(controller_services_prefix())?;
    let mut parts = rest.splitn(4, '/');
    let account = parts.next()?;
    let region = parts.next()?;
    let cluster = parts.next()?;
    let name = parts.next()?;
    Some((
        Scope::new(account, region),
        cluster.to_string(),
        name.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_sort_by_family_then_number() {
        let s = Scope::new("1", "r");
        let mut keys = vec![
            task_definition(&s, "web-api", 1),
            task_definition(&s, "web", 10),
            task_definition(&s, "web", 9),
            task_definition(&s, "web_x", 1),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                task_definition(&s, "web", 9),
                task_definition(&s, "web", 10),
                task_definition(&s, "web-api", 1),
                task_definition(&s, "web_x", 1),
            ]
        );
    }

    #[test]
    fn stopped_tasks_sort_by_time_and_parse_back() {
        let s = Scope::new("123456789012", "us-east-1");
        let mut keys = [
            stopped_task(&s, "c", 10_000, "b"),
            stopped_task(&s, "a", 9_999, "z"),
            stopped_task(&s, "c", 10_000, "a"),
        ];
        keys.sort();
        assert_eq!(parse_stopped_task(&keys[0]).unwrap().stopped_at_ms, 9_999);
        assert_eq!(
            parse_stopped_task(&keys[2]),
            Some(StoppedTaskKey {
                stopped_at_ms: 10_000,
                scope: s.clone(),
                cluster: "c".into(),
                id: "b".into(),
            })
        );
        // The time cursor splits the index exactly at a millisecond.
        let cut = format!("{}{}", stopped_tasks_prefix(), stopped_task_time(10_000));
        assert!(keys[0] < cut && cut < keys[1]);
        assert_eq!(parse_stopped_task("/ctl/stoppedtask/12/a/r/c/t"), None);
    }

    #[test]
    fn tenancy_separates_accounts_and_regions() {
        let a = Scope::new("111111111111", "us-east-1");
        let b = Scope::new("111111111111", "eu-west-1");
        assert!(!cluster(&a, "x").starts_with(&clusters_prefix(&b)));
    }

    #[test]
    fn log_events_sort_by_time_then_sequence() {
        let s = Scope::new("1", "r");
        let mut keys = vec![
            log_event(&s, "g", "s", 10_000, 1),
            log_event(&s, "g", "s", 9_999, 7),
            log_event(&s, "g", "s", 10_000, 0),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                log_event(&s, "g", "s", 9_999, 7),
                log_event(&s, "g", "s", 10_000, 0),
                log_event(&s, "g", "s", 10_000, 1),
            ]
        );
        let pos = log_event_position(1_700_000_000_123, 5);
        assert_eq!(log_event_position_timestamp(&pos), Some(1_700_000_000_123));
        assert_eq!(parse_log_event_position(&pos), Some((1_700_000_000_123, 5)));
        assert_eq!(parse_log_event_position("12"), None);
        assert!(!log_event(&s, "g", "s", 1, 1).starts_with(&log_events_prefix(&s, "g", "s2")));
        assert!(!log_events_prefix(&s, "g", "s").starts_with(&log_group_events_prefix(&s, "g2")));
    }
}
