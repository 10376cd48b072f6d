//! Identifiers: random UUIDs for entities, time-ordered v1 UUIDs (TIMEUUID) for messages.

use std::sync::Mutex;
use uuid::{Timestamp, Uuid};

/// 100 ns ticks between the Gregorian epoch (1582-10-15) and the Unix epoch.
const GREGORIAN_OFFSET_TICKS: u64 = 0x01B2_1DD2_1381_4000;

/// Makes TIMEUUIDs that are strictly increasing within one generator, even when the
/// wall clock stalls or steps back, so that a channel's `message_id` order matches its `seq` order.
pub struct TimeUuidGen {
    node: [u8; 6],
    last_ticks: Mutex<u64>,
}

impl Default for TimeUuidGen {
    fn default() -> Self {
        Self::new()
    }
}

impl TimeUuidGen {
    pub fn new() -> Self {
        let mut node: [u8; 6] = rand::random();
        node[0] |= 0x01; // multicast bit: marks a random node id (RFC 4122 4.5)
        Self { node, last_ticks: Mutex::new(0) }
    }

    /// A TIMEUUID later than both `not_before_ms` and every id this generator made before.
    pub fn next(&self, not_before_ms: i64) -> Uuid {
        let now = chrono::Utc::now();
        let now_ticks = unix_nanos_to_ticks(now.timestamp_nanos_opt().unwrap_or(0));
        let floor = unix_nanos_to_ticks(not_before_ms.saturating_mul(1_000_000));
        let mut last = self.last_ticks.lock().expect("timeuuid lock");
        let ticks = now_ticks.max(floor).max(*last + 1);
        *last = ticks;
        let counter = rand::random::<u16>() & 0x3fff;
        Uuid::new_v1(Timestamp::from_gregorian_time(ticks, counter), &self.node)
    }
}

fn unix_nanos_to_ticks(nanos: i64) -> u64 {
    (nanos.max(0) as u64) / 100 + GREGORIAN_OFFSET_TICKS
}

/// Unix milliseconds carried by a v1 UUID, if it is one.
pub fn timeuuid_millis(id: &Uuid) -> Option<i64> {
    let ts = id.get_timestamp()?;
    let (secs, nanos) = ts.to_unix();
    Some(secs as i64 * 1000 + (nanos / 1_000_000) as i64)
}

pub fn new_id() -> Uuid {
    Uuid::new_v4()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeuuids_are_strictly_increasing_and_v1() {
        let g = TimeUuidGen::new();
        let mut prev = g.next(0);
        for _ in 0..10_000 {
            let id = g.next(0);
            assert_eq!(id.get_version_num(), 1);
            let (a, b) = (prev.get_timestamp().unwrap(), id.get_timestamp().unwrap());
            assert!(b.to_gregorian().0 > a.to_gregorian().0);
            prev = id;
        }
    }

    #[test]
    fn timeuuid_respects_floor() {
        let g = TimeUuidGen::new();
        let future_ms = chrono::Utc::now().timestamp_millis() + 60_000;
        let id = g.next(future_ms);
        assert!(timeuuid_millis(&id).unwrap() >= future_ms);
    }
}
