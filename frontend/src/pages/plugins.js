// /plugins: the catalog. A card per plugin, a category filter, and "Install". A plugin with
// settings that have no default (a URL, a secret) asks for them first: "Install" opens its settings
// form beside the card (the card takes the grid's row while it is open; its neighbours keep their
// size), and the install is made with that config.

import { graphql } from "../api.js";
import { configForm, settingsToFill } from "../config-form.js";
import { h, mount } from "../dom.js";
import { icon } from "../icons.js";
import { describeError, planName } from "../messages.js";
import { categoryLabel, pluginHead, requirements } from "../plugin-card.js";
import { startPage } from "../shell.js";
import { toast } from "../toast.js";

const CATALOG = `query Catalog {
  plugins { id slug name description category version icon requiredGateways configSchema installed }
  myPlugins { id }
  myGateways { id type isActive }
}`;

const INSTALL = "mutation Install($pluginId: ID!, $config: JSON) { installPlugin(pluginId: $pluginId, config: $config) { id status } }";

/** What an install's toast says: whether it works now, and what is left to do. */
function installedWords(plugin, status, configured) {
  const settings = configured ? " with your settings" : "";
  if (status === "WAITING_FOR_GATEWAY") {
    return `${plugin.name} is installed${settings}. It starts working once you connect a Telegram bot on My plugins.`;
  }
  if (status === "ACTIVE") {
    return `${plugin.name} is installed${settings} and working.${configured ? "" : " Its settings are on My plugins."}`;
  }
  return `${plugin.name} is installed${settings}. See it on My plugins.`;
}

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
    const formId = `install-form-${plugin.slug}`;
    const error = h("p", { class: "notice notice--error", role: "alert", hidden: true });
    const foot = h("div", { class: "card__foot" });
    const panel = h("div", { id: formId, class: "card__panels", hidden: true });
    let article = null;
    const toFill = settingsToFill(plugin.configSchema);
    const properties = plugin.configSchema?.properties ?? {};
    let installButton = null;

    function showFoot() {
      if (plugin.installed) {
        mount(foot,
          h("span", { class: "badge badge--success" }, icon("check", 14), "Installed"),
          h("a", { href: "/my-plugins", class: "button button--secondary button--small" }, "See it in My plugins"));
        return;
      }
      installButton = h("button", {
        class: "button", type: "button", "aria-describedby": titleId,
        "aria-expanded": toFill.length ? "false" : null, "aria-controls": toFill.length ? formId : null,
        onclick: (event) => (toFill.length ? toggleForm() : install(event.currentTarget)),
      }, icon("plus", 18), "Install");
      mount(foot, h("span", {}), installButton);
    }

    function toggleForm() {
      if (!panel.hidden) {
        closeForm();
        return;
      }
      error.hidden = true;
      const form = configForm({
        schema: plugin.configSchema,
        value: {},
        submitLabel: `Install ${plugin.name}`,
        onSubmit: async (config) => {
          const problem = await install(null, config);
          if (problem?.code === "BAD_USER_INPUT") {
            form.setErrors(problem.fieldErrors.length ? problem.fieldErrors : [{ path: "", message: problem.message }]);
          }
        },
        onCancel: closeForm,
      });
      mount(panel, h("div", { class: "card__panel" },
        h("p", { class: "field__help install-form__lead" }, "Fill in its settings to install it. You can change them later on My plugins."),
        form.element));
      panel.hidden = false;
      article?.classList.add("card--open");
      installButton.setAttribute("aria-expanded", "true");
      form.element.querySelector("input, select, textarea")?.focus();
    }

    function closeForm() {
      panel.hidden = true;
      panel.replaceChildren();
      article?.classList.remove("card--open");
      installButton?.setAttribute("aria-expanded", "false");
      installButton?.focus();
    }

    /** Installs; returns a BAD_USER_INPUT error for the form to place, else null. */
    async function install(button, config = null) {
      if (button) {
        button.disabled = true;
        button.lastChild.textContent = "Installing…";
      }
      error.hidden = true;
      try {
        const { installPlugin } = await graphql(INSTALL, { pluginId: plugin.id, config });
        plugin.installed = true;
        state.installs += 1;
        toast(installedWords(plugin, installPlugin.status, config !== null));
        draw();
        // Its "Install" button is gone: keyboard users go on from the card's "See it" link.
        grid.querySelector(`[data-slug="${CSS.escape(plugin.slug)}"] .card__foot a`)?.focus();
        return null;
      } catch (err) {
        if (err.code === "ALREADY_INSTALLED") {
          plugin.installed = true;
          draw();
          return null;
        }
        if (button) {
          button.disabled = false;
          button.lastChild.textContent = "Install";
        }
        if (config !== null && err.code === "BAD_USER_INPUT") return err;
        error.replaceChildren(icon("alert", 18), describeError(err, { me }));
        error.hidden = false;
        if (err.code === "NOT_FOUND") load();
        return null;
      }
    }

    showFoot();
    article = h(
      "article",
      { class: "card", "aria-labelledby": titleId, dataset: { slug: plugin.slug } },
      h("div", { class: "card__summary" },
        pluginHead(plugin, titleId),
        h("p", { class: "card__body" }, plugin.description),
        requirements(plugin, state.gateways),
        toFill.length
          ? h("p", { class: "requires" }, icon("settings", 16),
            `Asks for: ${toFill.map((key) => properties[key].title ?? key).join(", ")}`)
          : null,
        foot,
        error),
      panel,
    );
    return article;
  }

  load();
}

startPage({ path: "/plugins", title: "Plugins", render });
