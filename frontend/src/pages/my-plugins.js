// /my-plugins: the user's installs, the live analytics widget, and their bots.

import "../analytics/widget.js";
import { graphql } from "../api.js";
import { botsBusy, botsSection, GATEWAY_FIELDS } from "../bots.js";
import { h, mount } from "../dom.js";
import { icon } from "../icons.js";
import { describeError } from "../messages.js";
import { INSTALL_FIELDS, installCard } from "../install-card.js";
import { startPage } from "../shell.js";

const PLUGIN_FIELDS = "id slug name description category version icon requiredGateways configSchema inputSchema";
const MINE = `query Mine {
  myPlugins { ${INSTALL_FIELDS} plugin { ${PLUGIN_FIELDS} } }
  myGateways { ${GATEWAY_FIELDS} }
}`;
const GATEWAYS = `query Gateways { myGateways { ${GATEWAY_FIELDS} } }`;
// Everything but the config: a form being edited keeps what its user typed.
const STATS = "query Stats { myPlugins { id isEnabled status statusReason consecutiveFailures executionCount lastExecutedAt lastError } }";
const STATS_EVERY_MS = 10_000;

function render(main) {
  const content = h("div", { "aria-busy": "true" },
    h("p", { class: "visually-hidden" }, "Loading your plugins…"),
    h("div", { class: "grid" }, [1, 2].map(() => h("div", { class: "card skeleton skeleton-card", "aria-hidden": "true" }))));
  mount(
    main,
    h("div", { class: "page__head" },
      h("div", {}, h("h1", {}, "My plugins"),
        h("p", { class: "page__lead" }, "Turn plugins on and off, change their settings, and watch them work.")),
      h("a", { class: "button button--secondary", href: "/plugins" }, icon("plus", 18), "Browse plugins")),
    content,
  );

  let cards = new Map();
  let timer = null;
  let bots = null; // the bots section, and what it shows
  let botsShown = "";

  async function load() {
    try {
      const { myPlugins, myGateways } = await graphql(MINE);
      draw(myPlugins, myGateways);
    } catch (error) {
      content.removeAttribute("aria-busy");
      mount(content, h("p", { class: "notice notice--error", role: "alert" }, icon("alert", 18), describeError(error)));
    }
  }

  function draw(installs, gateways) {
    content.removeAttribute("aria-busy");
    cards = new Map();
    const hasAnalytics = installs.some((install) => install.plugin.slug === "analytics");
    const list = installs.length
      ? h("div", { class: "grid" }, installs.map((install) => {
        const card = installCard(install, { onUninstalled: load, onStale: load, onChanged: () => refreshStats({ always: true }) });
        cards.set(install.id, card);
        return card.element;
      }))
      : h("div", { class: "empty" },
        h("h3", {}, "No plugins installed yet"),
        h("p", {}, "Pick what your bot should do: count messages, greet newcomers, and more."),
        h("a", { class: "button", href: "/plugins" }, "Browse plugins"));
    mount(
      content,
      hasAnalytics ? h("div", { class: "widget-slot" }, h("plugboard-analytics", { days: "7" })) : null,
      h("section", { class: "section", "aria-labelledby": "installs-title" },
        h("div", { class: "section__head" }, h("h2", { id: "installs-title" }, "Installed plugins")),
        list),
      drawBots(gateways),
    );
  }

  /** The bots section for `gateways`, in place of the one shown (if it is still on the page). */
  function drawBots(gateways) {
    const section = botsSection({ gateways, onChange: load });
    if (bots?.isConnected) bots.replaceWith(section);
    bots = section;
    botsShown = JSON.stringify(gateways);
    return section;
  }

  // A bot's status changes on Telegram's side too (a revoked token, a webhook it cannot reach):
  // shown when it does, unless its user is typing in the section.
  async function refreshBots() {
    if (document.hidden || !bots || botsBusy(bots)) return;
    try {
      const { myGateways } = await graphql(GATEWAYS);
      if (JSON.stringify(myGateways) !== botsShown && !botsBusy(bots)) drawBots(myGateways);
    } catch {
      // The next round tries again.
    }
  }

  async function refreshStats({ always = false } = {}) {
    if ((document.hidden && !always) || !cards.size) return;
    try {
      const { myPlugins } = await graphql(STATS);
      for (const install of myPlugins) cards.get(install.id)?.refresh(install);
    } catch {
      // The next round tries again; the live widget shows connection trouble.
    }
  }

  timer = setInterval(() => {
    refreshStats();
    refreshBots();
  }, STATS_EVERY_MS);
  window.addEventListener("plugboard:signed-out", () => clearInterval(timer), { once: true });
  load();
}

startPage({ path: "/my-plugins", title: "My plugins", render });
