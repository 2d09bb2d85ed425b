// The widget's tables and lists, and the sections issue 28 adds (members, content, top posters):
// each renders plain data in the GraphQL contract's shape, with an empty state, and a text
// alternative wherever something is drawn.

import { h, mount } from "../dom.js";
import { change, formatDay, formatNumber } from "../format.js";
import { membersChart } from "./charts.js";
import { today } from "./options.js";
import { describeMembers } from "./summary.js";

/** ContentKind's values as the widget names them, in the enum's order. */
export const CONTENT_KINDS = {
  TEXT: "Text", PHOTO: "Photos", VIDEO: "Videos", ANIMATION: "GIFs", VOICE: "Voice messages",
  VIDEO_NOTE: "Video messages", AUDIO: "Audio", DOCUMENT: "Files", STICKER: "Stickers", POLL: "Polls",
  LOCATION: "Locations", CONTACT: "Contacts", SERVICE: "Service messages", OTHER: "Other",
};

function none(text) {
  return h("p", { class: "none" }, text);
}

export function chatName(chat) {
  return chat.title || `Chat ${chat.chatId}`;
}

/** The busiest chats (ChatStat: chatId, title, type, messages, users). */
export function chatTable(chats, rangeText) {
  if (!chats.length) return none("No chats yet.");
  return h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, `Busiest chats, ${rangeText}`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Chat"), h("th", { scope: "col", class: "num" }, "Messages"),
      h("th", { scope: "col", class: "num num--narrow" }, "Users"))),
    h("tbody", {}, chats.map((chat) => h(
      "tr",
      {},
      h("td", {}, chatName(chat), chat.type ? h("span", { class: "chat-type" }, chat.type) : null),
      h("td", { class: "num" }, formatNumber(chat.messages)),
      h("td", { class: "num num--narrow" }, formatNumber(chat.users)),
    ))),
  );
}

/** Messages by kind (`content`: [{kind, count}]) as a list of labelled bars, busiest first. */
export function contentList(content) {
  const rows = (content ?? []).filter((c) => c.count > 0).sort((a, b) => b.count - a.count);
  if (!rows.length) return none("No messages in this range.");
  const total = rows.reduce((sum, c) => sum + c.count, 0);
  const top = rows[0].count;
  return h("ul", { class: "bars", "aria-label": "Messages by kind" }, rows.map((c) => {
    const share = Math.round((c.count / total) * 100);
    const bar = h("span", { class: "bars__bar" });
    bar.style.width = `${Math.max(1, (c.count / top) * 100)}%`; // CSSOM: allowed under a strict CSP
    return h("li", { dataset: { kind: c.kind } },
      h("span", { class: "bars__label" }, CONTENT_KINDS[c.kind] ?? c.kind),
      h("span", { class: "bars__value" }, `${formatNumber(c.count)} (${share}%)`),
      h("span", { class: "bars__track", "aria-hidden": "true" }, bar));
  }));
}

function posterName(poster) {
  const name = poster.firstName || `User ${poster.userId}`;
  return poster.username ? [name, h("span", { class: "chat-type" }, `@${poster.username}`)] : [name];
}

/** Who posted most (`topPosters`: [{userId, firstName, username, messages}]). */
export function postersTable(posters, rangeText) {
  if (!posters?.length) {
    return none("No posts in this range, or the install does not track users (its “Track users” setting).");
  }
  return h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, `Top posters, ${rangeText}`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num num--rank" }, "Rank"), h("th", { scope: "col" }, "Member"),
      h("th", { scope: "col", class: "num" }, "Messages"))),
    h("tbody", {}, posters.map((poster, i) => h(
      "tr",
      { dataset: { userId: String(poster.userId) } },
      h("td", { class: "num num--rank" }, String(i + 1)),
      h("td", {}, posterName(poster)),
      h("td", { class: "num" }, formatNumber(poster.messages)),
    ))),
  );
}

/**
 * Member count and growth (`members`: {current, change, daily: [{date, count}], unavailable:
 * [{chatId, title, reason, since}]}). Returns {element, update(members, zone, during), destroy()}, where
 * `during` says the range ("in the last 7 days", "from Nov 1 to Nov 30"), and `zone` is the figures'
 * zone: the day a chat stopped being read (`since`, an instant) is named in it.
 */
export function membersSection() {
  const figures = h("p", { class: "facts" });
  const chart = h("div", { class: "chart", role: "img", "aria-label": "Members per day: loading" });
  const empty = none("No member counts yet: the bot reads them once a day and when it joins a chat.");
  const unavailable = h("div", {});
  const plot = membersChart(chart, (date) => formatDay(date));
  const element = h("figure", { class: "panel", dataset: { section: "members" } },
    h("figcaption", {}, "Members"), figures, chart, empty, unavailable);
  return {
    element,
    update(members, zone, during) {
      const daily = members?.daily ?? [];
      const known = members?.current !== null && members?.current !== undefined;
      const delta = change(members?.change ?? 0, 0);
      mount(figures, known
        ? [h("span", {}, "Members now: ", h("b", { dataset: { members: "current" } }, formatNumber(members.current))),
          h("span", {}, "Change: ", h("b", { dataset: { members: "change" } }, delta.text), ` ${during}`)]
        : []);
      chart.hidden = !daily.length;
      empty.hidden = daily.length > 0;
      plot.update(daily);
      chart.setAttribute("aria-label", describeMembers(daily, zone));
      const gone = members?.unavailable ?? [];
      mount(unavailable, gone.length
        ? h("ul", { class: "unavailable" }, gone.map((chat) => h("li", {},
          h("b", {}, chatName(chat)), `: not counted since ${formatDay(today(zone, new Date(chat.since)))} (${chat.reason})`)))
        : null);
    },
    destroy: () => plot.destroy(),
  };
}
