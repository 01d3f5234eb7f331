//! Sampling durations from scenario distributions, in whole microseconds.

use crate::model::Dist;
use rand::Rng;
use rand_distr::{Distribution, Exp, Normal};
use std::time::Duration;

/// No sampled duration exceeds this: a long-tailed distribution must not stall a run for days.
const MAX_SAMPLE: Duration = Duration::from_secs(3600);

/// Draws one duration. Validation guarantees well-formed parameters; anything else yields zero.
pub fn sample<R: Rng + ?Sized>(dist: &Dist, rng: &mut R) -> Duration {
    let micros = match *dist {
        Dist::Fixed { value } => return value.min(MAX_SAMPLE),
        Dist::Uniform { low, high } if low < high => rng.random_range(us(low)..=us(high)) as f64,
        Dist::Uniform { low, .. } => us(low) as f64,
        Dist::Normal { mean, sd } => match Normal::new(us(mean) as f64, us(sd) as f64) {
            Ok(n) => n.sample(rng),
            Err(_) => us(mean) as f64,
        },
        Dist::Exp { mean } if !mean.is_zero() => match Exp::new(1.0 / us(mean) as f64) {
            Ok(e) => e.sample(rng),
            Err(_) => 0.0,
        },
        Dist::Exp { .. } => 0.0,
    };
    Duration::from_micros(micros.max(0.0).round() as u64).min(MAX_SAMPLE)
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn draws(dist: Dist, n: usize) -> Vec<Duration> {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        (0..n).map(|_| sample(&dist, &mut rng)).collect()
    }

    #[test]
    fn uniform_stays_in_bounds_and_covers_them() {
        let d = Dist::Uniform {
            low: Duration::from_millis(2),
            high: Duration::from_millis(4),
        };
        let v = draws(d, 2000);
        assert!(v
            .iter()
            .all(|x| *x >= Duration::from_millis(2) && *x <= Duration::from_millis(4)));
        assert!(v.iter().any(|x| *x < Duration::from_micros(2100)));
        assert!(v.iter().any(|x| *x > Duration::from_micros(3900)));
    }

    #[test]
    fn normal_is_truncated_at_zero_and_centred() {
        let d = Dist::Normal {
            mean: Duration::from_millis(1),
            sd: Duration::from_millis(2),
        };
        let v = draws(d, 4000);
        let mean = v.iter().map(|x| x.as_micros() as f64).sum::<f64>() / v.len() as f64;
        assert!(
            v.iter().any(|x| x.is_zero()),
            "truncation should produce zeros"
        );
        assert!(mean > 1000.0 && mean < 2500.0, "mean {mean}");
    }

    #[test]
    fn exp_has_the_requested_mean() {
        let d = Dist::Exp {
            mean: Duration::from_millis(10),
        };
        let v = draws(d, 20000);
        let mean = v.iter().map(|x| x.as_micros() as f64).sum::<f64>() / v.len() as f64;
        assert!((mean - 10_000.0).abs() < 500.0, "mean {mean}");
    }

    #[test]
    fn fixed_is_fixed() {
        let d = Dist::Fixed {
            value: Duration::from_millis(3),
        };
        assert!(draws(d, 10).iter().all(|x| *x == Duration::from_millis(3)));
    }
}
