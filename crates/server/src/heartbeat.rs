//! Which agents are connected. Kept in memory, not in the store: a
//! heartbeat per poll would otherwise be a durable write per agent every
//! few seconds. After a server restart every agent counts as disconnected
//! until its next poll, which comes within one poll interval.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;
// tokio time, so tests can pause and advance the clock.
use tokio::time::Instant;

#[derive(Default)]
struct Entry {
    open_polls: u32,
    last_seen: Option<Instant>,
    last_poll_start: Option<Instant>,
}

pub struct Heartbeats {
    disconnect_after: Duration,
    started: Instant,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Heartbeats {
    /// How long the server may hold a poll open: well under
    /// `disconnect_after`, so a poll open for longer than that is a
    /// connection nobody reads (a partitioned host), not a heartbeat, and
    /// detection stays within `disconnect_after` either way.
    pub fn max_poll_wait(&self) -> Duration {
        (self.disconnect_after * 2 / 3).max(Duration::from_secs(1))
    }

    pub fn new(disconnect_after: Duration) -> Self {
        Heartbeats {
            disconnect_after,
            started: Instant::now(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How long the agent has been out of touch, or `None` while connected.
    /// Agents never seen since this server started count from the start.
    pub fn silent_for(&self, instance_arn: &str) -> Option<Duration> {
        let e = self.entries.lock();
        let entry = e.get(instance_arn);
        if entry.is_some_and(|en| self.live(en)) {
            return None;
        }
        let last = entry
            .and_then(|en| en.last_seen)
            .unwrap_or(self.started)
            .max(self.started);
        Some(last.elapsed())
    }

    fn live(&self, entry: &Entry) -> bool {
        (entry.open_polls > 0
            && entry
                .last_poll_start
                .is_some_and(|t| t.elapsed() < self.disconnect_after))
            || entry
                .last_seen
                .is_some_and(|t| t.elapsed() < self.disconnect_after)
    }

    /// Marks a poll open until the guard drops.
    pub fn poll_started(&self, instance_arn: &str) -> PollGuard<'_> {
        let mut e = self.entries.lock();
        let entry = e.entry(instance_arn.to_string()).or_default();
        entry.open_polls += 1;
        entry.last_seen = Some(Instant::now());
        entry.last_poll_start = entry.last_seen;
        PollGuard {
            hb: self,
            arn: instance_arn.to_string(),
        }
    }

    pub fn seen(&self, instance_arn: &str) {
        let mut e = self.entries.lock();
        e.entry(instance_arn.to_string()).or_default().last_seen = Some(Instant::now());
    }

    pub fn connected(&self, instance_arn: &str) -> bool {
        let e = self.entries.lock();
        e.get(instance_arn).is_some_and(|entry| self.live(entry))
    }
}

pub struct PollGuard<'a> {
    hb: &'a Heartbeats,
    arn: String,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        let mut e = self.hb.entries.lock();
        if let Some(entry) = e.get_mut(&self.arn) {
            entry.open_polls = entry.open_polls.saturating_sub(1);
            entry.last_seen = Some(Instant::now());
        }
    }
}
