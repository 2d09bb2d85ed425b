// <plugboard-analytics days="7" chat-id="…">: the live Channel Analytics widget, one element that
// any page of ours can embed. It subscribes to analyticsUpdated with the signed-in token (or the
// element's `token` property), redraws on every push, and reconnects by itself.

import uplotCss from "uplot/dist/uPlot.min.css?inline";
import css from "./widget.css?inline";
import { download } from "../api.js";
import { getToken, signOut } from "../auth.js";
import { h, mount } from "../dom.js";
import { formatNumber } from "../format.js";
import { icon } from "../icons.js";
import { describeError } from "../messages.js";
import { dailyChart, hourlyChart } from "./charts.js";
import { liveClient } from "./live.js";
import { SUBSCRIPTION, dailySeries, describeDaily, describeHourly, headlineFigures } from "./summary.js";

const PERIODS = [7, 30];
const sheets = () => [uplotCss, css].map((text) => {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(text);
  return sheet;
});

class AnalyticsWidget extends HTMLElement {
  static observedAttributes = ["days", "chat-id"];

  constructor() {
    super();
    this.attachShadow({ mode: "open" }).adoptedStyleSheets = sheets();
    this.token = null; // set to use another token than the signed-in one
  }

  get days() {
    const days = Number(this.getAttribute("days"));
    return PERIODS.includes(days) ? days : 7;
  }

  get chatId() {
    return this.getAttribute("chat-id") || null;
  }

  connectedCallback() {
    this.build();
    this.client = liveClient({ token: () => this.token ?? getToken(), onStatus: (status) => this.showStatus(status) });
    this.subscribe();
  }

  disconnectedCallback() {
    this.stop?.();
    this.client?.dispose();
    this.charts?.forEach((chart) => chart.destroy());
    this.client = null;
  }

  attributeChangedCallback() {
    if (this.client) this.subscribe();
  }

  subscribe() {
    this.stop?.();
    this.showPeriod();
    this.el.widget.setAttribute("aria-busy", "true");
    this.stop = this.client.subscribe(SUBSCRIPTION, { days: this.days, chatId: this.chatId }, {
      next: (data) => this.show(data.analyticsUpdated),
      error: (errors) => this.showError(errors),
    });
  }

  // --- structure ----------------------------------------------------------------------------

  build() {
    const periodButtons = PERIODS.map((days) => h("button", {
      type: "button", "aria-pressed": "false", dataset: { days: String(days) },
      onclick: () => this.setAttribute("days", String(days)),
    }, `${days} days`));
    const csv = h("a", { class: "link-button", href: this.csvPath("daily"), onclick: (event) => this.downloadCsv(event, "daily") },
      icon("download", 16), "Download CSV");
    const chatsCsv = h("a", { class: "link-button", href: this.csvPath("chats"), onclick: (event) => this.downloadCsv(event, "chats") },
      icon("download", 16), "Export chats");
    const el = {
      widget: h("section", { class: "widget", "aria-labelledby": "analytics-title" }),
      pill: h("span", { class: "pill", "data-state": "connecting" }, "Connecting…"),
      periodButtons,
      csv,
      chatsCsv,
      notice: h("p", { class: "notice", role: "status", hidden: true }),
      error: h("p", { class: "notice notice--error", role: "alert", hidden: true }),
      kpis: h("dl", { class: "kpis" }),
      facts: h("p", { class: "facts" }),
      daily: h("div", { class: "chart", role: "img", "aria-label": "Messages and users per day: loading" }),
      dailyCaption: h("span", {}),
      hourly: h("div", { class: "chart", role: "img", "aria-label": "Messages by hour of day: loading" }),
      chats: h("div", {}),
      hint: h("p", { class: "hint", hidden: true }, "No messages yet. The numbers move as soon as your bot receives its first message."),
      updated: h("span", {}),
    };
    this.el = el;
    mount(
      el.widget,
      h("div", { class: "head" },
        h("div", {},
          h("div", { class: "title" }, h("h2", { id: "analytics-title" }, "Channel Analytics"), el.pill),
          h("p", { class: "sub" }, "Messages and members across your bot's chats, updated live. Dates and hours are UTC.")),
        h("div", { class: "tools" },
          h("div", { class: "seg", role: "group", "aria-label": "Chart period" }, periodButtons),
          csv)),
      el.notice,
      el.error,
      el.kpis,
      el.facts,
      el.hint,
      h("div", { class: "charts" },
        h("figure", { class: "panel" },
          h("figcaption", {}, el.dailyCaption,
            h("span", { class: "legend", "aria-hidden": "true" },
              h("span", {}, h("span", { class: "swatch" }), "Messages"),
              h("span", {}, h("span", { class: "swatch swatch--line" }), "Users"))),
          el.daily,
          h("p", { class: "axis-note" }, "Dates in UTC")),
        h("figure", { class: "panel" },
          h("figcaption", {}, "Messages by hour of day"),
          el.hourly,
          h("p", { class: "axis-note" }, "Hours in UTC"))),
      h("section", { class: "panel", "aria-labelledby": "chats-title" },
        h("div", { class: "panel__head" }, h("h3", { id: "chats-title" }, "Busiest chats"), el.chatsCsv),
        el.chats),
      h("p", { class: "foot" }, el.updated),
    );
    mount(this.shadowRoot, el.widget);
    this.drawPlaceholders();
    this.charts = [dailyChart(el.daily), hourlyChart(el.hourly)];
  }

  drawPlaceholders() {
    mount(this.el.kpis, ["Total messages", "Messages today", "This week", "Unique users"].map((label) =>
      h("div", { class: "kpi" }, h("dt", {}, label), h("dd", { class: "value placeholder" }, "0"), h("dd", { class: "delta" }, "Loading…"))));
  }

  showPeriod() {
    for (const button of this.el.periodButtons) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.days) === this.days));
    }
    this.el.dailyCaption.textContent = `Messages and users per day, last ${this.days} days`;
    // The links' addresses carry no token: a click fetches with the Authorization header instead.
    this.el.csv.href = this.csvPath("daily");
    this.el.chatsCsv.href = this.csvPath("chats");
  }

  // --- data -----------------------------------------------------------------------------------

  show(summary) {
    const { el } = this;
    el.widget.removeAttribute("aria-busy");
    el.error.hidden = true;
    const days = this.days;

    mount(el.kpis, headlineFigures(summary, days).map((figure) => h(
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
        ` in the last ${days} days`));
    el.hint.hidden = summary.totalMessages > 0;

    const series = dailySeries(summary);
    this.charts[0].update(series);
    el.daily.setAttribute("aria-label", describeDaily(series));
    this.charts[1].update(summary.hourly);
    el.hourly.setAttribute("aria-label", describeHourly(summary.hourly));

    mount(el.chats, summary.chats.length ? chatTable(summary.chats, days) : h("p", { class: "none" }, "No chats yet."));
    el.updated.textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC`;
  }

  showStatus(status) {
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
    el.error.textContent = `The numbers could not be loaded: ${describeError({ code: code ?? "INTERNAL", fieldErrors: [], message: error?.message ?? "" })}`;
    el.error.hidden = false;
  }

  csvPath(table) {
    const params = new URLSearchParams({ days: String(this.days), table });
    if (this.chatId) params.set("chatId", this.chatId);
    return `/analytics.csv?${params}`;
  }

  async downloadCsv(event, table) {
    event.preventDefault();
    try {
      await download(this.csvPath(table), `analytics-${table}-${this.days}d.csv`);
    } catch (error) {
      this.el.error.textContent = `The CSV could not be downloaded: ${describeError(error)}`;
      this.el.error.hidden = false;
    }
  }
}

function chatTable(chats, days) {
  return h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, `Busiest chats in the last ${days} days`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Chat"), h("th", { scope: "col", class: "num" }, "Messages"),
      h("th", { scope: "col", class: "num num--narrow" }, "Users"))),
    h("tbody", {}, chats.map((chat) => h(
      "tr",
      {},
      h("td", {}, chat.title || `Chat ${chat.chatId}`, chat.type ? h("span", { class: "chat-type" }, chat.type) : null),
      h("td", { class: "num" }, formatNumber(chat.messages)),
      h("td", { class: "num num--narrow" }, formatNumber(chat.users)),
    ))),
  );
}

if (!customElements.get("plugboard-analytics")) {
  customElements.define("plugboard-analytics", AnalyticsWidget);
}
