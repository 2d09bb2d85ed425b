// "Run now" on /my-plugins, for a plugin that takes input (its inputSchema is not null): a form
// generated from the inputSchema as Configure's is from the configSchema (config-form.js), which
// runs the install once now (runPlugin), then the finished run: its outcome, its figures, its error,
// its output. Forward calls it "Send test" and Welcome "Send a test greeting" (RUN_NOW_WORDS).
//
// It is offered while the install runs (ACTIVE or FAILING); otherwise the panel says why instead,
// and the form comes back, with what was typed in it, once the install runs again.

import { graphql } from "./api.js";
import { configForm } from "./config-form.js";
import { h, mount } from "./dom.js";
import { formatDateTime } from "./format.js";
import { icon } from "./icons.js";
import { describeError, sentence } from "./messages.js";
import { outcomeBadge, outcomeSentence, outputBlock, RUN_FIELDS, runFigures } from "./run-details.js";

const RUN_PLUGIN = `mutation RunPlugin($pluginId: ID!, $input: JSON) { runPlugin(pluginId: $pluginId, input: $input) { ${RUN_FIELDS} } }`;

// What "Run now" is called, by plugin slug, where running a plugin on its own is a test of it:
// the card's button and the panel's title, the form's button, and what the panel says it does.
const RUN_NOW_WORDS = {
  forward: { title: "Send test", submit: "Send", lead: "Posts a test message to your webhook, signed as the real ones are." },
  welcome: { title: "Send a test greeting", submit: "Send greeting", lead: "Sends your greeting, as configured, to a chat your bot is in." },
};
const DEFAULT_WORDS = { title: "Run now", submit: "Run", lead: "Runs the plugin once, now, on what you fill in below." };

const RUNNING = new Set(["ACTIVE", "FAILING"]);

/** The words of a plugin's "Run now": {title, submit, lead}. */
export function runNowWords(plugin) {
  return RUN_NOW_WORDS[plugin.slug] ?? DEFAULT_WORDS;
}

/** Whether a plugin can be run on demand at all: it declares what it takes. */
export function runsOnDemand(plugin) {
  return plugin.inputSchema !== null && plugin.inputSchema !== undefined;
}

/** Why an install that does not run now cannot be run now, as the card's status says it. */
function whyNot(install, title) {
  switch (install.status) {
    case "DISABLED":
      return `${title} works while the plugin is on: turn on Enabled first.`;
    case "WAITING_FOR_GATEWAY":
      return `${title} works once the plugin runs. ${sentence(install.statusReason || "It is waiting for a gateway it needs")}`;
    case "NEEDS_CONFIG":
      return `${title} works once its settings are fixed: ${sentence(install.statusReason || "they no longer fit this version of the plugin")}`;
    default:
      return `${title} is not available while the plugin is ${install.status}.`;
  }
}

/**
 * @param {{install: object, plugin: object, id: string, onRan: (run: object) => void,
 *          onChanged: () => void, onStale: () => void, onClose: () => void}} options
 *   `install` is the card's, kept up to date by it (call `refresh()` after it changes);
 *   `onRan` after a run (it is in the install's runs now, and its stats changed); `onChanged` when
 *   the server said the install does not run any more; `onStale` when it is gone.
 * @returns {{element: HTMLElement, open(): void, focus(): void, close(): void, refresh(): void}}
 * `focus()` once it is on screen: its first field, when it is offered.
 */
export function runNowPanel({ install, plugin, id, onRan, onChanged, onStale, onClose }) {
  const words = runNowWords(plugin);
  const titleId = `${id}-title`;
  const unavailable = h("p", { class: "notice notice--warning", hidden: true });
  const alert = h("p", { class: "notice notice--error", role: "alert", hidden: true });
  const announce = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const result = h("div", { class: "run-result", hidden: true });
  const element = h("section", { id, class: "run-now", "aria-labelledby": titleId, hidden: true },
    h("h4", { id: titleId }, words.title),
    h("p", { class: "run-now__lead" }, `${words.lead} The run is recorded in its Runs.`),
    unavailable, alert);
  let form = null; // built when the panel first opens, and kept: it keeps what was typed in it

  function build() {
    form = configForm({
      schema: plugin.inputSchema,
      value: null,
      submitLabel: words.submit,
      refusal: "That was not accepted",
      onSubmit: run,
      onCancel: onClose,
    });
    element.append(form.element, announce, result);
  }

  async function run(input) {
    alert.hidden = true;
    announce.textContent = "";
    form.setStatus("Running…");
    try {
      const { runPlugin } = await graphql(RUN_PLUGIN, { pluginId: plugin.id, input });
      form.setStatus("");
      show(runPlugin);
      announce.textContent = outcomeSentence(runPlugin);
      onRan(runPlugin);
    } catch (error) {
      form.setStatus("");
      refused(error);
    }
  }

  function refused(error) {
    const aboutInstall = error.fieldErrors.some((e) => e.path === "/pluginId" || e.path.startsWith("/pluginId/"));
    if (error.code === "BAD_USER_INPUT" && !aboutInstall) {
      form.setErrors(error.fieldErrors.length ? error.fieldErrors : [{ path: "", message: error.message }]);
      return;
    }
    // The install stopped running since the page showed it (turned off elsewhere, its bot gone):
    // the server's sentence, and the card brought up to date.
    const message = error.code === "BAD_USER_INPUT" ? `That was not accepted: ${sentence(error.message)}` : describeError(error);
    alert.replaceChildren(icon("alert", 18), message);
    alert.hidden = false;
    if (error.code === "NOT_INSTALLED" || error.code === "NOT_FOUND") onStale();
    else if (aboutInstall) onChanged();
  }

  function show(run) {
    const output = outputBlock(run.output);
    result.dataset.outcome = run.outcome;
    mount(result,
      h("h5", { class: "run-result__title" }, "Result"),
      h("p", { class: "run-result__head" }, outcomeBadge(run), " ",
        h("span", {}, "Finished ", h("time", { datetime: run.createdAt }, formatDateTime(run.createdAt)))),
      runFigures(run, "run-figures"),
      run.error ? h("p", { class: "run__error" }, run.error) : null,
      output ? h("div", { class: "run-result__output" }, h("p", { class: "run-result__label" }, "Output"), output) : null);
    result.hidden = false;
  }

  function refresh() {
    if (!form) return;
    const running = RUNNING.has(install.status);
    mount(unavailable, running ? null : [icon("info", 18), whyNot(install, words.title)]);
    unavailable.hidden = running;
    form.element.hidden = !running;
  }

  return {
    element,
    open() {
      if (!form) build();
      refresh();
      element.hidden = false;
    },
    focus() {
      if (form && !form.element.hidden) form.element.querySelector("input, select, textarea, button")?.focus();
    },
    close() {
      element.hidden = true;
    },
    refresh,
  };
}
