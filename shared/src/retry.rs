//! Backoff for retries inside one invocation.

use std::time::Duration;

/// Returns a delay for retry `attempt` (0-based): exponential from `base` with full jitter,
/// capped at 64 times `base`.
pub fn backoff(attempt: u32, base: Duration) -> Duration {
    let ceiling = base.as_millis() as u64 * (1u64 << attempt.min(6));
    Duration::from_millis(rand::random_range(0..=ceiling))
}
