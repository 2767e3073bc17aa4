// Gantry's charts in the browser: a thin layer over uPlot, bound to Rust
// through wasm-bindgen (app/src/components/chart.rs is the only caller).
//
// Rust owns the data and every decision (buckets, stacking, which series
// show); this file builds uPlot's options once per chart shape, hands it
// columns of numbers, draws the crosshair tooltip and the markers, and
// reports drag-zooms, the hovered bucket and width changes back.
//
// uPlot itself is loaded with a dynamic import the first time a chart is
// drawn, so pages without charts never fetch it.

const UPLOT = "/assets/uplot/uplot-1.6.32.min.js";
let engine = null;

function loadEngine() {
  if (!engine) engine = import(UPLOT).then((module) => module.default);
  return engine;
}

// Grafana's classic palette: distinct on light and dark backgrounds.
const PALETTE = [
  "#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42",
  "#1f78c1", "#ba43a9", "#705da0", "#508642", "#cca300",
  "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62",
];

function color(index) {
  return PALETTE[index % PALETTE.length];
}

function withAlpha(hex, alpha) {
  const a = Math.round(alpha * 255).toString(16).padStart(2, "0");
  return hex + a;
}

const DASHES = { solid: undefined, dashed: [6, 4], dotted: [2, 3] };

// Past this many series, every line is 1 px wide (Grafana's default): the
// rasteriser strokes 1 px lines on its fast path, which draws 50 series of
// 2,880 points six times faster than 1.75 px lines (BENCHMARKS.md). Fewer
// lines keep 1.75 px (1.25 px dashed), which reads better alone.
// Past it too, the crosshair draws no dot on each line (the tooltip lists
// every value): 50 dots are 50 elements restyled and composited at every
// move, which made the main thread's hover frame 35% and zoom frame 15%
// longer (measured side by side: ARCHITECTURE.md, the charts' choices).
const MANY_SERIES = 10;

// Intl formatters are slow to make and fast to use: one per number of digits.
const GROUPED = [0, 1, 2].map(
  (digits) => new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }),
);

function group(number, digits) {
  return GROUPED[digits].format(number);
}

function plain(v) {
  const digits = Math.abs(v) >= 100 || Number.isInteger(v) ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return group(v, digits);
}

function dollars(v) {
  const text = group(Math.abs(v), Math.abs(v) >= 1000 ? 0 : 2);
  return v < 0 ? `-$${text}` : `$${text}`;
}

// The same wording as the server's value table (gantry_domain::chart::format_value).
export function formatValue(unit, v) {
  if (v == null || Number.isNaN(v)) return "—";
  switch (unit) {
    case "dollars": return dollars(v);
    case "dollars_per_hour": return `${dollars(v)}/h`;
    case "gpus": return `${plain(v)} GPUs`;
    case "gpu_hours": return `${plain(v)} GPU-h`;
    case "percent": return `${Math.round(v)}%`;
    default: return plain(v);
  }
}

function axisValue(unit, v) {
  const short = (n) => {
    const a = Math.abs(n);
    if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
    if (a >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
    return `${+n.toFixed(2)}`;
  };
  switch (unit) {
    case "dollars": return `$${short(v)}`;
    case "dollars_per_hour": return `$${short(v)}/h`;
    case "percent": return `${short(v)}%`;
    default: return short(v);
  }
}

function css(el, name, fallback) {
  const value = getComputedStyle(el).getPropertyValue(name).trim();
  return value || fallback;
}

// NaN marks a gap in the columns Rust sends; uPlot wants null, so a column
// with a gap is copied into an array with nulls. A column without one is
// handed over as it is (uPlot reads typed arrays), which saves a copy of
// every point on each draw.
function column(values) {
  // `includes` finds NaN (SameValueZero) natively: the common case, a column
  // without gaps, costs no callback per point.
  if (!values.includes(NaN)) return values;
  const out = Array.from(values);
  for (let i = 0; i < out.length; i++) if (Number.isNaN(out[i])) out[i] = null;
  return out;
}

const TIME_LABEL = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

function timeLabel(ms) {
  return TIME_LABEL.format(ms);
}

// The tooltip's rows, made once per chart shape (when the chart is built,
// not at the first hover): hovering only rewrites their text and moves the
// box (a transform), and never reads the page's layout, so a move costs no
// reflow of a long page.
function tipRows(state) {
  if (state.tipFor === state.spec.key) return state.tipParts;
  const spec = state.spec;
  const time = document.createElement("div");
  time.className = "tip-time";
  const markers = document.createElement("div");
  const values = [];
  const rows = [time, markers];
  spec.names.forEach((name, i) => {
    if (!spec.shown[i]) return;
    const row = document.createElement("div");
    row.className = "tip-row";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = color(spec.colors[i]);
    const label = document.createElement("span");
    label.className = "tip-name";
    label.textContent = name;
    const value = document.createElement("span");
    value.className = "tip-value";
    row.append(swatch, label, value);
    rows.push(row);
    values.push([i, value]);
  });
  state.tip.replaceChildren(...rows);
  state.tipFor = spec.key;
  state.tipParts = { time, markers, values, marked: "" };
  return state.tipParts;
}

// Where the plotting area sits in the chart's box: it changes only when the
// chart is resized, so it is measured then, not at every move.
function overOffset(u, state) {
  if (!state.offset) {
    const over = u.over.getBoundingClientRect();
    const host = state.el.getBoundingClientRect();
    state.offset = { left: over.left - host.left, top: over.top - host.top };
  }
  return state.offset;
}

function showTip(u, state) {
  const idx = u.cursor.idx;
  const parts = tipRows(state);
  const tip = state.tip;
  parts.time.textContent = timeLabel(u.data[0][idx]);
  const near = state.markers.filter((m) => Math.abs(u.valToPos(m.at, "x") - u.cursor.left) <= 6);
  const marked = near.map((m) => m.label).join("\n");
  if (marked !== parts.marked) {
    parts.marked = marked;
    parts.markers.replaceChildren(
      ...near.map((m) => {
        const div = document.createElement("div");
        div.className = "tip-marker";
        div.textContent = m.label;
        return div;
      }),
    );
  }
  const unit = state.spec.unit;
  for (const [i, value] of parts.values) value.textContent = formatValue(unit, state.raw[i][idx]);
  const offset = overOffset(u, state);
  const x = offset.left + u.cursor.left;
  // Past the middle, the box sits left of the cursor (shifted by its own width).
  const flip = x > state.width / 2;
  tip.style.transform = flip
    ? `translate(${x - 12}px, ${offset.top + 8}px) translateX(-100%)`
    : `translate(${x + 12}px, ${offset.top + 8}px)`;
  tip.style.display = "block";
}

// A value with no neighbour (the one bucket of a fleet started a minute ago,
// or a point between two gaps) has no line to draw: it gets a dot instead.
// Found once per column when the data arrives, not at every draw.
function lonePoints(ys) {
  if (ys.length === 1) return [0];
  if (!Array.isArray(ys)) return null; // a typed array: no gaps
  const lone = [];
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] != null && (i === 0 || ys[i - 1] == null) && (i === ys.length - 1 || ys[i + 1] == null)) lone.push(i);
  }
  return lone.length > 0 ? lone : null;
}

// When the x range changes (a zoom, a pan, a live window sliding) or the
// chart is redrawn frame after frame (a resize), lines are drawn thinned to
// a point per BUSY_PX pixels, so the frame that answers the person stays
// short; once the chart has rested BUSY_MS, they are drawn again in full.
// (A point per 8 px rather than 4 made a zoom frame of 50 series 15% shorter:
// ARCHITECTURE.md, the charts' choices.)
const BUSY_MS = 100;
const BUSY_PX = 8;
function thinWhileBusy(linear, state) {
  return (u, si, i0, i1) => {
    const budget = Math.max(u.bbox.width / BUSY_PX, 1);
    if (si === firstShown(u)) {
      const now = performance.now();
      const { min, max } = u.scales.x;
      const moved = state.lastMin != null && (min !== state.lastMin || max !== state.lastMax);
      state.busy = !state.settling && (moved || now - state.lastDraw < BUSY_MS);
      state.lastDraw = now;
      state.lastMin = min;
      state.lastMax = max;
      clearTimeout(state.settle);
      if (state.busy) state.settle = setTimeout(() => settle(u, state), BUSY_MS);
    }
    if (!state.busy || i1 - i0 <= budget) return linear(u, si, i0, i1);
    const step = Math.ceil((i1 - i0) / budget);
    const xs = u.data[0], ys = u.data[si], scale = u.series[si].scale;
    const stroke = new Path2D();
    let pen = false;
    for (let i = i0; i <= i1; i += step) {
      const y = ys[i];
      if (y == null) { pen = false; continue; }
      const px = u.valToPos(xs[i], "x", true), py = u.valToPos(y, scale, true);
      if (pen) stroke.lineTo(px, py); else { stroke.moveTo(px, py); pen = true; }
    }
    return { stroke, fill: null, clip: null, band: null, gaps: null, flags: 0 };
  };
}

function firstShown(u) {
  return u.series.findIndex((s, i) => i > 0 && s.show);
}

function settle(u, state) {
  if (state.plot !== u) return; // rebuilt or destroyed since
  state.settling = true;
  u.redraw(true, false);
  state.settling = false;
  followCursor(u, state);
}

// The tooltip and the legend's values follow the cursor. While the range is
// moving (lines drawn thinned) they wait until it rests, when `settle` brings
// them up to date: rewriting a row per series at every step of a moving range
// made a zoom frame of 50 series twice as long (ARCHITECTURE.md).
function followCursor(u, state) {
  const idx = u.cursor.idx;
  if (idx == null || u.cursor.left < 0) {
    state.tip.style.display = "none";
    if (state.hovered !== -1) {
      state.hovered = -1;
      state.callbacks.cursor(-1);
    }
    return;
  }
  if (state.busy) return;
  if (state.hovered !== idx) {
    state.hovered = idx;
    state.callbacks.cursor(idx);
  }
  showTip(u, state);
}

function buildOptions(uPlot, el, spec, state) {
  clearTimeout(state.settle);
  state.busy = false;
  state.settling = false;
  state.lastDraw = 0;
  state.lastMin = null;
  state.lastMax = null;
  const linear = uPlot.paths.linear();
  const paths = spec.stacked ? undefined : thinWhileBusy(linear, state);
  const muted = css(el, "--muted", "#667085");
  const line = css(el, "--line", "#e3e6ec");
  const width = Math.max(el.clientWidth, 100);
  const series = [{}];
  const many = spec.names.length > MANY_SERIES;
  spec.names.forEach((name, i) => {
    const stroke = color(spec.colors[i]);
    series.push({
      label: name,
      stroke,
      width: many ? 1 : spec.dashes[i] === "solid" ? 1.75 : 1.25,
      dash: DASHES[spec.dashes[i]],
      fill: spec.stacked ? withAlpha(stroke, 0.35) : undefined,
      show: spec.shown[i],
      spanGaps: false,
      points: { show: false, filter: (u, si, show) => (show ? null : state.lone[si]) },
      paths,
    });
  });
  // Stacked bands: each visible series fills down to the visible one under it.
  const bands = [];
  if (spec.stacked) {
    let below = null;
    spec.names.forEach((_, i) => {
      if (!spec.shown[i]) return;
      if (below !== null) bands.push({ series: [i + 1, below + 1], fill: withAlpha(color(spec.colors[i]), 0.35) });
      below = i;
    });
    // The bottom band fills to zero; the others only between their edges.
    let first = true;
    series.forEach((s, i) => {
      if (i === 0 || !spec.shown[i - 1]) return;
      if (!first) s.fill = undefined;
      first = false;
    });
  }
  return {
    width,
    height: spec.height,
    ms: 1,
    legend: { show: false },
    cursor: {
      sync: { key: spec.sync, setSeries: false },
      drag: { x: true, y: false, setScale: false },
      points: { size: 6, show: !many },
    },
    select: { show: true },
    scales: {
      // The range asked for, not the data's: a gap at either end shows as one.
      x: { time: true, range: () => [state.spec.start, state.spec.end] },
      y: {
        range: (u, min, max) => {
          const low = Math.min(0, min ?? 0);
          const high = max == null || max <= low ? low + 1 : max + (max - low) * 0.08;
          return [low, high];
        },
      },
    },
    axes: [
      { stroke: muted, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } },
      {
        stroke: muted,
        grid: { stroke: line, width: 1 },
        ticks: { stroke: line, width: 1 },
        size: 64,
        values: (u, ticks) => ticks.map((v) => axisValue(spec.unit, v)),
      },
    ],
    series,
    bands,
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width < 4) return;
          const min = u.posToVal(u.select.left, "x");
          const max = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          state.callbacks.zoom(Math.round(min), Math.round(max));
        },
      ],
      setCursor: [(u) => followCursor(u, state)],
      draw: [
        (u) => {
          if (!state.markers.length) return;
          const { ctx, bbox } = u;
          ctx.save();
          ctx.strokeStyle = muted;
          ctx.fillStyle = muted;
          ctx.lineWidth = 1;
          ctx.setLineDash([3, 3]);
          for (const m of state.markers) {
            const x = Math.round(u.valToPos(m.at, "x", true));
            if (x < bbox.left || x > bbox.left + bbox.width) continue;
            ctx.beginPath();
            ctx.moveTo(x, bbox.top);
            ctx.lineTo(x, bbox.top + bbox.height);
            ctx.stroke();
            ctx.beginPath();
            ctx.moveTo(x - 4, bbox.top);
            ctx.lineTo(x + 4, bbox.top);
            ctx.lineTo(x, bbox.top + 6);
            ctx.fill();
          }
          ctx.restore();
        },
      ],
    },
  };
}

// uPlot's columns from Rust's, and each one's lone points (`state.lone`,
// indexed like the columns).
function columns(state, times, drawn) {
  const data = [times];
  state.lone = [null];
  for (let i = 0; i < drawn.length; i++) {
    const ys = column(drawn[i]);
    data.push(ys);
    state.lone.push(lonePoints(ys));
  }
  return data;
}

// Draws a chart into `el` (emptied first). `spec` is JSON from Rust:
// {key, unit, names, colors, dashes, shown, stacked, markers, height, sync,
// start, end}; `times` a Float64Array of Unix ms; `drawn` the columns to
// draw (stacked where the chart is) and `raw` each series' own values, both
// arrays of Float64Array with NaN for gaps. The callbacks report a
// drag-zoom (start, end in ms), the hovered bucket (-1: none) and the
// chart's new width in pixels.
export async function mountChart(el, spec, times, drawn, raw, zoom, cursor, resized) {
  const uPlot = await loadEngine();
  const started = performance.now();
  const parsed = JSON.parse(spec);
  const tip = document.createElement("div");
  tip.className = "chart-tip";
  tip.style.cssText = "display:none;left:0;top:0";
  const state = {
    spec: parsed,
    raw: Array.from(raw),
    markers: parsed.markers,
    hovered: -1,
    tip,
    plot: null,
    el,
    offset: null,
    width: el.clientWidth,
    callbacks: { zoom, cursor, resized },
  };
  el.replaceChildren();
  state.plot = new uPlot(buildOptions(uPlot, el, parsed, state), columns(state, times, drawn), el);
  el.appendChild(tip);
  tipRows(state);
  el.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  let pending = null;
  state.observer = new ResizeObserver(() => {
    const width = el.clientWidth;
    if (!width || Math.abs(width - state.width) < 2) return;
    state.width = width;
    state.offset = null;
    state.plot.setSize({ width, height: state.spec.height });
    clearTimeout(pending);
    pending = setTimeout(() => resized(width), 300);
  });
  state.observer.observe(el);
  state.uPlot = uPlot;
  performance.measure("gantry-chart-draw", { start: started, end: performance.now() });
  return state;
}

// New data for a chart: drawn in place when its shape (series, styles,
// stacking, which show) is the same, else the chart is built afresh.
export function updateChart(state, el, spec, times, drawn, raw) {
  const parsed = JSON.parse(spec);
  state.raw = Array.from(raw);
  state.markers = parsed.markers;
  if (parsed.key !== state.spec.key) {
    state.plot.destroy();
    state.spec = parsed;
    state.offset = null;
    const tip = state.tip;
    state.plot = new state.uPlot(buildOptions(state.uPlot, el, parsed, state), columns(state, times, drawn), el);
    el.appendChild(tip);
    tipRows(state);
    return;
  }
  state.spec = parsed;
  state.plot.setData(columns(state, times, drawn));
}

export function destroyChart(state) {
  if (!state) return;
  clearTimeout(state.settle);
  state.observer?.disconnect();
  state.plot?.destroy();
  state.tip?.remove();
}
