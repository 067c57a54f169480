//! The stopped-task garbage collector's decision. ECS keeps a stopped task
//! describable for an hour after it stops and then forgets it; Stevedore
//! keeps it for the configured retention. Given the head of the
//! stopped-task index (stop times, oldest first) this says which entries
//! are past retention and when to look again.

/// What to do with the entries read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Indices (into the input) of the entries to delete now, at most
    /// `batch` of them, oldest first.
    pub expired: Vec<usize>,
    /// When the next entry expires, in ms. `now` when more expired entries
    /// are waiting than one batch holds. Never later than `now +
    /// retention`: a task stopping from now on expires no earlier, so a
    /// collector that wakes by this needs no change notifications.
    pub wake_at: i64,
}

/// `stopped_at`: stop times (ms) of the entries read from the head of the
/// index. `more`: the read was cut short, so unread entries exist (all at
/// or after the last one read).
pub fn decide(
    stopped_at: &[i64],
    more: bool,
    now: i64,
    retention_ms: i64,
    batch: usize,
) -> Decision {
    let retention_ms = retention_ms.max(0);
    let due = |s: i64| s.saturating_add(retention_ms) <= now;
    let mut order: Vec<usize> = (0..stopped_at.len()).collect();
    // The index is in time order already; sorting keeps the decision right
    // for any input rather than relying on it.
    order.sort_by_key(|&i| stopped_at[i]);
    let expired: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| due(stopped_at[i]))
        .take(batch)
        .collect();
    let all_due = order.iter().filter(|&&i| due(stopped_at[i])).count();
    let next_live = order
        .iter()
        .map(|&i| stopped_at[i])
        .find(|&s| !due(s))
        .map(|s| s.saturating_add(retention_ms));
    let wake_at = if all_due > expired.len() || (more && next_live.is_none()) {
        // Due entries left over (beyond this batch, or unread): go again now.
        now
    } else {
        next_live.unwrap_or(now.saturating_add(retention_ms))
    };
    Decision {
        expired,
        wake_at: wake_at.min(now.saturating_add(retention_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn nothing_stored_wakes_one_retention_from_now() {
        assert_eq!(
            decide(&[], false, 10 * HOUR, HOUR, 100),
            Decision {
                expired: vec![],
                wake_at: 11 * HOUR
            }
        );
    }

    #[test]
    fn deletes_what_is_past_retention_and_wakes_for_the_next() {
        let now = 10 * HOUR;
        // Stopped 2 h ago, exactly 1 h ago (due: describable *for* an
        // hour), 59 min ago, 1 min ago.
        let stops = [
            now - 2 * HOUR,
            now - HOUR,
            now - HOUR + 60_000,
            now - 60_000,
        ];
        let d = decide(&stops, false, now, HOUR, 100);
        assert_eq!(d.expired, vec![0, 1]);
        assert_eq!(d.wake_at, now + 60_000);
    }

    #[test]
    fn a_full_batch_with_more_due_goes_again_now() {
        let now = 10 * HOUR;
        let stops = [now - 3 * HOUR, now - 2 * HOUR, now - 2 * HOUR, now - 1];
        let d = decide(&stops, false, now, HOUR, 2);
        assert_eq!(d.expired, vec![0, 1]);
        assert_eq!(d.wake_at, now);
    }

    #[test]
    fn a_cut_short_read_of_only_due_entries_goes_again_now() {
        let now = 10 * HOUR;
        let d = decide(&[now - 3 * HOUR, now - 2 * HOUR], true, now, HOUR, 100);
        assert_eq!(d.expired, vec![0, 1]);
        assert_eq!(d.wake_at, now);
        // One not yet due among them: the unread ones are later still.
        let d = decide(&[now - 3 * HOUR, now - 30 * 60_000], true, now, HOUR, 100);
        assert_eq!(d.expired, vec![0]);
        assert_eq!(d.wake_at, now + 30 * 60_000);
    }

    #[test]
    fn unsorted_input_is_decided_in_time_order() {
        let now = 10 * HOUR;
        let stops = [now - 60_000, now - 3 * HOUR, now - 2 * HOUR];
        let d = decide(&stops, false, now, HOUR, 1);
        assert_eq!(d.expired, vec![1]);
        assert_eq!(d.wake_at, now);
    }

    #[test]
    fn a_clock_that_went_back_never_wakes_later_than_one_retention() {
        // Stop times from the future (the wall clock stepped back).
        let now = 10 * HOUR;
        let d = decide(&[now + 5 * HOUR], false, now, HOUR, 100);
        assert!(d.expired.is_empty());
        assert_eq!(d.wake_at, now + HOUR);
    }
}
