// What the widget asks for, and how a summary becomes the figures it shows.

import { change, formatDay, formatNumber } from "../format.js";
import { rangeDays } from "./options.js";

// The window is `days` or `from`/`to` (rangeVariables in options.js gives one or the other), and
// `daily(days: $span)` is it with the period before (previousDaily below). show() in widget.js passes
// every field on; `timezone` is the zone all the dates and hours are in, and `members` is Telegram's
// own count (getChatMemberCount), apart from the joins and leaves counted from chat_member.
export const SUBSCRIPTION = `subscription AnalyticsWidget($days: Int, $from: Date, $to: Date, $span: Int!, $chatId: ID) {
  analyticsUpdated(days: $days, from: $from, to: $to, chatId: $chatId) {
    timezone
    totalMessages messagesToday messagesThisWeek uniqueUsers
    activeUsers { day week month }
    period { totalMessages uniqueUsers joins leaves }
    previousPeriod { totalMessages uniqueUsers messagesToday messagesThisWeek }
    daily(days: $span) { date messages users }
    hourly
    chats(limit: 100) { chatId title type messages users }
    content { kind count }
    topPosters(limit: 10) { userId firstName username messages }
    members { current change daily { date count } unavailable { chatId title reason since } }
  }
}`;

/** The chats to offer in the picker when the widget shows one chat and has not seen the others. */
export const CHATS_QUERY = `query AnalyticsWidgetChats { analytics { chats(limit: 100) { chatId title } } }`;

/** How many chats the "Busiest chats" table lists. */
export const BUSIEST = 5;

/** The zone the figures are in: the server's word (the install's `timezone`), UTC before it says. */
export function zoneOf(summary) {
  return summary?.timezone ?? "UTC";
}

/**
 * The four headline figures, each with its change against the period before. `range` is
 * {days} or {from, to}; `dates` is the latter in words ("Nov 1 – Nov 30").
 */
export function headlineFigures(summary, range, dates = "") {
  const { period, previousPeriod: before } = summary;
  const days = rangeDays(range);
  const overWindow = "days" in range ? `in the last ${days} days vs the ${days} before` : `${dates} vs the ${days} days before`;
  return [
    { key: "totalMessages", label: "Total messages", value: summary.totalMessages,
      change: change(period.totalMessages, before.totalMessages), against: overWindow },
    { key: "messagesToday", label: "Messages today", value: summary.messagesToday,
      change: change(summary.messagesToday, before.messagesToday), against: "vs yesterday" },
    { key: "messagesThisWeek", label: "This week", value: summary.messagesThisWeek,
      change: change(summary.messagesThisWeek, before.messagesThisWeek), against: "vs the 7 days before" },
    { key: "uniqueUsers", label: "Unique users", value: summary.uniqueUsers,
      change: change(period.uniqueUsers, before.uniqueUsers), against: overWindow },
  ];
}

/** The window's days, labelled: the last `days` entries of `daily` (which may hold the period before too). */
export function dailySeries(summary, days) {
  return summary.daily.slice(-days).map((d) => ({ ...d, label: formatDay(d.date) }));
}

/**
 * The period before's messages per day, aligned with the window's days (day i of each), or []
 * when the summary does not hold it: the head of `daily(days: 2 × days)`, which ends on the
 * window's last day for `from`/`to` as for `days` (rangeVariables in options.js).
 */
export function previousDaily(summary, days) {
  const before = summary.daily.slice(0, -days);
  return before.length === days ? before.map((d) => d.messages) : [];
}

function count(n, noun) {
  return `${formatNumber(n)} ${noun}${n === 1 ? "" : "s"}`;
}

/** A sentence for screen readers standing in for the daily chart (no ";" before the first day). */
export function describeDaily(series, previous, zone) {
  if (!series.length) return "No days to show.";
  const before = previous.length
    ? ` The ${previous.length} days before, drawn faintly behind, had ${count(previous.reduce((a, b) => a + b, 0), "message")}.`
    : "";
  const days = series.map((d) => `${formatDay(d.date, true)}: ${count(d.messages, "message")}, ${count(d.users, "user")}`);
  return `Messages and users per day, dates in ${zone}.${before} ${days.join("; ")}.`;
}

export function describeHourly(hours, zone) {
  const total = hours.reduce((a, b) => a + b, 0);
  if (!total) return `Messages by hour of day, ${zone}: no messages yet.`;
  const busiest = hours.indexOf(Math.max(...hours));
  const parts = hours.map((n, h) => `${String(h).padStart(2, "0")}:00 ${n}`).filter((_, h) => hours[h] > 0);
  return `Messages by hour of day, ${zone}. Busiest hour ${String(busiest).padStart(2, "0")}:00 with ${hours[busiest]}. ${parts.join(", ")}.`;
}

/** Member counts per day (`members.daily`), for screen readers. */
export function describeMembers(daily, zone) {
  if (!daily.length) return "Members per day: no counts yet.";
  const days = daily.map((d) => `${formatDay(d.date, true)}: ${count(d.count, "member")}`);
  return `Members per day, dates in ${zone}. ${days.join("; ")}.`;
}
