//! Formatting for people: relative times, durations, bytes.

use gantry_domain::view::{Millis, format_duration};

pub fn now_ms() -> Millis {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        gantry_domain::view::now_ms()
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
    gantry_domain::view::utc_timestamp(at)
}

/// A window's end points, "2026-11-30 19:48 UTC".
pub fn date_time(at: Millis) -> String {
    let full = timestamp(at);
    format!("{} UTC", full.get(..16).unwrap_or(&full))
}

/// A time as the viewer reads it: in their own time zone in the browser,
/// in UTC on the server (which does not know the viewer's).
pub fn local_time(at: Millis) -> String {
    #[cfg(target_arch = "wasm32")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at as f64));
        String::from(date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        date_time(at)
    }
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
