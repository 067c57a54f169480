//! Log events: PutLogEvents, GetLogEvents, FilterLogEvents.
//!
//! Events live in the log store (`stevedore_logstore`), ordered within a
//! stream by position: timestamp, then the stream's ingest sequence.
//! GetLogEvents tokens are `f/POSITION` (events after it) and `b/POSITION`
//! (events before it), the position written as the timestamp (19 digits)
//! and the sequence (12 digits), as when events were KV keys, so tokens
//! issued by older versions stay valid.

use super::pattern::Pattern;
use super::records::{blocking, load_group, load_stream, GroupRecord, StreamRecord};
use super::{group_not_found, stream_not_found};
use crate::db;
use crate::error::ApiResult;
use crate::state::Cx;
use stevedore_api::logs::{
    FilterLogEventsRequest, FilterLogEventsResponse, FilteredLogEvent, GetLogEventsRequest,
    GetLogEventsResponse, OutputLogEvent, PutLogEventsRequest, PutLogEventsResponse,
    RejectedLogEventsInfo,
};
use stevedore_logstore::{LogStore, NewEvent, Position, ReadRequest, StoredEvent};
use stevedore_model::keys;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// PutLogEvents limits, as CloudWatch Logs documents them.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const EVENT_OVERHEAD_BYTES: usize = 26;
const TOO_OLD_MS: i64 = 14 * DAY_MS;
const TOO_NEW_MS: i64 = 2 * HOUR_MS;
const MAX_SPAN_MS: i64 = DAY_MS;
const DEFAULT_EVENTS_LIMIT: usize = 10_000;
/// Rows a filtering scan reads per log-store query: enough to amortise a
/// query, few enough that a selective pattern does not hold many in memory.
const SCAN_PAGE_MIN: usize = 256;
const SCAN_PAGE_MAX: usize = 4096;

pub async fn put_log_events(cx: Cx, req: PutLogEventsRequest) -> ApiResult<PutLogEventsResponse> {
    if req.entity.is_some() {
        return Err(super::invalid(
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
            return Err(super::invalid(format!(
                "Log events in a single PutLogEvents request must be in chronological order (logEvents[{i}] is older than logEvents[{}]).",
                i - 1
            )));
        }
        ts.push(t);
        size += e.message.as_deref().unwrap_or("").len() + EVENT_OVERHEAD_BYTES;
    }
    if size > MAX_BATCH_BYTES {
        return Err(super::invalid(format!(
            "Upload too large: {size} bytes exceeds the limit of {MAX_BATCH_BYTES} (each event counts its UTF-8 message length plus {EVENT_OVERHEAD_BYTES} bytes)."
        )));
    }
    if let (Some(first), Some(last)) = (ts.first(), ts.last()) {
        if last - first > MAX_SPAN_MS {
            return Err(super::invalid(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
            ));
        }
    }
    let now = cx.now.as_millis();
    let scope = cx.scope();
    let Some(group) = load_group(cx.store(), scope, &group_name)? else {
        return Err(group_not_found());
    };
    let Some(stream) = load_stream(cx.store(), scope, &group_name, &stream_name)? else {
        return Err(stream_not_found());
    };
    let cutoff = group.value.retention_cutoff(now);
    let mut info = RejectedLogEventsInfo::default();
    let mut accepted = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
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
        accepted.push(NewEvent {
            timestamp: t,
            message: e.message.unwrap_or_default(),
        });
    }
    // The log store assigns the sequences and keeps the counters in the
    // same write as the events, so concurrent calls on one stream need no
    // compare-and-set here; it returns once the events are durable.
    let name = stream.value.log_name(scope, &group_name);
    let stats = blocking(&cx.state.logs, move |logs| {
        logs.append(&name, now, &accepted)
    })
    .await?;
    let rejected = (info != RejectedLogEventsInfo::default()).then_some(info);
    Ok(PutLogEventsResponse {
        next_sequence_token: Some(format!("{:056}", stats.next_seq)),
        rejected_log_events_info: rejected,
        ..Default::default()
    })
}

fn position_text(p: Position) -> String {
    keys::log_event_position(p.timestamp, p.seq)
}

/// Reads `stream`'s events in `(after, before)` in position order, keeping
/// those `keep` accepts, until `limit` are kept.
fn scan(
    logs: &dyn LogStore,
    stream: &str,
    after: Position,
    before: Option<Position>,
    limit: usize,
    mut keep: impl FnMut(&StoredEvent) -> bool,
) -> stevedore_logstore::Result<Vec<StoredEvent>> {
    let mut out = Vec::new();
    let mut after = after;
    while out.len() < limit {
        let page_size = (limit - out.len()).clamp(SCAN_PAGE_MIN, SCAN_PAGE_MAX);
        let page = logs.read(
            stream,
            &ReadRequest {
                after: Some(after),
                before,
                reverse: false,
                limit: page_size,
            },
        )?;
        let full = page.len() == page_size;
        match page.last() {
            Some(last) => after = last.position,
            None => break,
        }
        for ev in page {
            if keep(&ev) {
                out.push(ev);
                if out.len() >= limit {
                    break;
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok(out)
}

fn parse_get_token(token: &str) -> ApiResult<(bool, Position)> {
    let bad = || {
        super::invalid(
            "The specified nextToken is not valid: it was not issued by GetLogEvents for this stream.",
        )
    };
    let (dir, pos) = token.split_once('/').ok_or_else(bad)?;
    let (timestamp, seq) = keys::parse_log_event_position(pos).ok_or_else(bad)?;
    let pos = Position::new(timestamp, seq);
    match dir {
        "f" => Ok((true, pos)),
        "b" => Ok((false, pos)),
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
    let Some(stream) = load_stream(cx.store(), scope, &group_name, &stream_name)? else {
        return Err(stream_not_found());
    };
    let limit = db::max_results(req.limit, DEFAULT_EVENTS_LIMIT, DEFAULT_EVENTS_LIMIT)?;
    let lo = Position::before_time(lower_bound(&group.value, now, req.start_time));
    let hi = req.end_time.map(Position::before_time);
    let token = req.next_token.as_deref().map(parse_get_token).transpose()?;
    let forward = match &token {
        Some((forward, _)) => *forward,
        None => req.start_from_head.unwrap_or(false),
    };
    let token_pos = token.map(|(_, pos)| pos);
    let read = if forward {
        ReadRequest {
            after: Some(token_pos.map_or(lo, |t| t.max(lo))),
            before: hi,
            reverse: false,
            limit,
        }
    } else {
        let before = match (token_pos, hi) {
            (Some(t), Some(h)) => Some(t.min(h)),
            (t, h) => t.or(h),
        };
        ReadRequest {
            after: Some(lo),
            before,
            reverse: true,
            limit,
        }
    };
    let name = stream.value.log_name(scope, &group_name);
    let mut found = blocking(&cx.state.logs, move |logs| logs.read(&name, &read)).await?;
    if !forward {
        found.reverse();
    }
    let (next_forward, next_backward) = match (found.first(), found.last()) {
        (Some(first), Some(last)) => (
            format!("f/{}", position_text(last.position)),
            format!("b/{}", position_text(first.position)),
        ),
        _ => {
            // Nothing (new): hand back the same cursor, so a client that
            // loops until the token repeats stops.
            let pos = position_text(token_pos.unwrap_or(lo));
            (format!("f/{pos}"), format!("b/{pos}"))
        }
    };
    let events = found
        .into_iter()
        .map(|e| OutputLogEvent {
            ingestion_time: Some(e.ingestion_time),
            message: Some(e.message),
            timestamp: Some(e.position.timestamp),
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
        return Err(super::invalid(
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
    let records: Vec<StreamRecord> = match req.log_stream_names {
        Some(names) => {
            let mut out = Vec::new();
            for name in names {
                if let Some(s) = load_stream(cx.store(), &scope, &group_name, &name)? {
                    out.push(s.value);
                }
            }
            out
        }
        None => {
            let prefix = format!(
                "{streams_prefix}{}",
                req.log_stream_name_prefix.as_deref().unwrap_or("")
            );
            db::all_versioned::<StreamRecord>(cx.store(), &prefix)?
                .into_iter()
                .map(|v| v.value)
                .collect()
        }
    };
    // (stream name, its log-store name), sorted by stream name.
    let mut streams: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.name.clone(), r.log_name(&scope, &group_name)))
        .collect();
    streams.sort();
    streams.dedup();

    // Events merge across streams in (timestamp, stream, position) order;
    // the token is that triple of the last event returned.
    let after: Option<(i64, String, Position)> = match req.next_token.as_deref() {
        None => None,
        Some(t) => {
            let text = db::decode_token(t)?;
            let mut parts = text.splitn(2, ':');
            let pos = parts.next().unwrap_or("");
            let stream = parts.next().unwrap_or("").to_string();
            let (ts, seq) = keys::parse_log_event_position(pos).ok_or_else(|| {
                super::invalid("Invalid nextToken: it was not issued by FilterLogEvents.")
            })?;
            Some((ts, stream, Position::new(ts, seq)))
        }
    };
    let scan_lo = after.as_ref().map_or(lo, |(ts, _, _)| lo.max(*ts));
    let merged = blocking(&cx.state.logs, move |logs| {
        let mut merged: Vec<(String, StoredEvent)> = Vec::new();
        for (stream, log_name) in &streams {
            let found = scan(
                logs,
                log_name,
                Position::before_time(scan_lo),
                hi.map(Position::before_time),
                limit + 1,
                |ev| {
                    let past_token = after.as_ref().is_none_or(|(ts, s, p)| {
                        (ev.position.timestamp, stream.as_str(), ev.position)
                            > (*ts, s.as_str(), *p)
                    });
                    past_token && pattern.matches(&ev.message)
                },
            )?;
            merged.extend(found.into_iter().map(|ev| (stream.clone(), ev)));
        }
        merged.sort_by(|a, b| {
            (a.1.position.timestamp, &a.0, a.1.position).cmp(&(
                b.1.position.timestamp,
                &b.0,
                b.1.position,
            ))
        });
        Ok(merged)
    })
    .await?;
    let mut merged = merged;
    let more = merged.len() > limit;
    merged.truncate(limit);
    let next_token = if more {
        merged.last().map(|(stream, ev)| {
            db::encode_token(&format!("{}:{stream}", position_text(ev.position)))
        })
    } else {
        None
    };
    let events = merged
        .into_iter()
        .map(|(stream, ev)| FilteredLogEvent {
            event_id: Some(format!(
                "{}{:08}",
                position_text(ev.position),
                fnv(&stream) % 100_000_000
            )),
            ingestion_time: Some(ev.ingestion_time),
            log_stream_name: Some(stream),
            message: Some(ev.message),
            timestamp: Some(ev.position.timestamp),
        })
        .collect();
    Ok(FilterLogEventsResponse {
        events: Some(events),
        next_token,
        searched_log_streams: None,
    })
}
