//! Chart data: series on shared timestamps, as columns, thinned and stacked
//! here so the browser draws what it receives and the server never sends
//! more points than a chart has pixels for.
//!
//! A value of None is a gap (no data, such as a stale cluster): charts break
//! the line there instead of drawing a zero that never happened.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::usage::{MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Span, point_count};
use crate::validate::Invalid;

pub const MAX_WIDTH_PX: u32 = 10_000;
/// More points than this per pixel cannot be seen, only sent.
pub const POINTS_PER_PIXEL: u64 = 2;
/// Steps a person reads easily, finest first.
pub const NICE_STEPS: [i64; 10] = [
    MS_PER_MINUTE,
    5 * MS_PER_MINUTE,
    15 * MS_PER_MINUTE,
    30 * MS_PER_MINUTE,
    MS_PER_HOUR,
    3 * MS_PER_HOUR,
    6 * MS_PER_HOUR,
    12 * MS_PER_HOUR,
    MS_PER_DAY,
    7 * MS_PER_DAY,
];
const WEEK: i64 = 7 * MS_PER_DAY;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Dollars,
    DollarsPerHour,
    Gpus,
    GpuHours,
    Percent,
    /// Things counted, such as pods or replicas.
    Count,
}

/// One line of a chart, a value per time of its frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// Series sharing one time axis (unix milliseconds), the way chart engines
/// such as uPlot take their data. A series shorter than `times` has gaps at
/// the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Frame {
    pub times: Vec<i64>,
    pub series: Vec<Series>,
    pub unit: Unit,
}

fn value(series: &Series, i: usize) -> Option<f64> {
    series.values.get(i).copied().flatten()
}

/// The step for a chart `width_px` wide: the one asked for when it gives at
/// most two points per pixel, or else the finest nice step coarser than it
/// that does, or else whole weeks.
pub fn bucket_width(span: Span, requested_step: i64, width_px: u32) -> Result<i64, Invalid> {
    if width_px == 0 || width_px > MAX_WIDTH_PX {
        return Err(Invalid::new("width", "must be 1 to 10,000 pixels"));
    }
    if requested_step <= 0 {
        return Err(Invalid::new("step", "must be longer than zero"));
    }
    let most = u64::from(width_px) * POINTS_PER_PIXEL;
    let fits = |step: i64| point_count(span, step) <= most;
    if fits(requested_step) {
        return Ok(requested_step);
    }
    if let Some(step) = NICE_STEPS.into_iter().find(|step| *step > requested_step && fits(*step)) {
        return Ok(step);
    }
    // Past the list, the fewest whole weeks that fit. A span touches at most
    // ⌊(len − 1) / step⌋ + 2 buckets, so a step of len / (most − 1) always
    // fits (most ≥ 2), and one under len / most never does.
    let week = WEEK.unsigned_abs();
    let len = span.len().unsigned_abs();
    let lowest = len.div_ceil(most).max(requested_step.unsigned_abs()).div_ceil(week).max(1);
    let always = len.div_ceil(most - 1).div_ceil(week).max(lowest);
    let to_weeks = |weeks: u64| i64::try_from(weeks).unwrap_or(i64::MAX / WEEK).saturating_mul(WEEK);
    let weeks = (lowest..always).take(1000).find(|weeks| fits(to_weeks(*weeks))).unwrap_or(always);
    Ok(to_weeks(weeks))
}

/// Index ranges of consecutive points, `factor` at a time.
fn chunks(len: usize, factor: usize) -> impl Iterator<Item = Range<usize>> {
    let factor = factor.max(1);
    (0..len).step_by(factor).map(move |start| start..start.saturating_add(factor).min(len))
}

/// Merges every `factor` points into one, for amounts per bucket (GPU-hours,
/// dollars): each new point holds the sum of the values it merges, so the
/// total is unchanged; one made only of gaps stays a gap. Each point takes
/// the time of the first it merges.
pub fn downsample_sum(frame: &Frame, factor: usize) -> Frame {
    let groups: Vec<Range<usize>> = chunks(frame.times.len(), factor).collect();
    let times = groups.iter().filter_map(|g| frame.times.get(g.start).copied()).collect();
    let series = frame
        .series
        .iter()
        .map(|s| Series { name: s.name.clone(), values: groups.iter().map(|g| sum_present(s, g.clone())).collect() })
        .collect();
    Frame { times, series, unit: frame.unit }
}

fn sum_present(series: &Series, range: Range<usize>) -> Option<f64> {
    range.filter_map(|i| value(series, i)).fold(None, |sum, v| Some(sum.unwrap_or(0.0) + v))
}

/// Thins a gauge (GPUs in use, utilisation) to about `target_points` while
/// keeping its spikes: the points are split into `target_points / 2` buckets
/// (at least one), and each bucket keeps its lowest and highest value in the
/// order they happened, at the times of its first and last point (M4-style
/// min-max). A bucket of one point keeps it as it is. A bucket that is all
/// gaps stays a gap; in a bucket with some data, the data's extremes are
/// kept, since a gap narrower than a bucket cannot be drawn anyway. A frame
/// already small enough is returned as it is, every gap included.
pub fn downsample_extremes(frame: &Frame, target_points: usize) -> Frame {
    let len = frame.times.len();
    if target_points >= len {
        return frame.clone();
    }
    let count = (target_points / 2).max(1);
    let buckets: Vec<Range<usize>> =
        (0..count).map(|b| b * len / count..(b + 1) * len / count).filter(|r| !r.is_empty()).collect();
    let mut times = Vec::with_capacity(buckets.len() * 2);
    for bucket in &buckets {
        times.extend(edges(bucket).filter_map(|i| frame.times.get(i).copied()));
    }
    let series = frame
        .series
        .iter()
        .map(|s| {
            let mut values = Vec::with_capacity(times.len());
            for bucket in &buckets {
                match extremes_in_order(s, bucket.clone()) {
                    _ if bucket.len() == 1 => values.push(value(s, bucket.start)),
                    Some((first, second)) => values.extend([Some(first), Some(second)]),
                    None => values.extend([None, None]),
                }
            }
            Series { name: s.name.clone(), values }
        })
        .collect();
    Frame { times, series, unit: frame.unit }
}

/// The first and last index of a bucket (one index for a bucket of one).
fn edges(bucket: &Range<usize>) -> impl Iterator<Item = usize> {
    let last = bucket.end.saturating_sub(1);
    std::iter::once(bucket.start).chain((last > bucket.start).then_some(last))
}

/// The lowest and highest value in `range`, the one that came first first.
fn extremes_in_order(series: &Series, range: Range<usize>) -> Option<(f64, f64)> {
    let mut lowest: Option<(usize, f64)> = None;
    let mut highest: Option<(usize, f64)> = None;
    for i in range {
        let Some(v) = value(series, i) else { continue };
        if lowest.is_none_or(|(_, low)| v < low) {
            lowest = Some((i, v));
        }
        if highest.is_none_or(|(_, high)| v > high) {
            highest = Some((i, v));
        }
    }
    let ((low_at, low), (high_at, high)) = (lowest?, highest?);
    Some(if low_at <= high_at { (low, high) } else { (high, low) })
}

/// Stacks the series in order: each band is its series plus all the bands
/// below, computed here so the browser draws the bands as they are. A gap
/// is a gap in its own band and counts as zero for the bands above.
pub fn stack(frame: &Frame) -> Frame {
    let mut below = vec![0.0; frame.times.len()];
    let series = frame
        .series
        .iter()
        .map(|s| {
            let values = below
                .iter_mut()
                .enumerate()
                .map(|(i, floor)| {
                    let own = value(s, i);
                    *floor += own.unwrap_or(0.0);
                    own.map(|_| *floor)
                })
                .collect();
            Series { name: s.name.clone(), values }
        })
        .collect();
    Frame { times: frame.times.clone(), series, unit: frame.unit }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(series: &[(&str, &[Option<f64>])]) -> Frame {
        let len = series.iter().map(|(_, values)| values.len()).max().unwrap_or(0);
        Frame {
            times: (0..len as i64).map(|i| i * MS_PER_MINUTE).collect(),
            series: series
                .iter()
                .map(|(name, values)| Series { name: name.to_string(), values: values.to_vec() })
                .collect(),
            unit: Unit::Gpus,
        }
    }

    #[test]
    fn steps_fit_the_chart_width() {
        let day = Span::new(0, MS_PER_DAY);
        assert_eq!(bucket_width(day, 5 * MS_PER_MINUTE, 1000), Ok(5 * MS_PER_MINUTE), "288 points fit 2,000");
        assert_eq!(bucket_width(day, MS_PER_MINUTE, 720), Ok(MS_PER_MINUTE), "1,440 points fit 1,440");
        assert_eq!(bucket_width(day, MS_PER_MINUTE, 719), Ok(5 * MS_PER_MINUTE), "1,440 do not fit 1,438");
        assert_eq!(bucket_width(day, MS_PER_MINUTE, 10), Ok(3 * MS_PER_HOUR), "8 points for 10 pixels");
        assert_eq!(bucket_width(day, 2 * MS_PER_MINUTE, 100), Ok(15 * MS_PER_MINUTE), "never finer than asked");
        let year = Span::new(0, 400 * MS_PER_DAY);
        assert_eq!(bucket_width(year, MS_PER_HOUR, 400), Ok(12 * MS_PER_HOUR), "800 points fit 800");
        assert_eq!(bucket_width(year, MS_PER_HOUR, 399), Ok(MS_PER_DAY));
        assert_eq!(bucket_width(year, MS_PER_HOUR, 10), Ok(3 * WEEK), "whole weeks past the list");
        for (width, span) in [(1, year), (3, year), (1, Span::new(5, 5 + 365 * 30 * MS_PER_DAY))] {
            let step = bucket_width(span, MS_PER_HOUR, width).unwrap();
            assert!(point_count(span, step) <= 2 * u64::from(width), "{width}: {step}");
            assert!(point_count(span, step - WEEK) > 2 * u64::from(width), "{width}: a week less would fit");
        }
        assert_eq!(bucket_width(day, MS_PER_HOUR, 0).unwrap_err().field, "width");
        assert_eq!(bucket_width(day, MS_PER_HOUR, 10_001).unwrap_err().field, "width");
        assert_eq!(bucket_width(day, 0, 100).unwrap_err().field, "step");
        assert_eq!(bucket_width(year, 30 * MS_PER_DAY, 2), Ok(15 * WEEK), "never finer than asked, past the list too");
    }

    #[test]
    fn sums_are_preserved_and_all_gap_buckets_stay_gaps() {
        let input = frame(&[("cost", &[Some(1.0), Some(2.0), None, Some(4.0), None, None, Some(0.5)])]);
        let merged = downsample_sum(&input, 2);
        assert_eq!(merged.times, [0, 2 * MS_PER_MINUTE, 4 * MS_PER_MINUTE, 6 * MS_PER_MINUTE]);
        assert_eq!(merged.series[0].values, [Some(3.0), Some(4.0), None, Some(0.5)]);
        assert_eq!(downsample_sum(&input, 1), input);
        assert_eq!(downsample_sum(&input, 0), input, "a zero factor keeps every point");
        assert_eq!(downsample_sum(&input, 100).series[0].values, [Some(7.5)]);
    }

    #[test]
    fn extremes_keep_spikes_in_time_order() {
        let spike = [Some(5.0), Some(5.0), Some(99.0), Some(5.0), Some(1.0), Some(5.0), Some(5.0), Some(5.0)];
        let input = frame(&[("gpus", &spike)]);
        let thinned = downsample_extremes(&input, 4);
        assert_eq!(thinned.times, [0, 3 * MS_PER_MINUTE, 4 * MS_PER_MINUTE, 7 * MS_PER_MINUTE]);
        assert_eq!(thinned.series[0].values, [Some(5.0), Some(99.0), Some(1.0), Some(5.0)], "the high before the low");
        let falling = frame(&[("gpus", &[Some(9.0), Some(3.0), Some(7.0), Some(1.0)])]);
        assert_eq!(downsample_extremes(&falling, 2).series[0].values, [Some(9.0), Some(1.0)]);
        assert_eq!(downsample_extremes(&input, 8), input, "small enough already");
    }

    #[test]
    fn gaps_survive_thinning() {
        let values = [Some(1.0), None, None, None, None, Some(3.0), Some(2.0), None];
        let input = frame(&[("util", &values), ("other", &[Some(1.0)])]);
        let thinned = downsample_extremes(&input, 6);
        // Buckets: [0,2) [2,5) [5,8).
        assert_eq!(thinned.series[0].values, [Some(1.0), Some(1.0), None, None, Some(3.0), Some(2.0)]);
        assert_eq!(
            thinned.series[1].values,
            [Some(1.0), Some(1.0), None, None, None, None],
            "a short series has gaps after its end"
        );
        assert_eq!(thinned.times.len(), thinned.series[0].values.len());
        assert_eq!(downsample_extremes(&input, 100).series[0].values, values);
        let empty = frame(&[]);
        assert_eq!(downsample_extremes(&empty, 0), empty);
    }

    #[test]
    fn stacking_adds_the_bands_below_and_keeps_gaps() {
        let input = frame(&[
            ("a", &[Some(1.0), Some(1.0), Some(1.0)]),
            ("b", &[Some(2.0), None, Some(2.0)]),
            ("c", &[Some(3.0), Some(3.0), None]),
        ]);
        let stacked = stack(&input);
        let bands: Vec<&[Option<f64>]> = stacked.series.iter().map(|s| s.values.as_slice()).collect();
        assert_eq!(bands[0], [Some(1.0), Some(1.0), Some(1.0)]);
        assert_eq!(bands[1], [Some(3.0), None, Some(3.0)]);
        assert_eq!(bands[2], [Some(6.0), Some(4.0), None], "b's gap counts as zero under c");
        assert_eq!((stacked.times, stacked.unit), (input.times, Unit::Gpus));
    }

    #[test]
    fn frames_travel_as_json() {
        let input = frame(&[("a", &[Some(1.5), None])]);
        let json = serde_json::to_string(&Frame { unit: Unit::DollarsPerHour, ..input }).unwrap();
        assert_eq!(
            json,
            r#"{"times":[0,60000],"series":[{"name":"a","values":[1.5,null]}],"unit":"dollars_per_hour"}"#
        );
    }

    proptest! {
        #[test]
        fn downsampling_sums_keeps_the_total(
            values in proptest::collection::vec(proptest::option::of(-1_000_000i64..1_000_000), 0..300),
            factor in 0..50usize,
        ) {
            // Whole numbers keep f64 addition exact, so the total must match to the bit.
            let values: Vec<Option<f64>> = values.into_iter().map(|v| v.map(|v| v as f64)).collect();
            let input = frame(&[("x", &values)]);
            let merged = downsample_sum(&input, factor);
            let total = |f: &Frame| f.series[0].values.iter().flatten().sum::<f64>();
            prop_assert_eq!(total(&merged), total(&input));
            prop_assert_eq!(merged.series[0].values.iter().filter(|v| v.is_some()).count() == 0, values.iter().all(Option::is_none));
            prop_assert_eq!(merged.times.len(), merged.series[0].values.len());
        }

        #[test]
        fn thinning_keeps_each_series_extremes(
            values in proptest::collection::vec(proptest::option::of(-1e6..1e6f64), 1..300),
            target in 0..100usize,
        ) {
            let input = frame(&[("x", &values)]);
            let thinned = downsample_extremes(&input, target);
            let present = |f: &Frame| f.series[0].values.iter().flatten().copied().collect::<Vec<f64>>();
            let (before, after) = (present(&input), present(&thinned));
            let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
            prop_assert_eq!((max(&before), min(&before)), (max(&after), min(&after)));
            let most = if target >= values.len() { values.len() } else { target.max(2) };
            prop_assert!(thinned.times.len() <= most, "{} points for a target of {}", thinned.times.len(), target);
            prop_assert!(thinned.times.windows(2).all(|w| w[0] < w[1]) || thinned.times.len() < 2);
        }
    }
}
