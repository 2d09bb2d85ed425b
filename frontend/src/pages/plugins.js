// /plugins: the catalog. A card per plugin, a category filter, and "Install".

import { graphql } from "../api.js";
import { h, mount } from "../dom.js";
import { icon } from "../icons.js";
import { describeError, planName } from "../messages.js";
import { categoryLabel, missingGateways, pluginHead, requirements } from "../plugin-card.js";
import { startPage } from "../shell.js";
import { toast } from "../toast.js";

const CATALOG = `query Catalog {
  plugins { id slug name description category version icon requiredGateways installed }
  myPlugins { id }
  myGateways { id type isActive }
}`;

const INSTALL = "mutation Install($pluginId: ID!) { installPlugin(pluginId: $pluginId) { id } }";

function render(main, me) {
  const state = { plugins: [], gateways: [], installs: 0, category: new URLSearchParams(location.search).get("category") };
  const usage = h("p", { class: "page__lead", id: "plan-usage" });
  const filters = h("div", { class: "chips", role: "group", "aria-label": "Category" });
  const notice = h("div", { role: "alert" });
  const grid = h("div", { class: "grid", "aria-busy": "true" },
    h("p", { class: "visually-hidden" }, "Loading plugins…"),
    [1, 2, 3].map(() => h("div", { class: "card skeleton skeleton-card", "aria-hidden": "true" })));

  mount(
    main,
    h(
      "div",
      { class: "page__head" },
      h("div", {}, h("h1", {}, "Plugins"),
        h("p", { class: "page__lead" }, "Add features to your Telegram bot. Installed plugins appear in My plugins, where you set them up.")),
      usage,
    ),
    filters,
    notice,
    grid,
  );

  async function load() {
    try {
      const data = await graphql(CATALOG);
      state.plugins = data.plugins;
      state.gateways = data.myGateways;
      state.installs = data.myPlugins.length;
      draw();
    } catch (error) {
      grid.removeAttribute("aria-busy");
      mount(grid);
      mount(notice, h("p", { class: "notice notice--error" }, icon("alert", 18), describeError(error, { me })));
    }
  }

  function draw() {
    const limit = me.pluginLimit;
    usage.textContent = limit === null
      ? `${state.installs} installed · ${planName(me.plan)} plan, no plugin limit`
      : `${state.installs} of ${limit} plugin${limit === 1 ? "" : "s"} used on the ${planName(me.plan)} plan`;

    const categories = [...new Set(state.plugins.map((p) => p.category))].sort();
    if (state.category && !categories.includes(state.category)) state.category = null;
    mount(filters, [null, ...categories].map((category) => h(
      "button",
      { class: "chip", type: "button", "aria-pressed": String(state.category === category), onclick: () => choose(category) },
      category ? categoryLabel(category) : "All",
    )));

    const shown = state.plugins.filter((p) => !state.category || p.category === state.category);
    grid.removeAttribute("aria-busy");
    if (!shown.length) {
      mount(grid, h("div", { class: "empty card--wide" }, h("h2", {}, "Nothing here yet"),
        h("p", {}, "No plugins in this category yet. Try another one.")));
      return;
    }
    mount(grid, shown.map(card));
  }

  function choose(category) {
    state.category = category;
    const url = new URL(location.href);
    if (category) url.searchParams.set("category", category);
    else url.searchParams.delete("category");
    history.replaceState(null, "", url);
    draw();
  }

  function card(plugin) {
    const titleId = `plugin-${plugin.slug}`;
    const error = h("p", { class: "notice notice--error", role: "alert", hidden: true });
    const foot = h("div", { class: "card__foot" });

    function showFoot() {
      if (plugin.installed) {
        mount(foot,
          h("span", { class: "badge badge--success" }, icon("check", 14), "Installed"),
          h("a", { href: "/my-plugins", class: "button button--secondary button--small" }, "Set up in My plugins"));
      } else {
        mount(foot, h("span", {}), h("button", {
          class: "button", type: "button", "aria-describedby": titleId, onclick: (event) => install(event.currentTarget),
        }, icon("plus", 18), "Install"));
      }
    }

    async function install(button) {
      button.disabled = true;
      button.lastChild.textContent = "Installing…";
      error.hidden = true;
      try {
        await graphql(INSTALL, { pluginId: plugin.id });
        plugin.installed = true;
        state.installs += 1;
        const waiting = missingGateways(plugin, state.gateways).length;
        toast(waiting
          ? `${plugin.name} is installed. It starts working once you connect a Telegram bot on My plugins.`
          : `${plugin.name} is installed. Set it up on My plugins.`);
        draw();
      } catch (err) {
        if (err.code === "ALREADY_INSTALLED") {
          plugin.installed = true;
          draw();
          return;
        }
        error.replaceChildren(icon("alert", 18), describeError(err, { me }));
        error.hidden = false;
        button.disabled = false;
        button.lastChild.textContent = "Install";
        if (err.code === "NOT_FOUND") load();
      }
    }

    showFoot();
    return h(
      "article",
      { class: "card", "aria-labelledby": titleId, dataset: { slug: plugin.slug } },
      pluginHead(plugin, titleId),
      h("p", { class: "card__body" }, plugin.description),
      requirements(plugin, state.gateways),
      foot,
      error,
    );
  }

  load();
}

startPage({ path: "/plugins", title: "Plugins", render });
