//! `<TimeSeries>`, Gantry's one chart, and `<RangeBar>`, the page's time
//! range.
//!
//! The server renders each chart's frame, a static SVG of its lines and a
//! legend that is also its value table (latest, mean, peak or total per
//! series), so a page is useful before and without JavaScript. Once
//! hydrated, the chart is drawn by uPlot (`app/js/chart.js`, which loads
//! uPlot only when a chart is first drawn): crosshair and tooltip synced
//! across the page's charts, drag to zoom (the URL follows, so Back goes
//! back), legend click to isolate a series and modifier-click to toggle
//! it, the legend showing the values under the cursor. Stacks are computed
//! here in Rust, for the series shown, with [`series::stack`].
//!
//! The range lives in the URL (`range`, or another parameter a page names),
//! and so does the auto-refresh interval (`refresh`). The server sizes each
//! chart's buckets to its width; the browser sends its real width once it
//! knows it, and fetches again only when that changes the buckets.

use gantry_domain::chart::{self, Chart, Dash, SeriesQuery, Summary};
use gantry_domain::series::{self, Frame, Series};
use gantry_domain::view::ResourceKind;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_location, use_query_map};
use leptos_router::params::ParamsMap;

use crate::components::common::ErrorNote;

/// The width a chart is first rendered at, before the browser has measured
/// it: half a wide screen, where the overview's charts sit side by side, and
/// as wide as a phone's. Its answer is written into the page for hydration,
/// so it is kept small: a day in 5-minute buckets (289 points), where the
/// API's default width (1,000 px) gives minutes (1,441 points, five times
/// the page's bytes). A chart measured wider may fetch again, at a finer
/// step; one that gets the same buckets at its width keeps what the page
/// brought (a phone's, or half a wide screen's, over a day or longer).
const FIRST_WIDTH_PX: u32 = 480;

/// The chart palette; `app/js/chart.js` has the same list.
pub const PALETTE: [&str; 15] = [
    "#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0", "#508642", "#cca300",
    "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62",
];

pub fn color(index: u8) -> &'static str {
    PALETTE[usize::from(index) % PALETTE.len()]
}

/// The range presets offered above every chart.
pub const PRESETS: [(&str, &str); 7] = [
    ("1h", "1 h"),
    ("6h", "6 h"),
    ("24h", "24 h"),
    ("7d", "7 d"),
    ("30d", "30 d"),
    ("month", "this month"),
    ("lastmonth", "last month"),
];

/// The question about one workload's chart (`workload` or `workload_cost`),
/// the workload named as `Deployment/name` or `Job/name`.
pub fn workload_query(chart: &str, cluster: &str, namespace: &str, workload: String) -> chart::SeriesQuery {
    chart::SeriesQuery {
        chart: chart.into(),
        cluster: cluster.into(),
        namespace: namespace.into(),
        workload,
        ..Default::default()
    }
}

/// Auto-refresh choices: (URL value, label, milliseconds).
pub const REFRESHES: [(&str, &str, u32); 4] =
    [("off", "off", 0), ("30s", "30 s", 30_000), ("1m", "1 min", 60_000), ("5m", "5 min", 300_000)];

/// Live updates refresh a chart at most this often (its data changes when
/// the ledger records, not on every watch event).
#[cfg(feature = "hydrate")]
const LIVE_EVERY_MS: f64 = 15_000.0;

/// The page's range: the URL's `param`, or `from`/`to` as a form without
/// JavaScript sends them (UTC), or `default`.
pub fn use_range(param: &'static str, default: String) -> Memo<String> {
    let params = use_query_map();
    Memo::new(move |_| {
        params.with(|p| {
            if let Some(range) = p.get(param).filter(|r| !r.trim().is_empty()) {
                return range;
            }
            match (p.get("from"), p.get("to")) {
                (Some(from), Some(to)) if !from.is_empty() && !to.is_empty() => {
                    format!("{},{}", utc_instant(&from), utc_instant(&to))
                }
                _ => default.clone(),
            }
        })
    })
}

/// A `datetime-local` value ("2026-11-30T10:00") as RFC 3339 in UTC.
fn utc_instant(local: &str) -> String {
    let local = local.trim();
    match local.len() {
        16 => format!("{local}:00Z"),
        19 => format!("{local}Z"),
        _ => local.to_string(),
    }
}

/// The auto-refresh interval in the URL, in milliseconds (0: off).
pub fn use_refresh() -> Memo<u32> {
    let params = use_query_map();
    Memo::new(move |_| {
        params.with(|p| {
            let chosen = p.get("refresh").unwrap_or_default();
            REFRESHES.iter().find(|(value, _, _)| *value == chosen).map_or(0, |(_, _, ms)| *ms)
        })
    })
}

/// The current URL with `changes` applied (None removes a parameter).
fn href_with(path: &str, params: &ParamsMap, changes: &[(&str, Option<String>)]) -> String {
    let mut params = params.clone();
    for (key, value) in changes {
        params.remove(key);
        if let Some(value) = value {
            params.insert(key.to_string(), value.clone());
        }
    }
    format!("{path}{}", params.to_query_string())
}

/// The page's range picker: presets, an absolute range, zoom out, and the
/// auto-refresh interval, all links or plain GET forms, so they work without
/// JavaScript and the URL can be shared.
#[component]
pub fn RangeBar(
    /// The URL parameter the range lives in.
    #[prop(default = "range")]
    param: &'static str,
    #[prop(default = "24h".into(), into)] default: String,
    /// The label of a first choice, `range=life`, for one workload's charts
    /// (such as "the job's life").
    #[prop(optional)]
    life: Option<&'static str>,
) -> impl IntoView {
    let params = use_query_map();
    let location = use_location();
    let range = use_range(param, default);
    let refresh = use_refresh();
    let link = move |changes: Vec<(&'static str, Option<String>)>| {
        let mut all = changes;
        all.extend([("from", None), ("to", None)]);
        params.with(|p| href_with(&location.pathname.get(), p, &all))
    };
    let hydrated = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| hydrated.set(true));
    let zoom_out = move || {
        let now = crate::format::now_ms();
        let current = range.get();
        let span = gantry_domain::usage::parse_window(&current, now).ok();
        let (start, end) = span.map_or((now, now), |s| (s.start, s.end));
        link(vec![(param, Some(chart::zoom_out(&current, start, end, now)))])
    };
    let submit = {
        #[cfg(feature = "hydrate")]
        let navigate = leptos_router::hooks::use_navigate();
        move |event: leptos::ev::SubmitEvent| {
            #[cfg(feature = "hydrate")]
            if let Some(range) = absolute_range(&event) {
                event.prevent_default();
                let changes = [(param, Some(range)), ("from", None), ("to", None)];
                let target = params.with_untracked(|p| href_with(&location.pathname.get_untracked(), p, &changes));
                navigate(&target, Default::default());
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = event;
        }
    };
    let hidden: Vec<(String, String)> = params.with_untracked(|p| {
        p.latest_values()
            .filter(|(k, _)| ![param, "from", "to"].contains(&k.as_ref()))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
    view! {
        <div class="rangebar" data-testid="range-bar">
            <nav class="presets" aria-label="time range">
                {life.map(|label| {
                    view! {
                        <A
                            href=move || link(vec![(param, Some(chart::LIFE.to_string()))])
                            attr:class=move || if range.get() == chart::LIFE { "preset current" } else { "preset" }
                            attr:data-range=chart::LIFE
                        >
                            {label}
                        </A>
                    }
                })}
                {PRESETS
                    .iter()
                    .map(|(value, label)| {
                        let value = *value;
                        view! {
                            <A
                                href=move || link(vec![(param, Some(value.to_string()))])
                                attr:class=move || if range.get() == value { "preset current" } else { "preset" }
                                attr:data-range=value
                            >
                                {*label}
                            </A>
                        }
                    })
                    .collect_view()}
                // A workload's whole life has nothing around it to zoom out to.
                <Show when=move || range.get() != chart::LIFE>
                    <A href=zoom_out attr:class="preset" attr:data-testid="zoom-out" attr:title="Twice the range">
                        "Zoom out"
                    </A>
                </Show>
            </nav>
            <form method="get" class="absolute" data-testid="absolute-range" on:submit=submit>
                {hidden.into_iter().map(|(k, v)| view! { <input type="hidden" name=k value=v /> }).collect_view()}
                <label>"From " <input type="datetime-local" name="from" required /></label>
                <label>"to " <input type="datetime-local" name="to" required /></label>
                <span class="muted small">{move || if hydrated.get() { "(your time zone)" } else { "(UTC)" }}</span>
                <button type="submit">"Show"</button>
            </form>
            <nav class="refresh" aria-label="auto-refresh">
                <span class="muted">"Refresh "</span>
                {REFRESHES
                    .iter()
                    .map(|(value, label, ms)| {
                        let (value, ms) = (*value, *ms);
                        let target = if value == "off" { None } else { Some(value.to_string()) };
                        view! {
                            <A
                                href=move || link(vec![("refresh", target.clone())])
                                attr:class=move || if refresh.get() == ms { "preset current" } else { "preset" }
                                attr:data-refresh=value
                            >
                                {*label}
                            </A>
                        }
                    })
                    .collect_view()}
            </nav>
        </div>
    }
}

/// With JavaScript, the absolute range is read in the viewer's time zone,
/// for the URL as Unix milliseconds.
#[cfg(feature = "hydrate")]
fn absolute_range(event: &leptos::ev::SubmitEvent) -> Option<String> {
    use wasm_bindgen::JsCast;
    let form = event.target()?.dyn_into::<web_sys::HtmlFormElement>().ok()?;
    let value = |name: &str| {
        form.elements()
            .named_item(name)
            .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
            .map(|i| i.value())
            .unwrap_or_default()
    };
    // A date and time without a zone is local time in JavaScript.
    let local = |text: String| js_sys::Date::new(&wasm_bindgen::JsValue::from_str(&text)).get_time();
    let (from, to) = (local(value("from")), local(value("to")));
    (!from.is_nan() && !to.is_nan()).then(|| format!("{},{}", from as i64, to as i64))
}

/// What a chart draws: each shown series' values (stacked over the shown
/// ones below it when the chart stacks), and gaps for the hidden.
pub fn drawn(chart: &Chart, shown: &[bool]) -> Vec<Vec<Option<f64>>> {
    let visible = |i: usize| shown.get(i).copied().unwrap_or(true);
    let kept = Frame {
        times: chart.frame.times.clone(),
        series: chart
            .frame
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| Series {
                name: s.name.clone(),
                values: if visible(i) { s.values.clone() } else { vec![None; s.values.len()] },
            })
            .collect(),
        unit: chart.frame.unit,
    };
    let frame = if chart.stacked { series::stack(&kept) } else { kept };
    frame.series.into_iter().map(|s| s.values).collect()
}

/// Legend click: isolate the series, or show all again when it already is
/// the only one; with a modifier key, toggle it alone.
pub fn legend_click(shown: &[bool], index: usize, toggle: bool) -> Vec<bool> {
    let mut next = shown.to_vec();
    if index >= next.len() {
        return next;
    }
    if toggle {
        next[index] = !next[index];
        return next;
    }
    let alone = next.iter().enumerate().all(|(i, s)| *s == (i == index));
    next.iter_mut().enumerate().for_each(|(i, s)| *s = alone || i == index);
    next
}

const SVG_WIDTH: f64 = 1000.0;

/// The chart as static SVG paths (one per run between gaps), for the first
/// paint and for readers without JavaScript.
fn static_paths(chart: &Chart, height: f64) -> Vec<(String, Dash, String)> {
    let values = drawn(chart, &vec![true; chart.frame.series.len()]);
    let (start, end) = (chart.start as f64, chart.end.max(chart.start + 1) as f64);
    let top = values.iter().flatten().flatten().copied().fold(0.0_f64, f64::max).max(1e-9) * 1.08;
    let x = |t: i64| (t as f64 - start) / (end - start) * SVG_WIDTH;
    let y = |v: f64| height - v / top * height;
    values
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let style = chart.styles.get(i).copied().unwrap_or_default();
            let mut d = String::new();
            let mut pen_down = false;
            for (t, v) in chart.frame.times.iter().zip(column) {
                match v {
                    Some(v) => {
                        d.push_str(&format!("{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x(*t), y(*v)));
                        pen_down = true;
                    }
                    None => pen_down = false,
                }
            }
            (color(style.color).to_string(), style.dash, d)
        })
        .collect()
}

fn dasharray(dash: Dash) -> &'static str {
    match dash {
        Dash::Solid => "",
        Dash::Dashed => "6 4",
        Dash::Dotted => "2 3",
    }
}

/// The first paint: lines as SVG, markers, and what is missing or empty.
#[component]
fn StaticChart(chart: Chart, height: u32) -> impl IntoView {
    if let Some(why) = chart.empty.clone() {
        return view! { <p class="chart-empty" data-testid="chart-empty">{why}</p> }.into_any();
    }
    let h = f64::from(height);
    let paths = static_paths(&chart, h);
    let (start, end) = (chart.start as f64, chart.end.max(chart.start + 1) as f64);
    let markers: Vec<f64> = chart.markers.iter().map(|m| (m.at as f64 - start) / (end - start) * SVG_WIDTH).collect();
    view! {
        <svg
            class="chart-static"
            viewBox=format!("0 0 {SVG_WIDTH} {height}")
            preserveAspectRatio="none"
            role="img"
            aria-label="chart"
        >
            {markers
                .into_iter()
                .map(|x| view! { <line class="marker" x1=x x2=x y1="0" y2=height /> })
                .collect_view()}
            {paths
                .into_iter()
                .map(|(stroke, dash, d)| {
                    view! {
                        <path
                            d=d
                            fill="none"
                            stroke=stroke
                            stroke-width="1.5"
                            stroke-dasharray=dasharray(dash)
                            vector-effect="non-scaling-stroke"
                        />
                    }
                })
                .collect_view()}
        </svg>
    }
    .into_any()
}

/// The legend, which is also the value table: per series its value under
/// the cursor, and its latest, mean and peak (or total and peak bucket).
#[component]
fn Legend(chart: Chart, shown: RwSignal<Vec<bool>>, hovered: RwSignal<Option<usize>>) -> impl IntoView {
    let unit = chart.frame.unit;
    let total = chart.summary == Summary::Total;
    let times = chart.frame.times.clone();
    let hovered_time = move || {
        hovered
            .get()
            .and_then(|i| times.get(i).copied())
            .map_or_else(|| "At cursor".to_string(), crate::format::local_time)
    };
    let rows = chart
        .frame
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let figures = chart::figures(&s.values);
            let style = chart.styles.get(i).copied().unwrap_or_default();
            let values = s.values.clone();
            let name = s.name.clone();
            let show = move |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| chart::format_value(unit, v));
            let at_cursor = move || {
                hovered.get().map_or_else(|| "—".to_string(), |h| show(values.get(h).copied().flatten()))
            };
            let swatch = format!(
                "background:{};{}",
                color(style.color),
                match style.dash {
                    Dash::Solid => "",
                    Dash::Dashed => "opacity:.55",
                    Dash::Dotted => "opacity:.35",
                }
            );
            let on_click = move |ev: leptos::ev::MouseEvent| {
                let toggle = ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key();
                shown.update(|current| *current = legend_click(current, i, toggle));
            };
            view! {
                <tr class:off=move || !shown.with(|s| s.get(i).copied().unwrap_or(true)) data-series=name.clone()>
                    <td>
                        <button type="button" class="legend-key" on:click=on_click title="Click to show only this; Ctrl-click to hide or show it">
                            <span class="swatch" style=swatch></span>
                            {name.clone()}
                        </button>
                    </td>
                    <td class="num at-cursor">{at_cursor}</td>
                    {if total {
                        view! {
                            <td class="num">{show(figures.total)}</td>
                            <td class="num">{show(figures.peak)}</td>
                        }
                            .into_any()
                    } else {
                        view! {
                            <td class="num">{show(figures.latest)}</td>
                            <td class="num">{show(figures.mean)}</td>
                            <td class="num">{show(figures.peak)}</td>
                        }
                            .into_any()
                    }}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="grid small chart-legend" data-testid="chart-values">
                <thead>
                    <tr>
                        <th>"Series"</th>
                        <th class="num at-cursor">{hovered_time}</th>
                        {if total {
                            view! {
                                <th class="num">"Total"</th>
                                <th class="num">"Largest bucket"</th>
                            }
                                .into_any()
                        } else {
                            view! {
                                <th class="num">"Latest"</th>
                                <th class="num">"Mean"</th>
                                <th class="num">"Peak"</th>
                            }
                                .into_any()
                        }}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

fn step_label(step: i64) -> String {
    let minutes = step / 60_000;
    match minutes {
        m if m % (24 * 60 * 7) == 0 => format!("{} week buckets", m / (24 * 60 * 7)),
        m if m % (24 * 60) == 0 => format!("{} day buckets", m / (24 * 60)),
        m if m % 60 == 0 => format!("{} h buckets", m / 60),
        m => format!("{m} min buckets"),
    }
}

/// One chart. `query` names the chart and its scope; the page's range and
/// the chart's width complete it.
#[component]
pub fn TimeSeries(
    #[prop(into)] title: Signal<String>,
    #[prop(into)] query: Signal<SeriesQuery>,
    /// The URL parameter the page keeps its range in.
    #[prop(default = "range")]
    range_param: &'static str,
    #[prop(default = "24h".into(), into)] default_range: String,
    #[prop(default = 240)] height: u32,
    /// Kinds of live change that should refresh the chart (at most every 15 s).
    #[prop(optional)]
    live: &'static [ResourceKind],
    /// Charts with the same key share the crosshair.
    #[prop(default = "page")]
    sync: &'static str,
    #[prop(optional, into)] testid: String,
) -> impl IntoView {
    let range = use_range(range_param, default_range);
    let width = RwSignal::new(FIRST_WIDTH_PX);
    let tick = RwSignal::new(0u64);
    let request = Memo::new(move |_| {
        let mut q = query.get();
        if q.range.is_empty() {
            q.range = range.get();
        }
        q.width = width.get().to_string();
        q
    });
    let data = crate::loaded::load(move || (request.get(), tick.get()), |(q, _)| crate::api::costs::series(q));
    let shown = RwSignal::new(Vec::<bool>::new());
    let hovered = RwSignal::new(None::<usize>);
    let pending = RwSignal::new(false);
    let canvas = NodeRef::<leptos::html::Div>::new();
    let live_drawn = RwSignal::new(false);
    // A new set of series shows all of them again.
    Effect::new(move |previous: Option<Vec<String>>| {
        let names: Vec<String> = data
            .get()
            .and_then(Result::ok)
            .map(|c| c.frame.series.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default();
        if previous.as_ref() != Some(&names) {
            shown.set(vec![true; names.len()]);
        }
        names
    });
    #[cfg(feature = "hydrate")]
    engine::drive(engine::Driver {
        data,
        shown,
        hovered,
        width,
        tick,
        canvas,
        live_drawn,
        live,
        height,
        sync,
        range_param,
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (live, sync, range_param, &hovered, &live_drawn, &canvas);
    let testid = if testid.is_empty() { "chart".to_string() } else { testid };
    view! {
        <figure class="chart" class:live=move || live_drawn.get() class:pending=move || pending.get() data-testid=testid>
            <figcaption class="chart-head">
                <span class="chart-title">{title}</span>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        data.await.ok().map(|c| {
                            let resolution = if c.resolution == "exact" { "exact, from the ledger" } else { "from hourly rollups" };
                            view! {
                                <span
                                    class="chart-meta muted small"
                                    data-start=c.start
                                    data-end=c.end
                                    data-step=c.step
                                    data-points=c.frame.times.len()
                                >
                                    {format!("{} · {resolution}", step_label(c.step))}
                                </span>
                            }
                        })
                    })}
                </Transition>
            </figcaption>
            <div class="chart-body" style=format!("min-height:{height}px")>
                <div class="chart-canvas" node_ref=canvas></div>
                <Transition fallback=move || view! { <p class="chart-loading">"Loading…"</p> } set_pending=pending.write_only()>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(chart) => view! { <StaticChart chart height /> }.into_any(),
                            Err(error) => view! { <ErrorNote error /> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    data.await.ok().map(|chart| {
                        let notes = chart.notes.clone();
                        let empty = chart.empty.is_some();
                        view! {
                            {(!notes.is_empty()).then(|| view! {
                                <ul class="chart-notes" data-testid="chart-notes">
                                    {notes.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
                                </ul>
                            })}
                            {(!empty).then(|| view! { <Legend chart shown hovered /> })}
                        }
                    })
                })}
            </Transition>
        </figure>
    }
}

/// The browser side: uPlot through `app/js/chart.js`.
#[cfg(feature = "hydrate")]
mod engine {
    use gantry_domain::chart::Chart;
    use leptos::prelude::*;
    use serde::Serialize;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;

    use super::*;
    use gantry_domain::usage::Span;

    #[wasm_bindgen(module = "/js/chart.js")]
    extern "C" {
        #[wasm_bindgen(js_name = mountChart)]
        #[allow(clippy::too_many_arguments)]
        fn mount_chart(
            el: &web_sys::HtmlElement,
            spec: &str,
            times: &js_sys::Float64Array,
            drawn: &js_sys::Array,
            raw: &js_sys::Array,
            zoom: &js_sys::Function,
            cursor: &js_sys::Function,
            resized: &js_sys::Function,
        ) -> js_sys::Promise;

        #[wasm_bindgen(js_name = updateChart)]
        fn update_chart(
            state: &JsValue,
            el: &web_sys::HtmlElement,
            spec: &str,
            times: &js_sys::Float64Array,
            drawn: &js_sys::Array,
            raw: &js_sys::Array,
        );

        #[wasm_bindgen(js_name = destroyChart)]
        fn destroy_chart(state: &JsValue);
    }

    pub struct Driver {
        pub data: crate::loaded::Loaded<Chart>,
        pub shown: RwSignal<Vec<bool>>,
        pub hovered: RwSignal<Option<usize>>,
        pub width: RwSignal<u32>,
        pub tick: RwSignal<u64>,
        pub canvas: NodeRef<leptos::html::Div>,
        pub live_drawn: RwSignal<bool>,
        pub live: &'static [ResourceKind],
        pub height: u32,
        pub sync: &'static str,
        pub range_param: &'static str,
    }

    #[derive(Serialize)]
    struct Spec<'a> {
        key: String,
        unit: gantry_domain::series::Unit,
        names: Vec<&'a str>,
        colors: Vec<u8>,
        dashes: Vec<gantry_domain::chart::Dash>,
        shown: &'a [bool],
        stacked: bool,
        markers: &'a [gantry_domain::chart::Marker],
        height: u32,
        sync: &'a str,
        start: i64,
        end: i64,
    }

    struct Drawing {
        spec: String,
        times: js_sys::Float64Array,
        drawn: js_sys::Array,
        raw: js_sys::Array,
    }

    fn columns(values: &[Vec<Option<f64>>]) -> js_sys::Array {
        values
            .iter()
            .map(|column| {
                let numbers: Vec<f64> = column.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
                JsValue::from(js_sys::Float64Array::from(numbers.as_slice()))
            })
            .collect()
    }

    fn drawing(chart: &Chart, shown: &[bool], height: u32, sync: &str) -> Drawing {
        let names: Vec<&str> = chart.frame.series.iter().map(|s| s.name.as_str()).collect();
        let colors: Vec<u8> = chart.styles.iter().map(|s| s.color).collect();
        let dashes: Vec<gantry_domain::chart::Dash> = chart.styles.iter().map(|s| s.dash).collect();
        let key = format!("{names:?}{colors:?}{dashes:?}{shown:?}{}{:?}", chart.stacked, chart.frame.unit);
        let spec = Spec {
            key,
            unit: chart.frame.unit,
            names,
            colors,
            dashes,
            shown,
            stacked: chart.stacked,
            markers: &chart.markers,
            height,
            sync,
            start: chart.start,
            end: chart.end,
        };
        let times: Vec<f64> = chart.frame.times.iter().map(|t| *t as f64).collect();
        let raw: Vec<Vec<Option<f64>>> = chart.frame.series.iter().map(|s| s.values.clone()).collect();
        Drawing {
            spec: serde_json::to_string(&spec).unwrap_or_default(),
            times: js_sys::Float64Array::from(times.as_slice()),
            drawn: columns(&super::drawn(chart, shown)),
            raw: columns(&raw),
        }
    }

    /// What lives as long as the chart does in the browser.
    #[derive(Default)]
    struct Instance {
        state: Option<JsValue>,
        mounting: bool,
        latest: Option<Drawing>,
        callbacks: Vec<Closure<dyn Fn(f64, f64)>>,
        cursor: Option<Closure<dyn Fn(i32)>>,
        resized: Option<Closure<dyn Fn(f64)>>,
        last_fetch: f64,
        live_timer: Option<TimeoutHandle>,
    }

    fn now() -> f64 {
        js_sys::Date::now()
    }

    fn visible() -> bool {
        !document().hidden()
    }

    pub fn drive(d: Driver) {
        let Driver { data, shown, hovered, width, tick, canvas, live_drawn, live, height, sync, range_param } = d;
        let instance = StoredValue::new_local(Instance::default());
        let navigate = leptos_router::hooks::use_navigate();
        let location = leptos_router::hooks::use_location();
        let params = leptos_router::hooks::use_query_map();

        // The real width: fetch again when it changes the buckets.
        let fits = move |w: u32| {
            let chart = data.get_untracked().and_then(Result::ok)?;
            let finest = if chart.resolution == "exact" {
                gantry_domain::chart::FINEST_STEP_MS
            } else {
                gantry_domain::usage::MS_PER_HOUR
            };
            let step = gantry_domain::series::bucket_width(Span::new(chart.start, chart.end), finest, w).ok()?;
            (step != chart.step).then_some(w)
        };
        let resize = move |w: u32| {
            if let Some(w) = fits(w) {
                width.set(w.clamp(1, gantry_domain::series::MAX_WIDTH_PX));
            }
        };

        let zoom = Closure::<dyn Fn(f64, f64)>::new(move |start: f64, end: f64| {
            if end - start < 60_000.0 {
                return;
            }
            let target = params.with_untracked(|p| {
                super::href_with(
                    &location.pathname.get_untracked(),
                    p,
                    &[(range_param, Some(format!("{},{}", start as i64, end as i64))), ("from", None), ("to", None)],
                )
            });
            navigate(&target, Default::default());
        });
        let cursor = Closure::<dyn Fn(i32)>::new(move |index: i32| {
            hovered.set(usize::try_from(index).ok());
        });
        let resized = Closure::<dyn Fn(f64)>::new(move |w: f64| resize(w.round() as u32));
        instance.update_value(|i| {
            i.callbacks = vec![zoom];
            i.cursor = Some(cursor);
            i.resized = Some(resized);
        });

        // Draw, or draw again, whenever the data or the shown series change.
        Effect::new(move |_| {
            let Some(Ok(chart)) = data.get() else { return };
            let shown_now = shown.get();
            let Some(el) = canvas.get() else { return };
            let el: web_sys::HtmlElement = el.unchecked_into();
            instance.update_value(|i| i.last_fetch = now());
            if chart.empty.is_some() {
                instance.update_value(|i| {
                    if let Some(state) = i.state.take() {
                        destroy_chart(&state);
                    }
                });
                el.set_inner_html("");
                live_drawn.set(false);
                return;
            }
            if shown_now.len() != chart.frame.series.len() {
                return;
            }
            if let Some(w) = fits(el.client_width().max(0) as u32) {
                width.set(w);
            }
            let next = drawing(&chart, &shown_now, height, sync);
            let mut start_mount = false;
            instance.update_value(|i| {
                if let Some(state) = &i.state {
                    update_chart(state, &el, &next.spec, &next.times, &next.drawn, &next.raw);
                } else {
                    i.latest = Some(next);
                    start_mount = !i.mounting;
                    i.mounting = true;
                }
            });
            if !start_mount {
                return;
            }
            leptos::task::spawn_local(async move {
                let promise = instance
                    .try_update_value(|i| {
                        let drawing = i.latest.take()?;
                        let function = |c: &JsValue| c.clone().unchecked_into::<js_sys::Function>();
                        let zoom = function(i.callbacks.first()?.as_ref());
                        let cursor = function(i.cursor.as_ref()?.as_ref());
                        let resized = function(i.resized.as_ref()?.as_ref());
                        Some(mount_chart(
                            &el,
                            &drawing.spec,
                            &drawing.times,
                            &drawing.drawn,
                            &drawing.raw,
                            &zoom,
                            &cursor,
                            &resized,
                        ))
                    })
                    .flatten();
                let Some(promise) = promise else { return };
                let Ok(state) = wasm_bindgen_futures::JsFuture::from(promise).await else {
                    instance.try_update_value(|i| i.mounting = false);
                    return;
                };
                // Data that came while uPlot loaded is drawn now.
                let kept = instance.try_update_value(|i| {
                    if let Some(newer) = i.latest.take() {
                        update_chart(&state, &el, &newer.spec, &newer.times, &newer.drawn, &newer.raw);
                    }
                    i.state = Some(state.clone());
                    i.mounting = false;
                });
                if kept.is_none() {
                    // The chart left the page while uPlot loaded.
                    destroy_chart(&state);
                    return;
                }
                live_drawn.try_set(true);
            });
        });

        // Auto-refresh, paused while the tab is hidden: a refresh missed
        // then happens when it shows again.
        let refresh = super::use_refresh();
        let missed = StoredValue::new(false);
        let interval = StoredValue::new(None::<IntervalHandle>);
        Effect::new(move |_| {
            if let Some(handle) = interval.try_update_value(Option::take).flatten() {
                handle.clear();
            }
            let every = refresh.get();
            if every == 0 {
                return;
            }
            let handle = set_interval_with_handle(
                move || {
                    if visible() {
                        tick.try_update(|t| *t += 1);
                    } else {
                        missed.try_set_value(true);
                    }
                },
                std::time::Duration::from_millis(u64::from(every)),
            )
            .ok();
            interval.set_value(handle);
        });
        let shows_again = window_event_listener_untyped("visibilitychange", move |_| {
            if visible() && missed.try_get_value() == Some(true) {
                missed.try_set_value(false);
                tick.try_update(|t| *t += 1);
            }
        });
        on_cleanup(move || {
            shows_again.remove();
            if let Some(handle) = interval.try_update_value(Option::take).flatten() {
                handle.clear();
            }
        });

        // Live updates, where the range ends now: at most every 15 s.
        if !live.is_empty() {
            let changes = crate::live::use_live();
            Effect::new(move |seen: Option<u64>| {
                let version = changes.version(live);
                let Some(seen) = seen else { return version };
                let ends_now = data.get_untracked().and_then(Result::ok).is_some_and(|c| c.end >= c.now);
                if version == seen || !ends_now || !visible() {
                    return version;
                }
                let waited = now() - instance.with_value(|i| i.last_fetch);
                if waited >= LIVE_EVERY_MS {
                    tick.update(|t| *t += 1);
                } else if instance.with_value(|i| i.live_timer.is_none()) {
                    let handle = set_timeout_with_handle(
                        move || {
                            instance.try_update_value(|i| i.live_timer = None);
                            tick.try_update(|t| *t += 1);
                        },
                        std::time::Duration::from_millis((LIVE_EVERY_MS - waited) as u64),
                    )
                    .ok();
                    instance.update_value(|i| i.live_timer = handle);
                }
                version
            });
        }

        on_cleanup(move || {
            instance.update_value(|i| {
                if let Some(state) = i.state.take() {
                    destroy_chart(&state);
                }
                if let Some(timer) = i.live_timer.take() {
                    timer.clear();
                }
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_domain::series::Unit;

    fn chart(stacked: bool) -> Chart {
        Chart {
            chart: chart::ChartKind::Spend,
            start: 0,
            end: 3,
            step: 1,
            now: 3,
            resolution: "exact".into(),
            frame: Frame {
                times: vec![0, 1, 2],
                series: vec![
                    Series { name: "a".into(), values: vec![Some(1.0), Some(2.0), None] },
                    Series { name: "b".into(), values: vec![Some(3.0), None, Some(1.0)] },
                ],
                unit: Unit::Dollars,
            },
            styles: vec![Default::default(); 2],
            stacked,
            summary: Summary::Total,
            markers: Vec::new(),
            notes: Vec::new(),
            empty: None,
        }
    }

    #[test]
    fn stacks_cover_only_the_series_shown() {
        assert_eq!(drawn(&chart(true), &[true, true])[1], [Some(4.0), None, Some(1.0)]);
        assert_eq!(drawn(&chart(true), &[false, true])[1], [Some(3.0), None, Some(1.0)], "b alone sits on zero");
        assert_eq!(drawn(&chart(true), &[false, true])[0], [None, None, None]);
        assert_eq!(drawn(&chart(false), &[true, true])[1], [Some(3.0), None, Some(1.0)]);
    }

    #[test]
    fn legend_clicks_isolate_and_modifier_clicks_toggle() {
        assert_eq!(legend_click(&[true, true, true], 1, false), [false, true, false]);
        assert_eq!(legend_click(&[false, true, false], 1, false), [true, true, true], "again shows all");
        assert_eq!(legend_click(&[false, true, false], 0, false), [true, false, false]);
        assert_eq!(legend_click(&[true, true, true], 2, true), [true, true, false]);
        assert_eq!(legend_click(&[true, true, false], 2, true), [true, true, true]);
        assert_eq!(legend_click(&[true], 5, false), [true]);
    }

    #[test]
    fn static_lines_break_at_gaps() {
        let paths = static_paths(&chart(false), 100.0);
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[0].2.matches('M').count(), 1);
        assert_eq!(paths[1].2.matches('M').count(), 2, "a gap lifts the pen");
    }

    #[test]
    fn absolute_ranges_without_javascript_are_utc() {
        assert_eq!(utc_instant("2026-11-30T10:00"), "2026-11-30T10:00:00Z");
        assert_eq!(utc_instant("2026-11-30T10:00:05"), "2026-11-30T10:00:05Z");
    }
}
