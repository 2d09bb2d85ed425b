// What the widget shows, read from its attributes in one place: `chat-id`, `days`, `from`, `to`
// and `timezone`. A bad attribute is a sentence for the widget to show, never a request.

/** The ranges offered as buttons. */
export const PERIODS = [7, 30, 90];

/**
 * Whether the server takes `from`/`to` (issue 28's `analytics(from: Date, to: Date)`): custom dates
 * are offered and accepted only with it. rangeVariables() below is the only place that turns a range
 * into the subscription's variables.
 */
export const DATE_RANGES = true;

/** The widest range a request may ask for (the server's bound for `days`). */
const MAX_DAYS = 3650;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** "2026-12-07": today's date in `timeZone` (the figures' zone). */
export function today(timeZone = "UTC", now = new Date()) {
  // en-CA writes dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(now);
}

function validDate(text) {
  if (!ISO_DATE.test(text)) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

/** The number of days from `from` to `to`, both included. */
export function daysBetween(from, to) {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000) + 1;
}

/**
 * Checks a custom range; returns {from?: message, to?: message} (empty when it is fine). `latest`
 * is today in the figures' zone: a range may not end after it.
 */
export function checkRange(from, to, latest) {
  const errors = {};
  if (!from) errors.from = "Pick the first day.";
  else if (!validDate(from)) errors.from = "Use a date such as 2026-11-01.";
  if (!to) errors.to = "Pick the last day.";
  else if (!validDate(to)) errors.to = "Use a date such as 2026-11-30.";
  if (errors.from || errors.to) return errors;
  if (to > latest) errors.to = `The last day cannot be after today (${latest}).`;
  else if (to < from) errors.to = "The last day cannot be before the first.";
  else if (daysBetween(from, to) > MAX_DAYS) errors.to = `A range is at most ${MAX_DAYS} days.`;
  return errors;
}

export function validTimeZone(name) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/**
 * The widget's options from `attribute(name)` (the element's getAttribute):
 * {ok: true, chatId: string|null, range: {days} | {from, to}, timezone: string|null}
 * or {ok: false, problems: [sentence, …]}. `zone` is the figures' zone as far as the widget knows it
 * (the install's, once a summary said): `to` may not be after today there.
 */
export function readOptions(attribute, zone = "UTC") {
  const problems = [];
  const chatText = attribute("chat-id");
  const chatId = chatText === null || chatText.trim() === "" ? null : chatText.trim();
  if (chatId !== null && !/^-?\d{1,19}$/.test(chatId)) {
    problems.push(`chat-id="${chatText}" is not a Telegram chat id: use a whole number such as -1001234567890, or leave it out for all chats.`);
  }

  const timezone = attribute("timezone")?.trim() || null;
  if (timezone !== null && !validTimeZone(timezone)) {
    problems.push(`timezone="${timezone}" is not a time zone: use an IANA name such as Asia/Kolkata or Europe/Berlin.`);
  }

  const from = attribute("from");
  const to = attribute("to");
  const daysText = attribute("days");
  let range = { days: PERIODS[0] };
  if (from !== null || to !== null) {
    if (!DATE_RANGES) {
      problems.push("from and to are not supported by this server yet: use days (7, 30 or 90).");
    } else if (daysText !== null) {
      problems.push("Give either days or from and to, not both.");
    } else {
      const errors = checkRange(from ?? "", to ?? "", today(zone));
      if (errors.from) problems.push(`from="${from ?? ""}": ${errors.from}`);
      if (errors.to) problems.push(`to="${to ?? ""}": ${errors.to}`);
      range = { from, to };
    }
  } else if (daysText !== null) {
    const days = Number(daysText);
    if (!/^\s*\d+\s*$/.test(daysText) || !PERIODS.includes(days)) {
      problems.push(`days="${daysText}" is not offered: use 7, 30 or 90${DATE_RANGES ? ", or from and to for other ranges" : ""}.`);
    } else {
      range = { days };
    }
  }
  return problems.length ? { ok: false, problems } : { ok: true, chatId, range, timezone };
}

/** The range's length in days. */
export function rangeDays(range) {
  return "days" in range ? range.days : daysBetween(range.from, range.to);
}

/** The range's two ends in words, with their year unless both are in this one: ["Nov 1", "Nov 30"]. */
function ends(range, formatDay) {
  const year = today().slice(0, 4);
  const dated = range.from.slice(0, 4) !== year || range.to.slice(0, 4) !== year;
  return [range.from, range.to].map((day) => (dated ? `${formatDay(day)}, ${day.slice(0, 4)}` : formatDay(day)));
}

/** A range in words: "last 7 days", "Nov 1 – Nov 30", "Dec 20, 2025 – Jan 3, 2026". */
export function rangeText(range, formatDay) {
  if ("days" in range) return `last ${range.days} days`;
  const [from, to] = ends(range, formatDay);
  return `${from} – ${to}`;
}

/** When, after a count: "in the last 7 days", "from Nov 1 to Nov 30". */
export function rangeDuring(range, formatDay) {
  if ("days" in range) return `in the last ${range.days} days`;
  const [from, to] = ends(range, formatDay);
  return `from ${from} to ${to}`;
}

/**
 * The subscription's variables for a range: `days`, or `from` and `to` (the server refuses both).
 * `span` asks `daily` for the window and the one before it: `daily(days: N)` is N days ending on the
 * window's last day, for `from`/`to` as for `days`, so the previous period can be drawn behind
 * (previousDaily in summary.js). Past the server's bound for `days` it is the window alone.
 */
export function rangeVariables(range) {
  const length = rangeDays(range);
  const span = length * 2 <= MAX_DAYS ? length * 2 : length;
  return "days" in range ? { days: range.days, span } : { from: range.from, to: range.to, span };
}
