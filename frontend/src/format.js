// Numbers and dates as shown on the pages. Dates are UTC everywhere.

const integer = new Intl.NumberFormat("en-US");
const percent = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0, signDisplay: "exceptZero", style: "percent" });
const dayLabel = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
const dayLong = new Intl.DateTimeFormat("en-US", { weekday: "short", month: "short", day: "numeric", timeZone: "UTC" });

export function formatNumber(value) {
  return integer.format(value ?? 0);
}

/** "2026-11-14 09:05 UTC" for an ISO date-time (null -> "Never"). */
export function formatDateTime(iso) {
  if (!iso) return "Never";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** "Nov 14" for an ISO date ("2026-11-14"), read as a UTC day. */
export function formatDay(isoDate, long = false) {
  const date = new Date(`${isoDate}T00:00:00Z`);
  return (long ? dayLong : dayLabel).format(date);
}

/**
 * The change from `previous` to `current`: {direction: "up"|"down"|"flat", text: "+3 (+50%)"}.
 * With nothing before, the change is the count itself, without a percentage.
 */
export function change(current, previous) {
  const delta = (current ?? 0) - (previous ?? 0);
  const direction = delta > 0 ? "up" : delta < 0 ? "down" : "flat";
  const signed = `${delta > 0 ? "+" : delta < 0 ? "−" : "±"}${integer.format(Math.abs(delta))}`;
  if (!previous) return { direction, text: signed };
  return { direction, text: `${signed} (${percent.format(delta / previous).replace("-", "−")})` };
}
