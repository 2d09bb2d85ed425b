// What the widget asks for, and how a summary becomes the figures it shows.

import { change, formatDay } from "../format.js";

export const SUBSCRIPTION = `subscription AnalyticsWidget($days: Int!, $chatId: ID) {
  analyticsUpdated(days: $days, chatId: $chatId) {
    totalMessages messagesToday messagesThisWeek uniqueUsers
    activeUsers { day week month }
    period { totalMessages uniqueUsers joins leaves }
    previousPeriod { totalMessages uniqueUsers messagesToday messagesThisWeek }
    daily(days: $days) { date messages users }
    hourly
    chats(limit: 5) { chatId title type messages users }
  }
}`;

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

export function dailySeries(summary) {
  return summary.daily.map((d) => ({ ...d, label: formatDay(d.date) }));
}

function count(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** A sentence for screen readers standing in for the daily chart. */
export function describeDaily(series) {
  if (!series.length) return "No days to show.";
  const days = series.map((d) => `${formatDay(d.date, true)}: ${count(d.messages, "message")}, ${count(d.users, "user")}`);
  return `Messages and users per day, UTC dates. ${days.join("; ")}.`;
}

export function describeHourly(hours) {
  const total = hours.reduce((a, b) => a + b, 0);
  if (!total) return "Messages by hour of day, UTC: no messages yet.";
  const busiest = hours.indexOf(Math.max(...hours));
  const parts = hours.map((n, h) => `${String(h).padStart(2, "0")}:00 ${n}`).filter((_, h) => hours[h] > 0);
  return `Messages by hour of day, UTC. Busiest hour ${String(busiest).padStart(2, "0")}:00 with ${hours[busiest]}. ${parts.join(", ")}.`;
}
