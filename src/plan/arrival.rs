//! Arrival shapes → intended start offsets (before jitter).

use crate::model::Arrival;
use std::time::Duration;

/// How long before a collide barrier its connections start pre-opening: enough for `n`
/// connects and requests on a small machine, so none misses the release.
pub fn collide_lead(n: u32) -> Duration {
    Duration::from_millis(100) + Duration::from_micros(200 * u64::from(n))
}

/// The `n` start offsets of a group, in connection order.
pub fn offsets(arrival: &Arrival, n: u32) -> Vec<Duration> {
    (0..n).map(|i| offset(arrival, i, n)).collect()
}

/// When the last of `n` connections arriving by `arrival` starts (jitter aside); zero for
/// none.
pub fn last_offset(arrival: &Arrival, n: u32) -> Duration {
    match n {
        0 => Duration::ZERO,
        n => offset(arrival, n - 1, n),
    }
}

/// Offsets are whole microseconds, like every duration in a plan, so a plan written to JSON
/// reads back equal.
fn offset(arrival: &Arrival, i: u32, n: u32) -> Duration {
    match *arrival {
        // i/n, not i/(n-1): the last connection starts one step before `start + over`,
        // so `n` connections ramped over 5 s arrive at a steady n/5 per second.
        // In u128: `over` (up to u64 µs) times `i` does not fit u64, and must not wrap.
        Arrival::Ramp { start, over } => {
            let step = over.as_micros() * u128::from(i) / u128::from(n.max(1));
            start.saturating_add(Duration::from_micros(
                u64::try_from(step).unwrap_or(u64::MAX),
            ))
        }
        Arrival::Rate { start, per_sec } if per_sec > 0.0 => {
            // `as` saturates a float past u64::MAX; it never wraps.
            start.saturating_add(Duration::from_micros(
                (f64::from(i) * 1e6 / per_sec).round() as u64,
            ))
        }
        Arrival::Rate { start, .. } => start,
        Arrival::Burst { at } | Arrival::Collide { at } => at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_offset_is_the_last_connection_s_own() {
        let ramp = Arrival::Ramp {
            start: Duration::from_secs(1),
            over: Duration::from_secs(4),
        };
        assert_eq!(last_offset(&ramp, 4), Duration::from_secs(4));
        assert_eq!(last_offset(&ramp, 4), *offsets(&ramp, 4).last().unwrap());
        assert_eq!(last_offset(&ramp, 0), Duration::ZERO);
        let rate = Arrival::Rate {
            start: Duration::ZERO,
            per_sec: 10.0,
        };
        assert_eq!(last_offset(&rate, 11), Duration::from_secs(1));
    }

    #[test]
    fn ramp_spreads_evenly_inside_the_window() {
        let a = Arrival::Ramp {
            start: Duration::from_secs(1),
            over: Duration::from_secs(4),
        };
        let o = offsets(&a, 4);
        assert_eq!(
            o,
            vec![1000, 2000, 3000, 4000]
                .into_iter()
                .map(Duration::from_millis)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn rate_spaces_by_inverse_rate() {
        let a = Arrival::Rate {
            start: Duration::ZERO,
            per_sec: 100.0,
        };
        let o = offsets(&a, 3);
        assert_eq!(o[2], Duration::from_millis(20));
    }

    #[test]
    fn a_long_ramp_over_many_connections_does_not_wrap() {
        // over × i is ~1.8e22 µs here, far past u64: offsets must still rise monotonically.
        let over = Duration::from_micros(u64::MAX / 2);
        let a = Arrival::Ramp {
            start: Duration::ZERO,
            over,
        };
        let o = offsets(&a, 70_000);
        assert!(o.windows(2).all(|w| w[0] <= w[1]));
        assert!(o[69_999] < over && o[69_999] > over / 2);
    }

    #[test]
    fn burst_starts_everyone_together() {
        let a = Arrival::Burst {
            at: Duration::from_millis(5),
        };
        assert!(offsets(&a, 10)
            .iter()
            .all(|d| *d == Duration::from_millis(5)));
    }
}
