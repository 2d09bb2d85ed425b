// Inline SVG icons (stroke drawings, 24x24), decorative: screen readers skip them.

const SVG = "http://www.w3.org/2000/svg";

const SHAPES = {
  plug: ["M9 2v6", "M15 2v6", "M6 8h12v3a6 6 0 0 1-12 0z", "M12 17v5"],
  "chart-bar": ["M3 21h18", "M6 17v-6", "M11 17V5", "M16 17v-9", "M21 17v-3"],
  "hand-wave": ["M21 12a8 8 0 0 1-11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z", "M9 11h.01", "M15 11h.01", "M9.5 15a3.5 3.5 0 0 0 5 0"],
  puzzle: ["M4 7h4a2 2 0 1 1 4 0h4v4a2 2 0 1 1 0 4v4H4z"],
  bot: ["M12 8V4", "M9 4h6", "M5 8h14a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-8a2 2 0 0 1 2-2z", "M9 13v1", "M15 13v1"],
  check: ["M5 12.5l4.5 4.5L19 7.5"],
  alert: ["M12 3l10 18H2z", "M12 10v4", "M12 17.5h.01"],
  info: ["M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M12 11v6", "M12 7.5h.01"],
  refresh: ["M20 11a8 8 0 0 0-14.3-4.9L4 8", "M4 3v5h5", "M4 13a8 8 0 0 0 14.3 4.9L20 16", "M20 21v-5h-5"],
  download: ["M12 4v11", "M7 10l5 5 5-5", "M5 20h14"],
  settings: ["M4 7h10", "M18 7h2", "M4 17h4", "M12 17h8", "M14 5v4", "M8 15v4"],
  trash: ["M4 7h16", "M10 11v6", "M14 11v6", "M6 7l1 13h10l1-13", "M9 7V4h6v3"],
  "log-out": ["M15 4h4a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1h-4", "M10 17l-5-5 5-5", "M5 12h11"],
  plus: ["M12 5v14", "M5 12h14"],
  x: ["M6 6l12 12", "M18 6L6 18"],
  history: ["M3 12a9 9 0 1 0 3-6.7L3 8", "M3 3v5h5", "M12 7v5l3 2"],
  skip: ["M5 5l8 7-8 7z", "M19 5v14"],
  play: ["M7 4.5l12 7.5-12 7.5z"],
  webhook: ["M9 13l-3 5", "M6 18h9", "M15 18l-3-5", "M12 13a3 3 0 1 0-3-3", "M6 18a2 2 0 1 0 0 .01", "M18 18a2 2 0 1 0 0 .01"],
  link: ["M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1", "M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1"],
};

export function icon(name, size = 20) {
  const svg = document.createElementNS(SVG, "svg");
  for (const [attribute, value] of Object.entries({
    viewBox: "0 0 24 24", width: size, height: size, fill: "none", stroke: "currentColor",
    "stroke-width": 2, "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", focusable: "false",
  })) {
    svg.setAttribute(attribute, String(value));
  }
  for (const d of SHAPES[name] ?? SHAPES.puzzle) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}
