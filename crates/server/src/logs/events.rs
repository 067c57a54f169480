//! Log events: PutLogEvents, GetLogEvents, FilterLogEvents.
//!
//! Events of a stream are keys `.../event/GROUP:STREAM:POSITION` where the
//! position is the timestamp (19 digits) and the stream's ingest sequence
//! (12 digits), so reading in key order is reading in time order.
//! GetLogEvents tokens are `f/POSITION` (events after it) and `b/POSITION`
//! (events before it).

use super::pattern::Pattern;
use super::records::{load_group, load_stream, EventRecord, GroupRecord, StreamRecord};
use super::{group_not_found, stream_not_found};
use crate::db::{self, commit, contention, put, unchanged, MAX_CAS_RETRIES};
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use stevedore_api::logs::{
    FilterLogEventsRequest, FilterLogEventsResponse, FilteredLogEvent, GetLogEventsRequest,
    GetLogEventsResponse, OutputLogEvent, PutLogEventsRequest, PutLogEventsResponse,
    RejectedLogEventsInfo,
};
use stevedore_model::keys;
use stevedore_store::{RangeRequest, Store};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// PutLogEvents limits, as CloudWatch Logs documents them.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const EVENT_OVERHEAD_BYTES: usize = 26;
const TOO_OLD_MS: i64 = 14 * DAY_MS;
const TOO_NEW_MS: i64 = 2 * HOUR_MS;
const MAX_SPAN_MS: i64 = DAY_MS;
const DEFAULT_EVENTS_LIMIT: usize = 10_000;

pub async fn put_log_events(cx: Cx, req: PutLogEventsRequest) -> ApiResult<PutLogEventsResponse> {
    if req.entity.is_some() {
        return Err(ApiError::invalid(
            "The entity parameter is not supported by Stevedore.",
        ));
    }
    let group_name = req.log_group_name.unwrap_or_default();
    let stream_name = req.log_stream_name.unwrap_or_default();
    let events = req.log_events.unwrap_or_default();
    let mut size = 0usize;
    let mut ts = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let t = e.timestamp.unwrap_or_default();
        if ts.last().is_some_and(|&prev| t < prev) {
            return Err(ApiError::invalid(format!(
                "Log events in a single PutLogEvents request must be in chronological order (logEvents[{i}] is older than logEvents[{}]).",
                i - 1
            )));
        }
        ts.push(t);
        size += e.message.as_deref().unwrap_or("").len() + EVENT_OVERHEAD_BYTES;
    }
    if size > MAX_BATCH_BYTES {
        return Err(ApiError::invalid(format!(
            "Upload too large: {size} bytes exceeds the limit of {MAX_BATCH_BYTES} (each event counts its UTF-8 message length plus {EVENT_OVERHEAD_BYTES} bytes)."
        )));
    }
    if let (Some(first), Some(last)) = (ts.first(), ts.last()) {
        if last - first > MAX_SPAN_MS {
            return Err(ApiError::invalid(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
            ));
        }
    }
    let now = cx.now.as_millis();
    let scope = cx.scope();
    for _ in 0..MAX_CAS_RETRIES {
        let Some(group) = load_group(cx.store(), scope, &group_name)? else {
            return Err(group_not_found());
        };
        let Some(stream) = load_stream(cx.store(), scope, &group_name, &stream_name)? else {
            return Err(stream_not_found());
        };
        let cutoff = group.value.retention_cutoff(now);
        let mut rec: StreamRecord = stream.value;
        let mut info = RejectedLogEventsInfo::default();
        let mut ops = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let t = ts[i];
            let idx = i32::try_from(i).unwrap_or(i32::MAX);
            if t > now + TOO_NEW_MS {
                info.too_new_log_event_start_index.get_or_insert(idx);
                continue;
            }
            if t < now - TOO_OLD_MS {
                info.too_old_log_event_end_index = Some(idx);
                continue;
            }
            if t < cutoff {
                info.expired_log_event_end_index = Some(idx);
                continue;
            }
            let message = e.message.clone().unwrap_or_default();
            rec.stored_bytes += message.len() as i64;
            rec.first_event_timestamp = Some(rec.first_event_timestamp.map_or(t, |f| f.min(t)));
            rec.last_event_timestamp = Some(rec.last_event_timestamp.map_or(t, |l| l.max(t)));
            rec.last_ingestion_time = Some(now);
            let key = keys::log_event(scope, &group_name, &stream_name, t, rec.next_seq);
            rec.next_seq += 1;
            ops.push(put(
                key,
                &EventRecord {
                    timestamp: t,
                    ingestion_time: now,
                    message,
                },
            ));
        }
        let next_sequence_token = Some(format!("{:056}", rec.next_seq));
        let rejected = (info != RejectedLogEventsInfo::default()).then_some(info);
        if ops.is_empty() {
            return Ok(PutLogEventsResponse {
                next_sequence_token,
                rejected_log_events_info: rejected,
                ..Default::default()
            });
        }
        let stream_key = keys::log_stream(scope, &group_name, &stream_name);
        ops.push(put(stream_key.clone(), &rec));
        let compares = vec![
            unchanged(stream_key, stream.mod_revision),
            unchanged(keys::log_group(scope, &group_name), group.mod_revision),
        ];
        if commit(cx.store(), compares, ops).await? {
            return Ok(PutLogEventsResponse {
                next_sequence_token,
                rejected_log_events_info: rejected,
                ..Default::default()
            });
        }
    }
    Err(contention())
}

/// Reads a stream's events in key order (or reverse) whose timestamps are
/// in `[lo, hi)`, starting after `start_after` (a full key), keeping those
/// `keep` accepts, until `limit` are found.
#[allow(clippy::too_many_arguments)]
fn scan(
    store: &dyn Store,
    prefix: &str,
    mut start_after: Option<String>,
    reverse: bool,
    lo: i64,
    hi: Option<i64>,
    limit: usize,
    mut keep: impl FnMut(&str, &EventRecord) -> bool,
) -> ApiResult<Vec<(String, EventRecord)>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    loop {
        let batch = store.range(&RangeRequest {
            prefix: prefix.to_string(),
            start_after: start_after.clone(),
            limit: Some(limit.clamp(64, 1000)),
            reverse,
        })?;
        for kv in &batch.kvs {
            let pos = keys::suffix(&kv.key, prefix);
            let Some(t) = keys::log_event_position_timestamp(pos) else {
                continue;
            };
            if reverse && t < lo {
                return Ok(out);
            }
            if !reverse && hi.is_some_and(|h| t >= h) {
                return Ok(out);
            }
            if t < lo || hi.is_some_and(|h| t >= h) {
                continue;
            }
            let ev: EventRecord = db::decode(kv)?;
            if keep(pos, &ev) {
                out.push((pos.to_string(), ev));
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        match batch.kvs.last() {
            Some(last) if batch.more => start_after = Some(last.key.clone()),
            _ => return Ok(out),
        }
    }
}

fn parse_get_token(token: &str) -> ApiResult<(bool, String)> {
    let bad = || {
        ApiError::invalid(
            "The specified nextToken is not valid: it was not issued by GetLogEvents for this stream.",
        )
    };
    let (dir, pos) = token.split_once('/').ok_or_else(bad)?;
    if keys::log_event_position_timestamp(pos).is_none() {
        return Err(bad());
    }
    match dir {
        "f" => Ok((true, pos.to_string())),
        "b" => Ok((false, pos.to_string())),
        _ => Err(bad()),
    }
}

/// The lowest timestamp a read may return: `startTime`, raised to the
/// group's retention cutoff.
fn lower_bound(group: &GroupRecord, now: i64, start: Option<i64>) -> i64 {
    start.unwrap_or(0).max(group.retention_cutoff(now)).max(0)
}

pub async fn get_log_events(cx: Cx, req: GetLogEventsRequest) -> ApiResult<GetLogEventsResponse> {
    let group_name = super::group_name(&cx, req.log_group_name, req.log_group_identifier)?;
    let stream_name = req.log_stream_name.unwrap_or_default();
    let scope = cx.scope();
    let now = cx.now.as_millis();
    let Some(group) = load_group(cx.store(), scope, &group_name)? else {
        return Err(group_not_found());
    };
    if load_stream(cx.store(), scope, &group_name, &stream_name)?.is_none() {
        return Err(stream_not_found());
    }
    let limit = db::max_results(req.limit, DEFAULT_EVENTS_LIMIT, DEFAULT_EVENTS_LIMIT)?;
    let lo = lower_bound(&group.value, now, req.start_time);
    let hi = req.end_time;
    let prefix = keys::log_events_prefix(scope, &group_name, &stream_name);
    let lo_key = format!("{prefix}{}", keys::log_event_position(lo, 0));
    let hi_key = hi.map(|h| format!("{prefix}{}", keys::log_event_position(h, 0)));
    let token = req.next_token.as_deref().map(parse_get_token).transpose()?;
    let forward = match &token {
        Some((forward, _)) => *forward,
        None => req.start_from_head.unwrap_or(false),
    };
    let token_key = token.as_ref().map(|(_, pos)| format!("{prefix}{pos}"));
    let mut found = if forward {
        let start = match token_key {
            Some(t) if t > lo_key => t,
            _ => lo_key.clone(),
        };
        scan(
            cx.store(),
            &prefix,
            Some(start),
            false,
            lo,
            hi,
            limit,
            |_, _| true,
        )?
    } else {
        let start = match (token_key, hi_key) {
            (Some(t), Some(h)) => Some(t.min(h)),
            (t, h) => t.or(h),
        };
        let mut v = scan(cx.store(), &prefix, start, true, lo, hi, limit, |_, _| true)?;
        v.reverse();
        v
    };
    let (next_forward, next_backward) = match (found.first(), found.last()) {
        (Some((first, _)), Some((last, _))) => (format!("f/{last}"), format!("b/{first}")),
        _ => {
            // Nothing (new): hand back the same cursor, so a client that
            // loops until the token repeats stops.
            let pos = token
                .as_ref()
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| keys::log_event_position(lo, 0));
            (format!("f/{pos}"), format!("b/{pos}"))
        }
    };
    let events = found
        .drain(..)
        .map(|(_, e)| OutputLogEvent {
            ingestion_time: Some(e.ingestion_time),
            message: Some(e.message),
            timestamp: Some(e.timestamp),
        })
        .collect();
    Ok(GetLogEventsResponse {
        events: Some(events),
        next_backward_token: Some(next_backward),
        next_forward_token: Some(next_forward),
    })
}

/// A short stable hash, so event ids differ between streams.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub async fn filter_log_events(
    cx: Cx,
    req: FilterLogEventsRequest,
) -> ApiResult<FilterLogEventsResponse> {
    let group_name = super::group_name(&cx, req.log_group_name, req.log_group_identifier)?;
    if req.log_stream_names.is_some() && req.log_stream_name_prefix.is_some() {
        return Err(ApiError::invalid(
            "logStreamNames and logStreamNamePrefix are mutually exclusive; specify only one.",
        ));
    }
    let scope = cx.scope().clone();
    let now = cx.now.as_millis();
    let Some(group) = load_group(cx.store(), &scope, &group_name)? else {
        return Err(group_not_found());
    };
    let pattern = Pattern::parse(req.filter_pattern.as_deref().unwrap_or(""))?;
    let limit = db::max_results(req.limit, DEFAULT_EVENTS_LIMIT, DEFAULT_EVENTS_LIMIT)?;
    let lo = lower_bound(&group.value, now, req.start_time);
    let hi = req.end_time;

    let streams_prefix = keys::log_streams_prefix(&scope, &group_name);
    let mut streams: Vec<String> = match req.log_stream_names {
        Some(names) => names,
        None => {
            let prefix = format!(
                "{streams_prefix}{}",
                req.log_stream_name_prefix.as_deref().unwrap_or("")
            );
            cx.store()
                .range(&RangeRequest::prefix(prefix))?
                .kvs
                .iter()
                .map(|kv| keys::suffix(&kv.key, &streams_prefix).to_string())
                .collect()
        }
    };
    streams.sort();
    streams.dedup();

    // Events merge across streams in (timestamp, stream, position) order;
    // the token is that triple of the last event returned.
    let after: Option<(i64, String, String)> = match req.next_token.as_deref() {
        None => None,
        Some(t) => {
            let text = db::decode_token(t)?;
            let mut parts = text.splitn(2, ':');
            let pos = parts.next().unwrap_or("").to_string();
            let stream = parts.next().unwrap_or("").to_string();
            let ts = keys::log_event_position_timestamp(&pos).ok_or_else(|| {
                ApiError::invalid("Invalid nextToken: it was not issued by FilterLogEvents.")
            })?;
            Some((ts, stream, pos))
        }
    };
    let scan_lo = after.as_ref().map_or(lo, |(ts, _, _)| lo.max(*ts));
    let mut merged: Vec<(i64, String, String, EventRecord)> = Vec::new();
    for stream in &streams {
        let prefix = keys::log_events_prefix(&scope, &group_name, stream);
        let start = format!("{prefix}{}", keys::log_event_position(scan_lo, 0));
        let found = scan(
            cx.store(),
            &prefix,
            Some(start),
            false,
            scan_lo,
            hi,
            limit + 1,
            |pos, ev| {
                let past_token = after.as_ref().is_none_or(|(ts, s, p)| {
                    (ev.timestamp, stream.as_str(), pos) > (*ts, s.as_str(), p.as_str())
                });
                past_token && pattern.matches(&ev.message)
            },
        )?;
        merged.extend(
            found
                .into_iter()
                .map(|(pos, ev)| (ev.timestamp, stream.clone(), pos, ev)),
        );
    }
    merged.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
    let more = merged.len() > limit;
    merged.truncate(limit);
    let next_token = if more {
        merged
            .last()
            .map(|(_, stream, pos, _)| db::encode_token(&format!("{pos}:{stream}")))
    } else {
        None
    };
    let events = merged
        .into_iter()
        .map(|(_, stream, pos, ev)| FilteredLogEvent {
            event_id: Some(format!("{pos}{:08}", fnv(&stream) % 100_000_000)),
            ingestion_time: Some(ev.ingestion_time),
            log_stream_name: Some(stream),
            message: Some(ev.message),
            timestamp: Some(ev.timestamp),
        })
        .collect();
    Ok(FilterLogEventsResponse {
        events: Some(events),
        next_token,
        searched_log_streams: None,
    })
}
