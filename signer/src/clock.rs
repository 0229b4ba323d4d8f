//! The wall clock, read in one place: seconds since 1970 for policy time checks and approval
//! expiry, and the current 500 ms block slot for the blind-digest watermark rules. A clock
//! before 1970 reads as 0; one past 2106 saturates.

use oryx_proto::antelope::{BlockTimestamp, TimePointSec};

fn since_epoch() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds since 1970 now.
pub fn now_secs() -> TimePointSec {
    TimePointSec(u32::try_from(since_epoch().as_secs()).unwrap_or(u32::MAX))
}

/// The block slot the wall clock is in now.
pub fn now_slot() -> u32 {
    let ms = i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX);
    BlockTimestamp::from_unix_ms(ms).map_or(0, BlockTimestamp::slot)
}
