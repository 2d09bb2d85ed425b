// The widget's charts, drawn by uPlot on canvas. Each chart's container carries a text
// alternative (role="img" with a label) kept in step with the data by the widget.

import uPlot from "uplot";

const INK = "#475569";
const GRID = "#e2e8f0";
const MESSAGES = "#4f46e5";
const USERS = "#0e7490";
const BEFORE = "rgba(100, 116, 139, 0.45)"; // the previous period, faint
const MEMBERS = "#0f766e";
const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

function axis(values, extra = {}) {
  return { stroke: INK, font: FONT, ticks: { show: false }, grid: { stroke: GRID, width: 1 }, values, ...extra };
}

function countAxis() {
  return axis((u, splits) => splits.map((v) => (Number.isInteger(v) ? v.toLocaleString("en-US") : "")), { size: 48 });
}

function indexScale() {
  // Categories at 0..n-1, with half a slot of room either side so bars are not cut.
  return { time: false, range: (u) => [-0.5, Math.max(u.data[0].length, 1) - 0.5] };
}

// Steps between labelled days, so that 90 days on a phone still get a few dates.
const DAY_STEPS = [1, 2, 3, 5, 7, 10, 14, 15, 30, 45, 60, 90, 180, 365];
// Dots on a line only while there is room for them.
const fewDays = (u) => u.data[0].length <= 31;

const countScale = { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] };

/** Sizes a chart to its container now and whenever the container's width changes. */
function fit(plot, target, height) {
  const resize = () => plot.setSize({ width: Math.max(200, Math.floor(target.clientWidth)), height });
  const observer = new ResizeObserver(resize);
  observer.observe(target);
  resize();
  return () => observer.disconnect();
}

/** Messages (bars) and users (line) per day; `labels[i]` names day i. Behind them, faintly, the
 * previous period's messages (`before[i]`: day i of the period before; empty: none drawn). */
export function dailyChart(target, height = 220) {
  let labels = [];
  const plot = new uPlot(
    {
      width: Math.max(200, target.clientWidth), height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 7 } },
      scales: { x: indexScale(), y: countScale },
      axes: [
        axis((u, splits) => splits.map((i) => labels[i] ?? ""), { grid: { show: false }, space: 48, incrs: DAY_STEPS }),
        countAxis(),
      ],
      series: [
        {},
        { label: "Previous period", stroke: BEFORE, fill: "rgba(148, 163, 184, 0.16)", width: 1, dash: [3, 3], paths: uPlot.paths.bars({ size: [0.85, 44] }), points: { show: false } },
        { label: "Messages", stroke: MESSAGES, fill: "rgba(79, 70, 229, 0.22)", width: 1, paths: uPlot.paths.bars({ size: [0.65, 36] }), points: { show: false } },
        { label: "Users", stroke: USERS, width: 2, points: { show: fewDays, size: 6, fill: USERS } },
      ],
    },
    [[], [], [], []],
    target,
  );
  const stop = fit(plot, target, height);
  return {
    update(days, before = []) {
      labels = days.map((d) => d.label);
      const previous = days.map((_, i) => (before.length ? before[i] ?? null : null));
      plot.setData([days.map((_, i) => i), previous, days.map((d) => d.messages), days.map((d) => d.users)]);
    },
    destroy() {
      stop();
      plot.destroy();
    },
  };
}

/** 24 bars, messages by hour of day (in the figures' zone). */
export function hourlyChart(target, height = 220) {
  const plot = new uPlot(
    {
      width: Math.max(200, target.clientWidth), height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: { x: indexScale(), y: countScale },
      axes: [
        axis((u, splits) => splits.map((h) => String(h).padStart(2, "0")), { grid: { show: false }, space: 32, incrs: [1, 2, 3, 6] }),
        countAxis(),
      ],
      series: [{}, { label: "Messages", stroke: MESSAGES, fill: "rgba(79, 70, 229, 0.55)", width: 0, paths: uPlot.paths.bars({ size: [0.75, 28] }), points: { show: false } }],
    },
    [[], []],
    target,
  );
  const stop = fit(plot, target, height);
  return {
    update(hours) {
      plot.setData([hours.map((_, i) => i), hours]);
    },
    destroy() {
      stop();
      plot.destroy();
    },
  };
}

/** The member count per day (`members.daily`: {date, count}), a line; `label(date)` names a day. */
export function membersChart(target, label, height = 180) {
  let labels = [];
  const plot = new uPlot(
    {
      width: Math.max(200, target.clientWidth), height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 7 } },
      scales: { x: indexScale(), y: { range: (u, min, max) => (max > min ? [Math.max(0, min - (max - min) * 0.15), max + (max - min) * 0.15] : [Math.max(0, min - 2), max + 2]) } },
      axes: [
        axis((u, splits) => splits.map((i) => labels[i] ?? ""), { grid: { show: false }, space: 48, incrs: DAY_STEPS }),
        countAxis(),
      ],
      series: [{}, { label: "Members", stroke: MEMBERS, width: 2, fill: "rgba(15, 118, 110, 0.08)", points: { show: fewDays, size: 5, fill: MEMBERS } }],
    },
    [[], []],
    target,
  );
  const stop = fit(plot, target, height);
  return {
    update(daily) {
      labels = daily.map((d) => label(d.date));
      plot.setData([daily.map((_, i) => i), daily.map((d) => d.count)]);
    },
    destroy() {
      stop();
      plot.destroy();
    },
  };
}
