//! Durations (`"250ms"`) and distributions (`"uniform(0ms, 5ms)"`) as written in scenarios.
//!
//! Both parse to whole microseconds because plans and results store durations as integer
//! µs (see `model::duration_us`); a value finer than that is rejected rather than rounded,
//! so what a file says is exactly what a run does.

use crate::model::Dist;
use std::time::Duration;

/// Unit suffixes and their size in microseconds.
const UNITS: &[(&str, u128)] = &[
    ("us", 1),
    ("µs", 1),
    ("ms", 1_000),
    ("s", 1_000_000),
    ("m", 60_000_000),
    ("h", 3_600_000_000),
];

/// Significant fraction digits beyond which no unit can still land on a whole microsecond.
const MAX_FRACTION_DIGITS: usize = 12;

/// What a duration past the largest one a plan holds (`u64::MAX` µs) is told.
const TOO_LARGE: &str = " (too large: a duration is at most 18446744073709551615us, about \
                         5124095576h)";

/// Parses `"250ms"`, `"1.5s"`, `"100us"`, `"1m"`, `"1h"`, `"0"`, or several of them
/// written together and added up, as Go's `time.ParseDuration` (and so k6) reads them:
/// `"1m30s"`, `"1h2m3.5s"`, `"2s500ms"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    micros(s.trim()).map(Duration::from_micros).map_err(|why| {
        format!("expected a duration like \"250ms\", \"2s\", \"1m\", found {s:?}{why}")
    })
}

/// The duration in µs, or a short hint (with a leading space) appended to the error.
fn micros(t: &str) -> Result<u64, &'static str> {
    if t == "0" {
        return Ok(0);
    }
    if t.starts_with('-') {
        return Err(" (durations cannot be negative)");
    }
    let mut rest = t;
    let mut total: u64 = 0;
    loop {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(split);
        if number.is_empty() {
            return Err("");
        }
        // The unit runs to the next part's number (`1m30s`), or to the end.
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace() || c == '-')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale = match UNITS.iter().find(|(name, _)| *name == unit) {
            Some((_, scale)) => *scale,
            None if unit.is_empty() && after.is_empty() => {
                return Err(" (missing unit: us, ms, s, m or h)")
            }
            None if unit.is_empty() && UNITS.iter().any(|(name, _)| *name == after.trim()) => {
                return Err(" (no space between a number and its unit: \"500ms\")")
            }
            None => return Err(" (units: us, ms, s, m, h)"),
        };
        total = total.checked_add(scaled(number, scale)?).ok_or(TOO_LARGE)?;
        if next.is_empty() {
            return Ok(total);
        }
        rest = next;
    }
}

/// `number` (digits, optionally one `.` with digits on both sides) times `scale`, exactly.
fn scaled(number: &str, scale: u128) -> Result<u64, &'static str> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let malformed =
        whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty());
    if malformed {
        return Err("");
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > MAX_FRACTION_DIGITS {
        return Err(" (finer than a microsecond)");
    }
    let too_large = TOO_LARGE;
    let whole: u128 = whole.parse().map_err(|_| too_large)?;
    let fraction_value: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| "")?
    };
    let denominator = 10u128.pow(fraction.len() as u32);
    let fraction_us = fraction_value * scale;
    if !fraction_us.is_multiple_of(denominator) {
        return Err(" (finer than a microsecond)");
    }
    let total = whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(fraction_us / denominator))
        .ok_or(too_large)?;
    u64::try_from(total).map_err(|_| too_large)
}

/// Parses `"fixed(5ms)"`, `"uniform(0ms, 5ms)"`, `"normal(100ms, 20ms)"`, `"exp(200ms)"`,
/// or a bare duration meaning `fixed`.
pub fn parse_dist(s: &str) -> Result<Dist, String> {
    let t = s.trim();
    let Some((name, rest)) = t.split_once('(') else {
        // A plain duration's own reason (too large, no unit, negative) is said too.
        return micros(t)
            .map(|us| Dist::Fixed {
                value: Duration::from_micros(us),
            })
            .map_err(|why| {
                format!(
                    "expected a distribution like \"fixed(5ms)\", \"uniform(0ms, 5ms)\", \
                 \"normal(100ms, 20ms)\", \"exp(200ms)\" or a duration like \"5ms\", found \
                 {s:?}{why}"
                )
            });
    };
    let Some(inner) = rest.strip_suffix(')') else {
        return Err(format!("{t}: missing closing \")\""));
    };
    let args = if inner.trim().is_empty() {
        Vec::new()
    } else {
        inner.split(',').collect()
    };
    let values = args
        .iter()
        .map(|a| parse_duration(a.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{t}: {e}"))?;
    build(t, name.trim(), &values)
}

fn build(t: &str, name: &str, args: &[Duration]) -> Result<Dist, String> {
    match (name, args) {
        ("fixed", [value]) => Ok(Dist::Fixed { value: *value }),
        ("uniform", [low, high]) if low > high => Err(format!("{t}: low must not exceed high")),
        ("uniform", [low, high]) => Ok(Dist::Uniform {
            low: *low,
            high: *high,
        }),
        ("normal", [mean, sd]) => Ok(Dist::Normal {
            mean: *mean,
            sd: *sd,
        }),
        ("exp", [mean]) if mean.is_zero() => Err(format!("{t}: mean must be more than zero")),
        ("exp", [mean]) => Ok(Dist::Exp { mean: *mean }),
        _ => Err(arity(t, name, args.len())),
    }
}

/// The distributions a scenario may name.
const DISTRIBUTIONS: [&str; 4] = ["fixed", "uniform", "normal", "exp"];

fn arity(t: &str, name: &str, found: usize) -> String {
    let params = match name {
        "fixed" => "1 argument (value)",
        "exp" => "1 argument (mean)",
        "uniform" => "2 arguments (low, high)",
        "normal" => "2 arguments (mean, sd)",
        _ => {
            let hint = crate::model::words::did_you_mean(name, DISTRIBUTIONS);
            return format!(
                "{t}: unknown distribution {name:?}; expected one of: fixed, uniform, normal, \
                 exp{hint}"
            );
        }
    };
    format!("{t}: {name} takes {params}, found {found}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_parse() {
        let cases = [
            ("250ms", ms(250)),
            ("2s", ms(2000)),
            ("1.5s", ms(1500)),
            ("1m", ms(60_000)),
            ("100us", Duration::from_micros(100)),
            ("100µs", Duration::from_micros(100)),
            ("0ms", Duration::ZERO),
            ("0", Duration::ZERO),
            ("1h", ms(3_600_000)),
            ("0.25ms", Duration::from_micros(250)),
            ("1.500s", ms(1500)),
            (" 3s ", ms(3000)),
            // Several parts added up, as Go's time.ParseDuration (and k6) read them.
            ("1m30s", ms(90_000)),
            ("1h2m3.5s", ms(3_723_500)),
            ("2s500ms", ms(2_500)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn durations_reject() {
        for text in [
            "5 sec", "5", "-1s", "", "s", "1.s", ".5s", "1.2.3s", "1d", "1.5us", "5S", "500 ms",
            "1m30", "1m-30s", "1m 30s",
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(
                err.starts_with("expected a duration like \"250ms\""),
                "{text}: {err}"
            );
        }
        assert_eq!(
            parse_duration("5 sec"),
            Err(
                "expected a duration like \"250ms\", \"2s\", \"1m\", found \"5 sec\" \
                 (units: us, ms, s, m, h)"
                    .into()
            )
        );
        assert!(parse_duration("5").expect_err("5").contains("missing unit"));
        assert!(parse_duration("1m30")
            .expect_err("1m30")
            .contains("missing unit"));
        assert!(parse_duration("500 ms")
            .expect_err("500 ms")
            .contains("no space between a number and its unit"));
        assert!(parse_duration("-1s").expect_err("-1s").contains("negative"));
        assert!(parse_duration("99999999999999999999h")
            .expect_err("big")
            .contains("too large: a duration is at most 18446744073709551615us"));
        // A `think` written as a plain duration says why it is refused, as `duration` does.
        let think = parse_dist("99999999999999h").expect_err("big think");
        assert!(
            think.contains("expected a distribution")
                && think.contains("too large: a duration is at most"),
            "{think}"
        );
    }

    #[test]
    fn dists_parse() {
        let cases = [
            ("fixed(5ms)", Dist::Fixed { value: ms(5) }),
            ("5ms", Dist::Fixed { value: ms(5) }),
            (
                "uniform(0ms, 5ms)",
                Dist::Uniform {
                    low: ms(0),
                    high: ms(5),
                },
            ),
            (
                "uniform(5ms,5ms)",
                Dist::Uniform {
                    low: ms(5),
                    high: ms(5),
                },
            ),
            (
                "normal(100ms, 20ms)",
                Dist::Normal {
                    mean: ms(100),
                    sd: ms(20),
                },
            ),
            (
                "normal(100ms, 0ms)",
                Dist::Normal {
                    mean: ms(100),
                    sd: ms(0),
                },
            ),
            ("exp(200ms)", Dist::Exp { mean: ms(200) }),
            (" exp( 1s ) ", Dist::Exp { mean: ms(1000) }),
        ];
        for (text, want) in cases {
            assert_eq!(parse_dist(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn dists_reject() {
        let cases = [
            (
                "uniform(10ms, 5ms)",
                "uniform(10ms, 5ms): low must not exceed high",
            ),
            ("gauss(1ms)", "unknown distribution \"gauss\""),
            (
                "uniform(1ms)",
                "uniform takes 2 arguments (low, high), found 1",
            ),
            ("fixed()", "fixed takes 1 argument (value), found 0"),
            ("exp(1ms, 2ms)", "exp takes 1 argument (mean), found 2"),
            ("exp(0ms)", "mean must be more than zero"),
            ("normal(1ms, 5 sec)", "found \"5 sec\""),
            ("fixed(5ms", "missing closing"),
            ("soon", "expected a distribution like"),
        ];
        for (text, want) in cases {
            let err = parse_dist(text).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    /// A mistyped or spelt-out distribution name gets a "did you mean", as every other
    /// mistyped value does; a name close to none gets none.
    #[test]
    fn a_mistyped_distribution_gets_a_did_you_mean() {
        for (text, want) in [
            ("unifrom(0ms, 5ms)", "uniform"),
            ("Uniform(0ms, 5ms)", "uniform"),
            ("exponential(5ms)", "exp"),
            ("nromal(1ms, 2ms)", "normal"),
            ("fixd(1ms)", "fixed"),
        ] {
            let err = parse_dist(text).expect_err(text);
            assert!(
                err.ends_with(&format!("; did you mean \"{want}\"?")),
                "{text}: {err}"
            );
        }
        let err = parse_dist("gauss(1ms)").expect_err("gauss");
        assert!(!err.contains("did you mean"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn millis_round_trip(n in 0u64..10_000_000_000) {
            prop_assert_eq!(parse_duration(&format!("{n}ms")), Ok(ms(n)));
            let seconds = format!("{}.{:03}s", n / 1000, n % 1000);
            prop_assert_eq!(parse_duration(&seconds), Ok(ms(n)));
        }

        #[test]
        fn never_panics(s in "\\PC{0,12}") {
            let _ = parse_duration(&s);
            let _ = parse_dist(&s);
        }
    }
}
