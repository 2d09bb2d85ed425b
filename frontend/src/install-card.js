// One install on /my-plugins: its status (a badge, and what to do about it in words), the
// "Enabled" switch, "Configure" (a form from its configSchema), "Run now" for a plugin that takes
// input (a form from its inputSchema, and the run's result), "Runs" (its run history, with
// "Retry"), "Uninstall" (after confirmation) and its stats.
//
// Configure, Run now and Runs open beside the card's summary: an open card takes the grid's whole row
// (app.css: .card--open), so a form or a long run list has the page's width, not the card's.

import { graphql } from "./api.js";
import { configForm } from "./config-form.js";
import { confirmAction } from "./confirm.js";
import { h, mount } from "./dom.js";
import { formatDateTime, formatNumber } from "./format.js";
import { icon } from "./icons.js";
import { describeError } from "./messages.js";
import { pluginHead } from "./plugin-card.js";
import { runNowPanel, runNowWords, runsOnDemand } from "./run-now.js";
import { runsPanel } from "./runs-panel.js";
import { toast } from "./toast.js";

export const INSTALL_FIELDS = "id isEnabled status statusReason consecutiveFailures config executionCount lastExecutedAt lastError";
const TOGGLE = `mutation Toggle($pluginId: ID!, $enabled: Boolean!) { togglePlugin(pluginId: $pluginId, enabled: $enabled) { ${INSTALL_FIELDS} } }`;
const SAVE = `mutation Save($pluginId: ID!, $config: JSON!) { updatePluginConfig(pluginId: $pluginId, config: $config) { ${INSTALL_FIELDS} } }`;
const UNINSTALL = "mutation Uninstall($pluginId: ID!) { uninstallPlugin(pluginId: $pluginId) }";

const STATUS = {
  ACTIVE: { label: "Active", tone: "badge--success", icon: "check" },
  DISABLED: { label: "Off", tone: "", icon: "info" },
  WAITING_FOR_GATEWAY: { label: "Waiting for a bot", tone: "badge--warning", icon: "bot" },
  NEEDS_CONFIG: { label: "Needs settings", tone: "badge--warning", icon: "settings" },
  FAILING: { label: "Failing", tone: "badge--danger", icon: "alert" },
};

// The breaker's reason names its next trial run as an ISO date-time: shown as the pages show times.
const ISO_TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?/;

/** When a FAILING install is tried again, from its statusReason (null when it does not say). */
export function nextTrial(reason) {
  const found = reason?.match(ISO_TIME);
  return found ? found[0] : null;
}

export function statusBadge(install) {
  const status = STATUS[install.status] ?? { label: install.status, tone: "", icon: "info" };
  return h("span", { class: `badge ${status.tone}`, dataset: { status: install.status } },
    icon(status.icon, 14), h("span", { class: "visually-hidden" }, "Status: "), status.label);
}

/**
 * @param {object} install a UserPlugin with its plugin
 * @param {{onUninstalled: () => void, onStale: () => void, onChanged?: () => void}} options
 *   `onChanged`: something here may have changed other installs' state too (a retry closed a breaker).
 * @returns {{element: HTMLElement, refresh(install: object): void}}
 */
export function installCard(install, { onUninstalled, onStale, onChanged = () => {} }) {
  const { plugin } = install;
  const titleId = `install-${plugin.slug}`;
  const formId = `config-${plugin.slug}`;
  const alert = h("p", { class: "notice notice--error", role: "alert", hidden: true });
  const stats = h("dl", { class: "stats" });
  const state = h("div", { class: "install-state" });
  const badgeSlot = h("span", { class: "install-status" });
  const panel = h("div", { id: formId, class: "card__panel", hidden: true });
  let form = null;
  const runs = runsPanel({ install, plugin, id: `runs-${plugin.slug}`, onChanged, onStale });
  const runNow = runsOnDemand(plugin)
    ? runNowPanel({ install, plugin, id: `run-${plugin.slug}`, onRan: ran, onChanged, onStale, onClose: () => closeRunNow() })
    : null;

  const toggle = h("input", { type: "checkbox", role: "switch", checked: install.isEnabled, onchange: () => setEnabled(toggle.checked) });
  const configure = h("button", {
    class: "button button--secondary button--small", type: "button", "aria-expanded": "false", "aria-controls": formId,
    onclick: () => (panel.hidden ? openForm() : closeForm()),
  }, icon("settings", 16), "Configure");
  const history = h("button", {
    class: "button button--secondary button--small", type: "button", "aria-expanded": "false", "aria-controls": `runs-${plugin.slug}`,
    onclick: () => (runs.element.hidden ? openRuns() : closeRuns()),
  }, icon("history", 16), "Runs");
  const runNowButton = runNow && h("button", {
    class: "button button--secondary button--small", type: "button", "aria-expanded": "false", "aria-controls": runNow.element.id,
    onclick: () => (runNow.element.hidden ? openRunNow() : closeRunNow()),
  }, icon("play", 16), runNowWords(plugin).title);
  const uninstall = h("button", { class: "button button--danger button--small", type: "button", onclick: () => remove() },
    icon("trash", 16), "Uninstall");

  function fail(error) {
    alert.replaceChildren(icon("alert", 18), describeError(error));
    alert.hidden = false;
    if (error.code === "NOT_INSTALLED" || error.code === "NOT_FOUND") onStale();
  }

  async function setEnabled(enabled) {
    alert.hidden = true;
    toggle.disabled = true;
    try {
      const { togglePlugin } = await graphql(TOGGLE, { pluginId: plugin.id, enabled });
      refresh(togglePlugin);
      toast(`${plugin.name} is ${enabled ? "enabled" : "paused"}.`);
    } catch (error) {
      toggle.checked = !enabled;
      fail(error);
    } finally {
      toggle.disabled = false;
    }
  }

  function openForm() {
    if (form) {
      form.element.querySelector("input, select, textarea")?.focus();
      return;
    }
    form = configForm({
      schema: plugin.configSchema,
      value: install.config,
      onSubmit: async (config) => {
        alert.hidden = true;
        try {
          const { updatePluginConfig } = await graphql(SAVE, { pluginId: plugin.id, config });
          refresh(updatePluginConfig);
          form.saved(updatePluginConfig.config);
          form.setStatus("Saved");
        } catch (error) {
          if (error.code === "BAD_USER_INPUT") form.setErrors(error.fieldErrors.length ? error.fieldErrors : [{ path: "", message: error.message }]);
          else fail(error);
        }
      },
      onCancel: closeForm,
    });
    mount(panel, form.element);
    panel.hidden = false;
    configure.setAttribute("aria-expanded", "true");
    layOut();
    form.element.querySelector("input, select, textarea")?.focus();
  }

  function closeForm() {
    form = null;
    panel.hidden = true;
    panel.replaceChildren();
    configure.setAttribute("aria-expanded", "false");
    layOut();
    configure.focus();
  }

  function openRunNow() {
    runNow.open();
    runNowButton.setAttribute("aria-expanded", "true");
    layOut();
    runNow.focus();
  }

  function closeRunNow() {
    runNow.close();
    runNowButton.setAttribute("aria-expanded", "false");
    layOut();
    runNowButton.focus();
  }

  /** A run on demand finished: it heads the run list (when open), and the counts changed. */
  function ran() {
    if (!runs.element.hidden) runs.reload();
    onChanged();
  }

  function openRuns() {
    runs.open();
    history.setAttribute("aria-expanded", "true");
    layOut();
    element.scrollIntoView({ block: "nearest" });
  }

  function closeRuns() {
    runs.close();
    history.setAttribute("aria-expanded", "false");
    layOut();
  }

  /** An open form or run list widens the card to the grid's row, with the summary beside it. */
  function layOut() {
    const open = !panel.hidden || !runs.element.hidden || (runNow !== null && !runNow.element.hidden);
    element.classList.toggle("card--open", open);
    panels.hidden = !open;
  }

  function focusBotForm(event) {
    const token = document.getElementById("bot-token");
    if (!token) return;
    event.preventDefault();
    token.scrollIntoView({ block: "center" });
    token.focus({ preventScroll: true });
  }

  function stateNotice() {
    const reason = install.statusReason ?? "";
    switch (install.status) {
      case "DISABLED":
        return h("p", { class: "notice" }, icon("info", 18), "Paused: turn on Enabled to run it again.");
      case "WAITING_FOR_GATEWAY":
        return h("div", { class: "notice notice--warning" }, icon("bot", 18),
          h("div", { class: "notice__body" },
            h("p", {}, reason || "Waiting for a gateway it needs."),
            h("a", { href: "#connect-title", onclick: focusBotForm }, "Connect a bot")));
      case "NEEDS_CONFIG":
        return h("div", { class: "notice notice--warning" }, icon("settings", 18),
          h("div", { class: "notice__body" },
            h("p", {}, "Its settings need your attention: ", reason || "they no longer fit this version of the plugin."),
            h("button", { class: "button button--secondary button--small", type: "button", onclick: () => openForm() }, "Open settings")));
      case "FAILING": {
        const at = nextTrial(reason);
        const words = at ? reason.replace(at, formatDateTime(at)) : reason;
        return h("div", { class: "notice notice--error" }, icon("alert", 18),
          h("div", { class: "notice__body" },
            h("p", { class: "notice__title" }, at ? `Next try: ${formatDateTime(at)}` : "Paused after repeated failures"),
            h("p", {}, words),
            h("p", {}, "A successful retry in Runs, or a change to its settings, resumes it now.")));
      }
      default:
        return null;
    }
  }

  async function remove() {
    const confirmed = await confirmAction({
      title: `Uninstall ${plugin.name}?`,
      body: "It stops right away, and its settings are removed. You can install it again from Plugins.",
      confirm: "Uninstall",
    });
    if (!confirmed) return;
    uninstall.disabled = true;
    try {
      await graphql(UNINSTALL, { pluginId: plugin.id });
      toast(`${plugin.name} is uninstalled.`);
      onUninstalled();
    } catch (error) {
      uninstall.disabled = false;
      fail(error);
    }
  }

  function refresh(next) {
    Object.assign(install, next);
    toggle.checked = install.isEnabled;
    mount(stats,
      h("div", {}, h("dt", {}, "Runs"), h("dd", {}, formatNumber(install.executionCount))),
      h("div", { class: "stats__wide" }, h("dt", {}, "Last run"), h("dd", {}, formatDateTime(install.lastExecutedAt))),
      h("div", { class: "stats__full" }, h("dt", {}, "Last error"),
        h("dd", { class: install.lastError ? "last-error" : null }, install.lastError ?? "None")));
    // Redrawn only when the status changes: the stats poll must not take focus from its links.
    const shown = `${install.status}\n${install.statusReason}`;
    if (shown === state.dataset.shown) return;
    state.dataset.shown = shown;
    mount(badgeSlot, statusBadge(install));
    mount(state, stateNotice());
    state.hidden = !state.childElementCount;
    runNow?.refresh();
  }

  const panels = h("div", { class: "card__panels", hidden: true }, panel, runNow?.element, runs.element);
  const element = h(
    "article",
    { class: "card card--install", "aria-labelledby": titleId, dataset: { slug: plugin.slug } },
    h("div", { class: "card__summary" },
      pluginHead(plugin, titleId, "h3", badgeSlot),
      state,
      stats,
      h("div", { class: "card__foot" },
        h("label", { class: "switch" }, toggle, "Enabled"),
        h("div", { class: "card__actions" }, configure, runNowButton, history, uninstall)),
      alert),
    panels,
  );
  refresh(install);
  return { element, refresh };
}
