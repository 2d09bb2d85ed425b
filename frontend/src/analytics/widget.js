// <plugboard-analytics days="7" chat-id="…">: the live Channel Analytics widget, one element that
// any page of ours can embed. Its attributes are its state (options.js reads them); the pickers
// set them, and any change re-subscribes to analyticsUpdated with the signed-in token (or the
// element's `token` property). It redraws on every push and reconnects by itself.

import uplotCss from "uplot/dist/uPlot.min.css?inline";
import css from "./widget.css?inline";
import { download, graphql } from "../api.js";
import { getToken, signOut } from "../auth.js";
import { h, mount, uid } from "../dom.js";
import { formatDay, formatNumber } from "../format.js";
import { icon } from "../icons.js";
import { describeError, sentence } from "../messages.js";
import { dailyChart, hourlyChart } from "./charts.js";
import { liveClient } from "./live.js";
import {
  DATE_RANGES, PERIODS, checkRange, rangeDays, rangeDuring, rangeText, rangeVariables, readOptions, today,
} from "./options.js";
import { chatName, chatTable, contentList, membersSection, postersTable } from "./sections.js";
import {
  BUSIEST, CHATS_QUERY, SUBSCRIPTION, dailySeries, describeDaily, describeHourly, headlineFigures, previousDaily, zoneOf,
} from "./summary.js";

const sheets = () => [uplotCss, css].map((text) => {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(text);
  return sheet;
});

class AnalyticsWidget extends HTMLElement {
  static observedAttributes = ["chat-id", "days", "from", "to", "timezone"];

  constructor() {
    super();
    this.attachShadow({ mode: "open" }).adoptedStyleSheets = sheets();
    this.token = null; // set to use another token than the signed-in one
    this.chats = new Map(); // chatId -> title, for the picker: every chat seen in an all-chats summary
    this.allChatsSeen = false;
    this.zone = "UTC"; // the figures' zone: zoneOf(summary) once a summary came
    this.zoneKnown = false;
  }

  connectedCallback() {
    this.build();
    this.client = liveClient({ token: () => this.token ?? getToken(), onStatus: (status) => this.showStatus(status) });
    this.refresh();
  }

  disconnectedCallback() {
    this.stop?.();
    this.client?.dispose();
    this.charts?.forEach((chart) => chart.destroy());
    this.sections?.members.destroy();
    this.client = null;
  }

  attributeChangedCallback() {
    // Several attributes set together (a custom range sets two) make one new subscription.
    if (!this.client || this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      if (this.client) this.refresh();
    });
  }

  /** Reads the attributes and subscribes for them; a bad one is shown and nothing is asked. */
  refresh() {
    this.stop?.();
    this.stop = null;
    // `to` may not be after today in the figures' zone; before a summary has named it, after today
    // anywhere on Earth (UTC+14), and the server has the last word.
    const options = readOptions((name) => this.getAttribute(name), this.zoneKnown ? this.zone : "Etc/GMT-14");
    this.options = options;
    const { el } = this;
    el.body.hidden = !options.ok;
    el.problem.hidden = options.ok;
    if (!options.ok) {
      mount(el.problem, h("strong", {}, "This widget's attributes need a fix: "), options.problems.join(" "));
      el.pill.hidden = true; // nothing is live until they are fixed
      el.widget.removeAttribute("aria-busy");
      return;
    }
    el.error.hidden = true;
    el.pill.hidden = this.status === "reconnecting";
    this.showOptions();
    el.widget.setAttribute("aria-busy", "true");
    this.stop = this.client.subscribe(SUBSCRIPTION, { ...rangeVariables(options.range), chatId: options.chatId }, {
      next: (data) => this.show(data.analyticsUpdated),
      error: (errors) => this.showError(errors),
    });
    if (options.chatId && !this.allChatsSeen) this.loadChats();
  }

  // --- structure ----------------------------------------------------------------------------

  build() {
    const periodButtons = PERIODS.map((days) => h("button", {
      type: "button", "aria-pressed": "false", dataset: { days: String(days) },
      onclick: () => this.pickRange({ days }),
    }, `${days} days`));
    const custom = DATE_RANGES ? this.customRange() : null;
    const chatSelect = h("select", { id: uid("analytics-chat"), onchange: (event) => this.pickChat(event.target.value) });
    const el = {
      widget: h("section", { class: "widget", "aria-labelledby": "analytics-title" }),
      pill: h("span", { class: "pill", "data-state": "connecting" }, "Connecting…"),
      zone: h("span", {}, this.zone),
      chatSelect,
      periodButtons,
      custom,
      csv: h("a", { class: "link-button", href: "/analytics.csv", onclick: (event) => this.downloadCsv(event, "daily") },
        icon("download", 16), "Download CSV"),
      chatsCsv: h("a", { class: "link-button", href: "/analytics.csv", onclick: (event) => this.downloadCsv(event, "chats") },
        icon("download", 16), "Export chats"),
      problem: h("p", { class: "notice notice--error", role: "alert", hidden: true }),
      body: h("div", { class: "body" }),
      notice: h("p", { class: "notice", role: "status", hidden: true }),
      error: h("p", { class: "notice notice--error", role: "alert", hidden: true }),
      zoneNote: h("p", { class: "hint", hidden: true }),
      kpis: h("dl", { class: "kpis" }),
      facts: h("p", { class: "facts" }),
      daily: h("div", { class: "chart", role: "img", "aria-label": "Messages and users per day: loading" }),
      dailyCaption: h("span", {}),
      previousLegend: h("span", { hidden: true }, h("span", { class: "swatch swatch--before" }), "Previous period"),
      dailyZone: h("p", { class: "axis-note" }),
      hourly: h("div", { class: "chart", role: "img", "aria-label": "Messages by hour of day: loading" }),
      hourlyZone: h("p", { class: "axis-note" }),
      chats: h("div", {}),
      hint: h("p", { class: "hint", hidden: true }, "No messages yet. The numbers move as soon as your bot receives its first message."),
      updated: h("span", {}),
    };
    this.el = el;
    // Issue 28's sections: hidden until a summary carries their field (see show()).
    this.sections = {
      members: membersSection(),
      content: panel("What is posted", h("div", {})),
      topPosters: panel("Top posters", h("div", {})),
    };
    for (const section of Object.values(this.sections)) section.element.hidden = true;

    mount(
      el.widget,
      h("div", { class: "head" },
        h("div", {},
          h("div", { class: "title" }, h("h2", { id: "analytics-title" }, "Channel Analytics"), el.pill),
          h("p", { class: "sub" }, "Messages and members across your bot's chats, updated live. Dates and hours are in ", el.zone, ".")),
        h("div", { class: "tools" },
          h("div", { class: "picker" }, h("label", { for: chatSelect.id }, "Chat"), chatSelect),
          h("div", { class: "seg", role: "group", "aria-label": "Chart period" }, periodButtons, custom?.button),
          el.csv)),
      custom?.form,
      el.problem,
      mount(el.body,
        el.notice,
        el.error,
        el.zoneNote,
        el.kpis,
        el.facts,
        el.hint,
        h("div", { class: "charts" },
          h("figure", { class: "panel" },
            h("figcaption", {}, el.dailyCaption,
              h("span", { class: "legend", "aria-hidden": "true" },
                el.previousLegend,
                h("span", {}, h("span", { class: "swatch" }), "Messages"),
                h("span", {}, h("span", { class: "swatch swatch--line" }), "Users"))),
            el.daily,
            el.dailyZone),
          h("figure", { class: "panel" },
            h("figcaption", {}, "Messages by hour of day"),
            el.hourly,
            el.hourlyZone)),
        h("div", { class: "charts charts--even" }, this.sections.members.element, this.sections.content.element),
        h("div", { class: "charts charts--even" },
          h("section", { class: "panel", "aria-labelledby": "chats-title" },
            h("div", { class: "panel__head" }, h("h3", { id: "chats-title" }, "Busiest chats"), el.chatsCsv),
            el.chats),
          this.sections.topPosters.element),
        h("p", { class: "foot" }, el.updated)),
    );
    mount(this.shadowRoot, el.widget);
    this.drawPlaceholders();
    this.showZone();
    this.charts = [dailyChart(el.daily), hourlyChart(el.hourly)];
  }

  /**
   * The custom range's button and form (From, To, Apply), checked by checkRange: offered only
   * when the server takes from/to (DATE_RANGES in options.js).
   */
  customRange() {
    const field = (label) => {
      const input = h("input", { type: "date", id: uid("analytics-date"), required: true });
      const error = h("span", { class: "field-error", id: uid("analytics-date-error"), hidden: true });
      return { input, error, element: h("div", { class: "date-field" }, h("label", { for: input.id }, label), input, error) };
    };
    const from = field("From");
    const to = field("To");
    const form = h("form", { class: "custom-range", hidden: true, "aria-label": "Custom dates", novalidate: true },
      from.element, to.element, h("button", { type: "submit", class: "link-button" }, "Show"));
    const button = h("button", { type: "button", "aria-pressed": "false", "aria-expanded": "false", dataset: { custom: "" },
      onclick: () => {
        form.hidden = !form.hidden;
        button.setAttribute("aria-expanded", String(!form.hidden));
        if (!form.hidden) from.input.focus();
      } }, "Custom");
    const showErrors = (errors) => {
      for (const [name, f] of [["from", from], ["to", to]]) {
        f.error.textContent = errors[name] ?? "";
        f.error.hidden = !errors[name];
        if (errors[name]) f.input.setAttribute("aria-invalid", "true");
        else f.input.removeAttribute("aria-invalid");
        if (errors[name]) f.input.setAttribute("aria-describedby", f.error.id);
        else f.input.removeAttribute("aria-describedby");
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const errors = checkRange(from.input.value, to.input.value, today(this.zone));
      showErrors(errors);
      if (errors.from || errors.to) return;
      this.pickRange({ from: from.input.value, to: to.input.value });
    });
    return {
      button, form,
      show: (range) => {
        showErrors({}); // a new range: what was said of the last one goes
        from.input.max = to.input.max = today(this.zone);
        if ("from" in range) [from.input.value, to.input.value] = [range.from, range.to];
      },
      /** The server's word on the range (a `from` before retention keeps): beside its field, the form open. */
      refused: (errors) => {
        showErrors(errors);
        form.hidden = false;
        button.setAttribute("aria-expanded", "true");
      },
    };
  }

  pickRange(range) {
    if ("days" in range) {
      this.removeAttribute("from");
      this.removeAttribute("to");
      this.setAttribute("days", String(range.days));
    } else {
      this.removeAttribute("days");
      this.setAttribute("from", range.from);
      this.setAttribute("to", range.to);
    }
  }

  pickChat(chatId) {
    if (chatId) this.setAttribute("chat-id", chatId);
    else this.removeAttribute("chat-id");
  }

  drawPlaceholders() {
    mount(this.el.kpis, ["Total messages", "Messages today", "This week", "Unique users"].map((label) =>
      h("div", { class: "kpi" }, h("dt", {}, label), h("dd", { class: "value placeholder" }, "0"), h("dd", { class: "delta" }, "Loading…"))));
  }

  /** The pickers and links as the options say. */
  showOptions() {
    const { range } = this.options;
    for (const button of this.el.periodButtons) {
      button.setAttribute("aria-pressed", String("days" in range && Number(button.dataset.days) === range.days));
    }
    if (this.el.custom) {
      this.el.custom.button.setAttribute("aria-pressed", String("from" in range));
      this.el.custom.show(range);
    }
    this.el.dailyCaption.textContent = `Messages and users per day, ${rangeText(range, formatDay)}`;
    // The links' addresses carry no token: a click fetches with the Authorization header instead.
    this.el.csv.href = this.csvPath("daily");
    this.el.chatsCsv.href = this.csvPath("chats");
    this.showChats();
  }

  /** The chat picker's options: all chats, then each chat seen (and the one shown, even if not seen). */
  showChats() {
    const current = this.options?.ok ? this.options.chatId : null;
    const chats = new Map(this.chats);
    if (current && !chats.has(current)) chats.set(current, null);
    const entries = [...chats].sort(([a, x], [b, y]) => (x ?? a).localeCompare(y ?? b));
    const key = JSON.stringify([current, entries]);
    if (key === this.chatsKey) return; // unchanged: leave an open picker alone
    this.chatsKey = key;
    mount(this.el.chatSelect,
      h("option", { value: "" }, "All chats"),
      entries.map(([chatId, title]) => h("option", { value: chatId }, chatName({ chatId, title }))));
    this.el.chatSelect.value = current ?? "";
  }

  rememberChats(chats) {
    for (const chat of chats) this.chats.set(chat.chatId, chat.title);
  }

  /** The chats to pick from when the widget started on one chat. */
  async loadChats() {
    try {
      const data = await graphql(CHATS_QUERY, {}, { token: this.token ?? undefined });
      this.allChatsSeen = true;
      this.rememberChats(data.analytics?.chats ?? []);
      if (this.options?.ok) this.showChats();
    } catch {
      /* the picker offers what it knows; the subscription reports real trouble */
    }
  }

  showZone() {
    const zone = this.zone;
    this.el.zone.textContent = zone;
    this.el.dailyZone.textContent = `Dates in ${zone}`;
    this.el.hourlyZone.textContent = `Hours in ${zone}`;
    const asked = this.options?.ok ? this.options.timezone : null;
    this.el.zoneNote.hidden = !asked || asked === zone;
    this.el.zoneNote.textContent = asked && asked !== zone
      ? `The figures are in ${zone}, the time zone of the install's settings, not in ${asked} as this page asked.` : "";
  }

  // --- data -----------------------------------------------------------------------------------

  show(summary) {
    const { el } = this;
    const { range, chatId } = this.options;
    const days = rangeDays(range);
    const inWords = rangeText(range, formatDay);
    const during = rangeDuring(range, formatDay);
    el.widget.removeAttribute("aria-busy");
    el.error.hidden = true;
    this.zone = zoneOf(summary);
    this.zoneKnown = true;
    this.showZone();
    if (!chatId) {
      this.allChatsSeen = true;
      this.rememberChats(summary.chats);
    }
    this.showChats();

    mount(el.kpis, headlineFigures(summary, range, inWords).map((figure) => h(
      "div",
      { class: "kpi" },
      h("dt", {}, figure.label),
      h("dd", { class: "value", dataset: { kpi: figure.key } }, formatNumber(figure.value)),
      h("dd", { class: "delta", dataset: { direction: figure.change.direction } },
        h("strong", {}, figure.change.text), ` ${figure.against}`),
    )));

    const { activeUsers: active, period } = summary;
    mount(el.facts,
      h("span", {}, "Active users: ", h("b", {}, formatNumber(active.day)), " today · ",
        h("b", {}, formatNumber(active.week)), " this week · ", h("b", {}, formatNumber(active.month)), " this month"),
      h("span", {}, "Joined ", h("b", {}, formatNumber(period.joins)), " · left ", h("b", {}, formatNumber(period.leaves)),
        ` ${during}`));
    el.hint.hidden = summary.totalMessages > 0;

    const series = dailySeries(summary, days);
    const before = previousDaily(summary, days);
    this.charts[0].update(series, before);
    el.previousLegend.hidden = !before.length;
    el.daily.setAttribute("aria-label", describeDaily(series, before, this.zone));
    this.charts[1].update(summary.hourly);
    el.hourly.setAttribute("aria-label", describeHourly(summary.hourly, this.zone));

    mount(el.chats, chatTable(summary.chats.slice(0, BUSIEST), inWords));
    this.showSections(summary, inWords, during);
    const time = new Intl.DateTimeFormat("en-GB", { timeZone: this.zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    el.updated.textContent = `Updated ${time.format(new Date())} ${this.zone}`;
  }

  /** Issue 28's sections, each shown when the summary carries its field (SUBSCRIPTION asks for them). */
  showSections(summary, inWords, during) {
    const { members, content, topPosters } = this.sections;
    members.element.hidden = !("members" in summary);
    if ("members" in summary) members.update(summary.members, this.zone, during);
    content.element.hidden = !("content" in summary);
    if ("content" in summary) mount(content.body, contentList(summary.content));
    topPosters.element.hidden = !("topPosters" in summary);
    if ("topPosters" in summary) mount(topPosters.body, postersTable(summary.topPosters, inWords));
  }

  showStatus(status) {
    this.status = status;
    const { pill, notice } = this.el;
    pill.hidden = status === "reconnecting";
    pill.dataset.state = status === "live" ? "live" : "connecting";
    pill.textContent = status === "live" ? "Live" : "Connecting…";
    notice.hidden = status !== "reconnecting";
    notice.textContent = status === "reconnecting" ? "Reconnecting… The numbers will catch up once the connection is back." : "";
    if (status === "forbidden") {
      signOut("Your API token is not valid any more. Sign in again with a current token.");
    }
  }

  showError(errors) {
    const { el } = this;
    el.widget.removeAttribute("aria-busy");
    const [error] = errors;
    const code = error?.extensions?.code;
    if (code === "NOT_INSTALLED") {
      mount(el.widget, h("div", {}, h("h2", { id: "analytics-title" }, "Channel Analytics"),
        h("p", { class: "sub" }, "Channel Analytics is not installed. ",
          h("a", { href: "/plugins?category=analytics" }, "Install it from Plugins"), " to see your numbers here.")));
      return;
    }
    if (code === "UNAUTHENTICATED") {
      signOut("Your API token is not valid any more. Sign in again with a current token.");
      return;
    }
    const range = this.options?.ok ? this.options.range : null;
    const refused = code === "BAD_USER_INPUT" ? rangeRefusal(error) : {};
    if (range && "from" in range && this.el.custom && (refused.from || refused.to)) {
      this.el.custom.refused(refused); // a range the server does not keep: said beside the dates
    }
    el.error.textContent = `The numbers could not be loaded: ${describeError({ code: code ?? "INTERNAL", fieldErrors: [], message: error?.message ?? "" })}`;
    el.error.hidden = false;
  }

  csvPath(table) {
    const { range, chatId } = this.options;
    const params = new URLSearchParams({ ...("days" in range ? { days: String(range.days) } : { from: range.from, to: range.to }), table });
    if (chatId) params.set("chatId", chatId);
    return `/analytics.csv?${params}`;
  }

  async downloadCsv(event, table) {
    event.preventDefault();
    if (!this.options?.ok) return;
    try {
      const { range } = this.options;
      const span = "days" in range ? `${range.days}d` : `${range.from}_${range.to}`;
      await download(this.csvPath(table), `analytics-${table}-${span}.csv`);
    } catch (error) {
      this.el.error.textContent = `The CSV could not be downloaded: ${describeError(error)}`;
      this.el.error.hidden = false;
    }
  }
}

/**
 * {from?: sentence, to?: sentence}: the server's refusal of a range (BAD_USER_INPUT, whose
 * `extensions.errors` name "/from" or "/to"), e.g. a `from` before the install's retention.
 */
function rangeRefusal(error) {
  const found = {};
  for (const item of error?.extensions?.errors ?? []) {
    const name = String(item?.path ?? "").replace(/^\//, "");
    if (name === "from" || name === "to") found[name] = sentence(error.message);
  }
  return found;
}

/** A titled panel whose `body` a section's renderer fills. */
function panel(title, body) {
  const id = uid("analytics-section");
  return { body, element: h("section", { class: "panel", "aria-labelledby": id }, h("h3", { id }, title), body) };
}

if (!customElements.get("plugboard-analytics")) {
  customElements.define("plugboard-analytics", AnalyticsWidget);
}
