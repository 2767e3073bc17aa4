//! Formatting for people: relative times, durations, bytes.

use gantry_domain::view::{Millis, format_duration};

pub fn now_ms() -> Millis {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// "3m 05s ago", or "—" when unknown.
pub fn ago(at: Option<Millis>) -> String {
    match at {
        Some(at) => format!("{} ago", format_duration((now_ms() - at) / 1000)),
        None => "—".to_string(),
    }
}

/// A job's running time: to its finish, or to now while it runs.
pub fn run_time(started: Option<Millis>, finished: Option<Millis>) -> String {
    match started {
        Some(s) => format_duration((finished.unwrap_or_else(now_ms) - s) / 1000),
        None => "—".to_string(),
    }
}

/// UTC timestamp "2026-11-30 19:48:06".
pub fn timestamp(at: Millis) -> String {
    let secs = at.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

pub fn bytes(n: i64) -> String {
    gantry_domain::quantity::format_bytes(i128::from(n))
}

pub fn cores(millis: i64) -> String {
    gantry_domain::quantity::format_cpu(gantry_domain::quantity::Quantity::from_milli(i128::from(millis)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(1_795_996_800_000 + 3_723_000), "2026-11-30 01:02:03");
    }
}
