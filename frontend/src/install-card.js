// One install on /my-plugins: the "Enabled" switch, "Configure" (a form from its configSchema),
// "Uninstall" (after confirmation) and its stats.

import { graphql } from "./api.js";
import { configForm } from "./config-form.js";
import { confirmAction } from "./confirm.js";
import { h, mount } from "./dom.js";
import { formatDateTime, formatNumber } from "./format.js";
import { icon } from "./icons.js";
import { describeError } from "./messages.js";
import { missingGateways, pluginHead } from "./plugin-card.js";
import { toast } from "./toast.js";

const INSTALL_FIELDS = "id isEnabled config executionCount lastExecutedAt lastError";
const TOGGLE = `mutation Toggle($pluginId: ID!, $enabled: Boolean!) { togglePlugin(pluginId: $pluginId, enabled: $enabled) { ${INSTALL_FIELDS} } }`;
const SAVE = `mutation Save($pluginId: ID!, $config: JSON!) { updatePluginConfig(pluginId: $pluginId, config: $config) { ${INSTALL_FIELDS} } }`;
const UNINSTALL = "mutation Uninstall($pluginId: ID!) { uninstallPlugin(pluginId: $pluginId) }";

/**
 * @param {object} install a UserPlugin with its plugin
 * @param {{gateways: object[], onUninstalled: () => void, onStale: () => void}} options
 * @returns {{element: HTMLElement, refresh(install: object): void}}
 */
export function installCard(install, { gateways, onUninstalled, onStale }) {
  const { plugin } = install;
  const titleId = `install-${plugin.slug}`;
  const formId = `config-${plugin.slug}`;
  const alert = h("p", { class: "notice notice--error", role: "alert", hidden: true });
  const stats = h("dl", { class: "stats" });
  const state = h("div", {});
  const panel = h("div", { id: formId, hidden: true });

  const toggle = h("input", { type: "checkbox", role: "switch", checked: install.isEnabled, onchange: () => setEnabled(toggle.checked) });
  const configure = h("button", {
    class: "button button--secondary button--small", type: "button", "aria-expanded": "false", "aria-controls": formId,
    onclick: () => (panel.hidden ? openForm() : closeForm()),
  }, icon("settings", 16), "Configure");
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
    const form = configForm({
      schema: plugin.configSchema,
      value: install.config,
      onSubmit: async (config) => {
        alert.hidden = true;
        try {
          const { updatePluginConfig } = await graphql(SAVE, { pluginId: plugin.id, config });
          refresh(updatePluginConfig);
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
    form.element.querySelector("input, select, textarea")?.focus();
  }

  function closeForm() {
    panel.hidden = true;
    panel.replaceChildren();
    configure.setAttribute("aria-expanded", "false");
    configure.focus();
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
    const missing = missingGateways(plugin, gateways);
    mount(state,
      missing.length
        ? h("p", { class: "notice notice--warning" }, icon("alert", 18), "Waiting for a Telegram bot: connect one below so this plugin can run.")
        : !install.isEnabled
          ? h("p", { class: "notice" }, icon("info", 18), "Paused: turn on Enabled to run it again.")
          : null);
  }

  refresh(install);
  const element = h(
    "article",
    { class: "card", "aria-labelledby": titleId, dataset: { slug: plugin.slug } },
    pluginHead(plugin, titleId, "h3"),
    state,
    stats,
    h("div", { class: "card__foot" },
      h("label", { class: "switch" }, toggle, "Enabled"),
      h("div", { class: "card__actions" }, configure, uninstall)),
    alert,
    panel,
  );
  return { element, refresh };
}
