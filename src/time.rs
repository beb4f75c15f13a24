//! Token times: JWT claims count whole seconds since the epoch, the
//! database stores timestamps.

use chrono::{DateTime, TimeZone, Utc};

/// `now` as a JWT time (`iat`, `exp`).
pub fn epoch(now: DateTime<Utc>) -> i64 {
    now.timestamp()
}

/// A JWT time as a timestamp; one beyond chrono's range is the latest it
/// has (a token that never expires for practical purposes).
pub fn from_epoch(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
