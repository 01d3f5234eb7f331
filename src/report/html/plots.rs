//! The report's SVG plots, drawn with plotters' SVG backend into strings.
//!
//! Titles and legends are HTML around the plots (better typography than SVG text); the
//! plots themselves carry only axes, grid and data.

use super::HtmlError;
use crate::model::Violation;
use crate::results::read::Intervals;
use crate::results::thresholds::format_ms;
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

pub(super) const INK: RGBColor = RGBColor(0x11, 0x18, 0x27);
const MUTED: RGBColor = RGBColor(0x6b, 0x72, 0x80);
const GRID: RGBColor = RGBColor(0xe5, 0xe7, 0xeb);
const AXIS: RGBColor = RGBColor(0xd1, 0xd5, 0xdb);
const FONT: &str = "sans-serif";
/// plotters writes font-size = size / 1.24: 15 gives 12px text in the SVG.
const LABEL_SIZE: u32 = 15;
/// The nines axis runs from the 0th percentile to 99.99% (x = -log10(1 - q)).
const NINES_MAX: f64 = 4.0;
const NINES_STEPS: u32 = 200;
const MIN_LOG_SPAN: f64 = 3.0;
const MAX_LOG_TICKS: usize = 6;

/// One run's data in a plot, with its colour.
pub(super) struct Series<'a, T: ?Sized> {
    pub color: RGBColor,
    pub data: &'a T,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Latency (ms, log) by percentile on the nines axis, one line per run.
pub(super) fn percentiles(
    series: &[Series<'_, Histogram<u64>>],
    size: (u32, u32),
) -> Result<String, HtmlError> {
    let lines: Vec<(RGBColor, Vec<(f64, f64)>)> = series
        .iter()
        .map(|s| (s.color, nines_curve(s.data)))
        .collect();
    let (lo, hi) = log_range(lines.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.1)));
    draw(size, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin_top(12)
            .margin_right(30)
            .x_label_area_size(30)
            .y_label_area_size(62)
            .build_cartesian_2d(
                0f64..NINES_MAX,
                (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
            )
            .map_err(plot)?;
        chart
            .configure_mesh()
            .x_labels(5)
            .y_labels(10)
            .x_label_formatter(&nines_label)
            .y_label_formatter(&|v| format_ms(*v))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS)
            .label_style((FONT, LABEL_SIZE).into_font().color(&MUTED))
            .draw()
            .map_err(plot)?;
        for (color, points) in &lines {
            if lines.len() == 1 {
                // A soft fill reads well for one run; two overlapping fills turn muddy.
                let fill = AreaSeries::new(points.iter().copied(), lo, color.mix(0.06))
                    .border_style(TRANSPARENT);
                chart.draw_series(fill).map_err(plot)?;
            }
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(plot)?;
        }
        Ok(())
    })
}

/// Violations as marks on the run's timeline, one lane per oracle.
pub(super) fn violation_strip(
    violations: &[Violation],
    elapsed_ms: f64,
    size: (u32, u32),
) -> Result<String, HtmlError> {
    let mut lanes: Vec<&str> = violations.iter().map(|v| v.oracle.name()).collect();
    lanes.sort_unstable();
    lanes.dedup();
    let end_s = (elapsed_ms / 1000.0).max(0.001);
    let lane_of = |name: &str| lanes.iter().position(|l| *l == name).unwrap_or(0) as f64;
    let label = |y: &f64| {
        let i = y.round();
        if (y - i).abs() < 0.01 && i >= 0.0 {
            lanes
                .get(i as usize)
                .map_or(String::new(), |s| s.to_string())
        } else {
            String::new()
        }
    };
    let height = lanes.len().max(1) as f64;
    draw(size, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin_top(8)
            .margin_right(30)
            .x_label_area_size(28)
            .y_label_area_size(96)
            .build_cartesian_2d(0f64..end_s, -0.5f64..height - 0.5)
            .map_err(plot)?;
        chart
            .configure_mesh()
            .x_labels(10)
            .y_labels(lanes.len() * 2 + 1)
            .x_label_formatter(&|s| seconds_label(*s))
            .y_label_formatter(&label)
            .disable_y_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS)
            .label_style((FONT, LABEL_SIZE).into_font().color(&MUTED))
            .draw()
            .map_err(plot)?;
        let marks = violations.iter().map(|v| {
            let (x, y) = (v.at_ms / 1000.0, lane_of(v.oracle.name()));
            PathElement::new(
                vec![(x, y - 0.32), (x, y + 0.32)],
                oracle_color(v.oracle.name()).mix(0.75).stroke_width(2),
            )
        });
        chart.draw_series(marks).map_err(plot)?;
        Ok(())
    })
}

/// What an over-time plot shows from each interval.
#[derive(Clone, Copy)]
pub(super) enum Gauge {
    Live,
    ReceivedPerSec,
    TurnP99,
}

/// One gauge over the run's time, one line per run.
pub(super) fn over_time(
    series: &[Series<'_, Intervals>],
    gauge: Gauge,
    size: (u32, u32),
) -> Result<String, HtmlError> {
    let lines: Vec<(RGBColor, Vec<(f64, f64)>)> = series
        .iter()
        .map(|s| (s.color, gauge_points(s.data, gauge)))
        .collect();
    let x_end = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let y_end = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.15;
    let y_fmt = move |v: &f64| match gauge {
        Gauge::TurnP99 if *v > 0.0 => format_ms(*v),
        _ => compact(*v),
    };
    draw(size, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin_top(12)
            .margin_right(30)
            .x_label_area_size(28)
            .y_label_area_size(58)
            .build_cartesian_2d(0f64..x_end, 0f64..y_end)
            .map_err(plot)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(5)
            .x_label_formatter(&|s| seconds_label(*s))
            .y_label_formatter(&y_fmt)
            .disable_x_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS)
            .label_style((FONT, LABEL_SIZE).into_font().color(&MUTED))
            .draw()
            .map_err(plot)?;
        for (color, points) in &lines {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(plot)?;
        }
        Ok(())
    })
}

fn gauge_points(intervals: &Intervals, gauge: Gauge) -> Vec<(f64, f64)> {
    intervals
        .series
        .iter()
        .filter_map(|p| {
            let length_ms = p.duration_ms.unwrap_or(intervals.interval_ms);
            let y = match gauge {
                Gauge::Live => Some(p.live),
                // A run's last interval is often a sliver: too short for a rate.
                Gauge::ReceivedPerSec if length_ms < intervals.interval_ms / 4.0 => None,
                Gauge::ReceivedPerSec => Some(p.received * 1000.0 / length_ms.max(1e-3)),
                Gauge::TurnP99 => p.turn_p99_ms,
            };
            y.filter(|y| y.is_finite()).map(|y| (p.t_ms / 1000.0, y))
        })
        .collect()
}

/// Oracle colours, shared with the HTML legend.
pub(super) fn oracle_color(name: &str) -> RGBColor {
    match name {
        "completeness" => RGBColor(0xdc, 0x26, 0x26),
        "identity" => RGBColor(0x7c, 0x3a, 0xed),
        "ordering" => RGBColor(0x08, 0x91, 0xb2),
        _ => INK,
    }
}

/// `(x, ms)` on the nines axis, from the histogram (µs).
fn nines_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    (0..=NINES_STEPS)
        .map(|i| {
            let x = NINES_MAX * f64::from(i) / f64::from(NINES_STEPS);
            let q = 1.0 - 10f64.powf(-x);
            (x, (h.value_at_quantile(q).max(1) as f64) / 1000.0)
        })
        .collect()
}

fn nines_label(x: &f64) -> String {
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    labels
        .get(i as usize)
        .map_or_else(String::new, |s| s.to_string())
}

/// A little beyond the data, and at least a factor of [`MIN_LOG_SPAN`] wide so that the
/// axis always shows two or more ticks.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (min, max) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let min = if min > 0.0 && min < f64::MAX {
        min
    } else {
        0.001
    };
    let (lo, hi) = (min * 0.8, max.max(min) * 1.25);
    let widen = (MIN_LOG_SPAN / (hi / lo)).max(1.0).sqrt();
    (lo / widen, hi * widen)
}

/// A time axis label in seconds without binary-fraction noise: `0.3s`, not
/// `0.30000000000000004s` (a tick is a sum of steps); at most three decimals, none
/// trailing.
fn seconds_label(s: f64) -> String {
    let text = format!("{s:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}s")
}

/// Ticks on a log axis: the densest of 1..9, 1-2-5, 1-3 or 1 per decade that gives at most
/// [`MAX_LOG_TICKS`] (every other decade, or sparser, over a very wide range).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    const MANTISSAS: [&[f64]; 4] = [
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 3.0],
        &[1.0],
    ];
    let first = lo.log10().floor() as i32;
    let last = hi.log10().ceil() as i32;
    let ticks_for = |mantissas: &[f64]| -> Vec<f64> {
        (first..=last)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|t| *t >= lo && *t <= hi)
            .collect()
    };
    let mut sparsest = Vec::new();
    for mantissas in MANTISSAS {
        let ticks = ticks_for(mantissas);
        if ticks.len() <= MAX_LOG_TICKS {
            return ticks;
        }
        sparsest = ticks;
    }
    let step = sparsest.len().div_ceil(MAX_LOG_TICKS);
    sparsest.into_iter().step_by(step).collect()
}

fn compact(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Draws into a fresh SVG of `size` and returns it, ready to inline in HTML.
fn draw(
    size: (u32, u32),
    paint: impl FnOnce(&Area<'_>) -> Result<(), HtmlError>,
) -> Result<String, HtmlError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        paint(&root)?;
        root.present().map_err(plot)?;
    }
    Ok(inline(&svg))
}

/// Inline SVG in HTML needs no namespace declaration; dropping it keeps the page free of
/// URLs. Width and height go to CSS so the plot scales with the page.
fn inline(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
        .replacen(
            "<svg width=",
            "<svg class=\"plot\" role=\"img\" data-width=",
            1,
        )
        .replacen(" height=", " data-height=", 1)
}

fn plot<E: std::fmt::Display>(e: E) -> HtmlError {
    HtmlError::Plot(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_labels_carry_no_binary_fraction_noise() {
        assert_eq!(seconds_label(0.1 + 0.2), "0.3s");
        assert_eq!(seconds_label(0.6000000000000001), "0.6s");
        assert_eq!(seconds_label(12.0), "12s");
        assert_eq!(seconds_label(0.0), "0s");
        assert_eq!(seconds_label(1.25), "1.25s");
    }

    #[test]
    fn log_ticks_pick_a_readable_density() {
        assert_eq!(log_ticks(0.08, 1.2), vec![0.1, 0.2, 0.5, 1.0]);
        assert_eq!(log_ticks(13.0, 37.0), vec![20.0, 30.0]);
        let wide = log_ticks(0.01, 50_000.0);
        assert!(wide.len() <= MAX_LOG_TICKS, "{wide:?}");
    }

    #[test]
    fn log_range_always_spans_two_ticks() {
        for (lo, hi) in [(1.0, 1.0), (0.5, 0.6), (20.0, 21.0), (0.001, 90.0)] {
            let (a, b) = log_range([lo, hi].into_iter());
            assert!(a < lo && b > hi);
            assert!(
                log_ticks(a, b).len() >= 2,
                "{lo}..{hi} → {a}..{b}: {:?}",
                log_ticks(a, b)
            );
        }
        assert!(log_range(std::iter::empty()).0 > 0.0);
    }

    #[test]
    fn the_nines_axis_is_labelled_at_whole_nines() {
        assert_eq!(nines_label(&0.0), "0%");
        assert_eq!(nines_label(&3.0), "99.9%");
        assert_eq!(nines_label(&2.5), "");
        let mut h = crate::metrics::new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let curve = nines_curve(&h);
        assert_eq!(curve.first().map(|p| p.1), Some(0.001));
        assert!(
            curve.windows(2).all(|w| w[0].1 <= w[1].1),
            "latency never falls with the percentile"
        );
    }

    #[test]
    fn inline_svg_carries_no_url() {
        let svg = percentiles(&[], (100, 80)).unwrap();
        assert!(svg.starts_with("<svg class=\"plot\""), "{svg}");
        assert!(!svg.contains("http"));
    }
}
