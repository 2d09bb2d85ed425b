// What the widget asks for, and how a summary becomes the figures it shows.

import { change, formatDay, formatNumber } from "../format.js";

// Phase 2 adds `timezone`, `members { … }`, `content { kind count }` and `topPosters { … }` here
// (and $from/$to): show() in widget.js already passes them on when a summary has them.
export const SUBSCRIPTION = `subscription AnalyticsWidget($days: Int!, $span: Int!, $chatId: ID) {
  analyticsUpdated(days: $days, chatId: $chatId) {
    totalMessages messagesToday messagesThisWeek uniqueUsers
    activeUsers { day week month }
    period { totalMessages uniqueUsers joins leaves }
    previousPeriod { totalMessages uniqueUsers messagesToday messagesThisWeek }
    daily(days: $span) { date messages users }
    hourly
    chats(limit: 100) { chatId title type messages users }
  }
}`;

/** The chats to offer in the picker when the widget shows one chat and has not seen the others. */
export const CHATS_QUERY = `query AnalyticsWidgetChats { analytics { chats(limit: 100) { chatId title } } }`;

/** How many chats the "Busiest chats" table lists. */
export const BUSIEST = 5;

/** The zone the figures are in: the server's word once it says (issue 28), else UTC. */
export function zoneOf(summary) {
  return summary?.timezone ?? "UTC";
}

/** The four headline figures, each with its change against the period before. */
export function headlineFigures(summary, days) {
  const { period, previousPeriod: before } = summary;
  return [
    { key: "totalMessages", label: "Total messages", value: summary.totalMessages,
      change: change(period.totalMessages, before.totalMessages), against: `in the last ${days} days vs the ${days} before` },
    { key: "messagesToday", label: "Messages today", value: summary.messagesToday,
      change: change(summary.messagesToday, before.messagesToday), against: "vs yesterday" },
    { key: "messagesThisWeek", label: "This week", value: summary.messagesThisWeek,
      change: change(summary.messagesThisWeek, before.messagesThisWeek), against: "vs the 7 days before" },
    { key: "uniqueUsers", label: "Unique users", value: summary.uniqueUsers,
      change: change(period.uniqueUsers, before.uniqueUsers), against: `in the last ${days} days vs the ${days} before` },
  ];
}

/** The window's days, labelled: the last `days` entries of `daily` (which may hold the period before too). */
export function dailySeries(summary, days) {
  return summary.daily.slice(-days).map((d) => ({ ...d, label: formatDay(d.date) }));
}

/**
 * The period before's messages per day, aligned with the window's days (day i of each), or []
 * when the summary does not hold it. Today it is the head of `daily(days: 2 × days)`; with
 * from/to (phase 2) it comes from wherever the server puts the previous period's daily series.
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
