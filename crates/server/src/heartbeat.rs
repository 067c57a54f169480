//! Which agents are connected. Kept in memory, not in the store: a
//! heartbeat per poll would otherwise be a durable write per agent every
//! few seconds. After a server restart every agent counts as disconnected
//! until its next poll, which comes within one poll interval.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// An agent is connected while a poll is open or its last poll ended less
/// than this long ago.
pub const DEFAULT_DISCONNECT_AFTER: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Entry {
    open_polls: u32,
    last_seen: Option<Instant>,
}

pub struct Heartbeats {
    disconnect_after: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Heartbeats {
    pub fn new(disconnect_after: Duration) -> Self {
        Heartbeats {
            disconnect_after,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Marks a poll open until the guard drops.
    pub fn poll_started(&self, instance_arn: &str) -> PollGuard<'_> {
        let mut e = self.entries.lock();
        let entry = e.entry(instance_arn.to_string()).or_default();
        entry.open_polls += 1;
        entry.last_seen = Some(Instant::now());
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
        match e.get(instance_arn) {
            None => false,
            Some(entry) => {
                entry.open_polls > 0
                    || entry
                        .last_seen
                        .is_some_and(|t| t.elapsed() < self.disconnect_after)
            }
        }
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
