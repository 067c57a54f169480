//! Log streams: CreateLogStream, DeleteLogStream, DescribeLogStreams.

use super::records::{blocking, load_group, load_stream, GroupRecord, StreamRecord};
use super::{already_exists, check_stream_name, group_not_found, stream_not_found, Empty};
use crate::db::{self, commit, contention, put, unchanged, MAX_CAS_RETRIES};
use crate::error::ApiResult;
use crate::state::Cx;
use stevedore_api::logs::{
    CreateLogStreamRequest, DeleteLogStreamRequest, DescribeLogStreamsRequest,
    DescribeLogStreamsResponse, LogStream, OrderBy,
};
use stevedore_logstore::StreamStats;
use stevedore_model::arn::Scope;
use stevedore_model::keys;
use stevedore_store::{Compare, Op};

pub async fn create_log_stream(cx: Cx, req: CreateLogStreamRequest) -> ApiResult<Empty> {
    let group = req.log_group_name.unwrap_or_default();
    let stream = req.log_stream_name.unwrap_or_default();
    check_stream_name(&stream)?;
    let scope = cx.scope();
    for _ in 0..MAX_CAS_RETRIES {
        let Some(g) = load_group(cx.store(), scope, &group)? else {
            return Err(group_not_found());
        };
        let key = keys::log_stream(scope, &group, &stream);
        if cx.store().get(&key)?.is_some() {
            return Err(already_exists("The specified log stream already exists"));
        }
        let record = StreamRecord {
            name: stream.clone(),
            creation_time: cx.now.as_millis(),
            log_id: Some(uuid::Uuid::new_v4().simple().to_string()),
        };
        let compares = vec![
            unchanged(keys::log_group(scope, &group), g.mod_revision),
            Compare::absent(key.clone()),
        ];
        if commit(cx.store(), compares, vec![put(key, &record)]).await? {
            return Ok(Empty {});
        }
    }
    Err(contention())
}

pub async fn delete_log_stream(cx: Cx, req: DeleteLogStreamRequest) -> ApiResult<Empty> {
    let group = req.log_group_name.unwrap_or_default();
    let stream = req.log_stream_name.unwrap_or_default();
    let scope = cx.scope();
    for _ in 0..MAX_CAS_RETRIES {
        if load_group(cx.store(), scope, &group)?.is_none() {
            return Err(group_not_found());
        }
        let Some(s) = load_stream(cx.store(), scope, &group, &stream)? else {
            return Err(stream_not_found());
        };
        let key = keys::log_stream(scope, &group, &stream);
        let ops = vec![Op::Delete { key: key.clone() }];
        if commit(cx.store(), vec![unchanged(key, s.mod_revision)], ops).await? {
            // The record goes first: once it is gone no read finds the
            // events, and events a crash leaves behind are the sweeper's.
            let name = s.value.log_name(scope, &group);
            blocking(&cx.state.logs, move |logs| logs.delete_stream(&name)).await?;
            return Ok(Empty {});
        }
    }
    Err(contention())
}

pub fn stream_arn(scope: &Scope, group: &GroupRecord, stream: &str) -> String {
    format!("{}:log-stream:{stream}", group.arn(scope))
}

pub async fn describe_log_streams(
    cx: Cx,
    req: DescribeLogStreamsRequest,
) -> ApiResult<DescribeLogStreamsResponse> {
    let group_name = super::group_name(&cx, req.log_group_name, req.log_group_identifier)?;
    let scope = cx.scope().clone();
    let Some(group) = load_group(cx.store(), &scope, &group_name)? else {
        return Err(group_not_found());
    };
    let group = group.value;
    let limit = db::max_results(req.limit, 50, 50)?;
    let descending = req.descending.unwrap_or(false);
    let by_time = match req.order_by {
        None | Some(OrderBy::LogStreamName) => false,
        Some(OrderBy::LastEventTime) => true,
        Some(OrderBy::Unknown(v)) => {
            return Err(super::invalid(format!("Invalid orderBy value {v}.")))
        }
    };
    if by_time && req.log_stream_name_prefix.is_some() {
        return Err(super::invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let streams_prefix = keys::log_streams_prefix(&scope, &group_name);
    let with_stats = |s: StreamRecord| -> ApiResult<(StreamRecord, StreamStats)> {
        let stats = cx.logs().stats(&s.log_name(&scope, &group_name))?;
        Ok((s, stats))
    };
    let (records, next_token): (Vec<(StreamRecord, StreamStats)>, Option<String>) = if by_time {
        // Ordered by (lastEventTimestamp, name); the token is that sort key
        // of the last stream returned, never an offset.
        let sort_key = |s: &StreamRecord, st: &StreamStats| {
            format!("{:020}/{}", st.last_event_timestamp.unwrap_or(0), s.name)
        };
        let mut all: Vec<(String, (StreamRecord, StreamStats))> =
            db::all_versioned::<StreamRecord>(cx.store(), &streams_prefix)?
                .into_iter()
                .map(|v| {
                    let (s, st) = with_stats(v.value)?;
                    Ok((sort_key(&s, &st), (s, st)))
                })
                .collect::<ApiResult<_>>()?;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        if descending {
            all.reverse();
        }
        if let Some(t) = req.next_token.as_deref() {
            let after = db::decode_token(t)?;
            all.retain(|(k, _)| if descending { *k < after } else { *k > after });
        }
        let more = all.len() > limit;
        all.truncate(limit);
        let token = if more {
            all.last().map(|(k, _)| db::encode_token(k))
        } else {
            None
        };
        (all.into_iter().map(|(_, s)| s).collect(), token)
    } else {
        let prefix = format!(
            "{streams_prefix}{}",
            req.log_stream_name_prefix.as_deref().unwrap_or("")
        );
        let page = db::page(
            cx.store(),
            &prefix,
            req.next_token.as_deref(),
            limit,
            descending,
            |_| Ok(true),
        )?;
        let records = page
            .kvs
            .iter()
            .map(|kv| with_stats(db::decode::<StreamRecord>(kv)?))
            .collect::<ApiResult<Vec<_>>>()?;
        (records, page.next_token)
    };
    let log_streams = records
        .into_iter()
        .map(|(s, st)| LogStream {
            arn: Some(stream_arn(&scope, &group, &s.name)),
            creation_time: Some(s.creation_time),
            first_event_timestamp: st.first_event_timestamp,
            last_event_timestamp: st.last_event_timestamp,
            last_ingestion_time: st.last_ingestion_time,
            log_stream_name: Some(s.name),
            stored_bytes: Some(st.stored_bytes),
            upload_sequence_token: None,
        })
        .collect();
    Ok(DescribeLogStreamsResponse {
        log_streams: Some(log_streams),
        next_token,
    })
}
