//! Exponential backoff with full jitter, shared by the store's retries and the protocol's.

use std::time::Duration;

use crate::limits::{BACKOFF_BASE_MS, BACKOFF_CAP_MS};

/// Exponential backoff with full jitter: a random sleep in `[0, min(cap, base * 2^attempt)]`,
/// so that racing writers spread out instead of colliding again in lockstep.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE_MS
        .saturating_mul(1u64 << attempt.min(20))
        .min(BACKOFF_CAP_MS);
    Duration::from_millis(fastrand::u64(0..=ceiling))
}
