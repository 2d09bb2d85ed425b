// An install's run history on /my-plugins: the newest runs first (outcome, event, its trigger, chat,
// duration, API calls, time, error, and its output folded away), "Load more" for older ones, and
// "Retry" on a failed or skipped run that ran for an event or a schedule.
//
// The list only grows at its end (older pages) or, after a retry, by the new run at its top; each
// retried run then says so instead of offering "Retry" again (the server would answer with the
// same retry: it runs a run's event once).

import { graphql } from "./api.js";
import { h, mount, uid } from "./dom.js";
import { formatDateTime } from "./format.js";
import { icon } from "./icons.js";
import { describeError } from "./messages.js";
import {
  apiCallWords, formatDuration, outcomeBadge, outcomeLabel, outcomeSentence, outputBlock, RUN_FIELDS, tokenWords, triggerWords,
} from "./run-details.js";

export const RUNS_PAGE = 10;
const RUNS = `query Runs($pluginId: ID!, $first: Int!, $after: String) {
  myPlugin(pluginId: $pluginId) { id runs(first: $first, after: $after) { edges { cursor node { ${RUN_FIELDS} } } pageInfo { hasNextPage endCursor } } }
}`;
const RETRY = `mutation Retry($runId: ID!) { retryRun(runId: $runId) { ${RUN_FIELDS} } }`;

/** A run's chat by its name, as the analytics widget shows it (by its id when no name is known). */
export function chatName(run) {
  if (run.chatId === null || run.chatId === undefined) return null;
  return run.chatTitle || `Chat ${run.chatId}`;
}

/**
 * @param {{install: object, plugin: object, id: string, onChanged: () => void, onStale: () => void}} options
 * `onChanged` runs after a retry (the install's status may have changed); `onStale` when the
 * install is gone.
 * @returns {{element: HTMLElement, open(): void, close(): void, reload(): void}}
 */
export function runsPanel({ install, plugin, id, onChanged, onStale }) {
  const titleId = `${id}-title`;
  const announce = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const alert = h("p", { class: "notice notice--error", role: "alert", hidden: true });
  const list = h("ol", { class: "runs__list", "aria-labelledby": titleId });
  const empty = h("p", { class: "runs__empty", hidden: true }, "No runs yet. A run is recorded each time this plugin runs: for an event, on its schedule, or on demand.");
  const more = h("button", { class: "button button--secondary button--small", type: "button", hidden: true, onclick: () => loadPage() },
    "Load more");
  const refresh = h("button", { class: "button button--ghost button--small", type: "button", onclick: () => reload() },
    icon("refresh", 16), "Refresh");
  const element = h("section", { id, class: "runs", "aria-labelledby": titleId, hidden: true },
    h("div", { class: "runs__head" }, h("h4", { id: titleId }, `Runs of ${plugin.name}`), refresh),
    announce, alert, list, empty, more);

  let runs = []; // in display order, newest first
  let endCursor = null;
  let loading = false;
  let generation = 0; // a reload drops the answers of earlier requests

  function fail(error) {
    alert.replaceChildren(icon("alert", 18), describeError(error));
    alert.hidden = false;
    if (error.code === "NOT_INSTALLED" || error.code === "NOT_FOUND") onStale();
  }

  async function loadPage({ first = false } = {}) {
    if (loading) return;
    loading = true;
    const mine = generation;
    alert.hidden = true;
    list.setAttribute("aria-busy", "true");
    if (first) skeleton();
    else {
      more.disabled = true;
      more.textContent = "Loading…";
    }
    try {
      const { myPlugin } = await graphql(RUNS, { pluginId: plugin.id, first: RUNS_PAGE, after: first ? null : endCursor });
      if (mine !== generation) return;
      const connection = myPlugin?.id === install.id ? myPlugin.runs : null;
      if (!connection) {
        onStale();
        return;
      }
      const page = connection.edges.map((edge) => edge.node).filter((run) => !runs.some((r) => r.id === run.id));
      const firstNew = runs.length;
      runs = [...runs, ...page];
      endCursor = connection.pageInfo.endCursor;
      draw(connection.pageInfo.hasNextPage);
      if (!first && page.length) list.children[firstNew]?.focus();
      announce.textContent = first ? "" : `${page.length} older run${page.length === 1 ? "" : "s"} loaded.`;
    } catch (error) {
      if (mine !== generation) return;
      if (first) draw(false);
      fail(error);
    } finally {
      if (mine === generation) {
        loading = false;
        list.removeAttribute("aria-busy");
        more.disabled = false;
        more.textContent = "Load more";
      }
    }
  }

  function skeleton() {
    // As tall as the rows that replace it, so opening the panel does not jump twice.
    mount(list, [1, 2, 3].map(() => h("li", { class: "run run--placeholder", "aria-hidden": "true" },
      h("div", { class: "skeleton run__skeleton" }))));
    empty.hidden = true;
    more.hidden = true;
  }

  function draw(hasNextPage) {
    const retried = new Map(runs.filter((r) => r.retryOf).map((r) => [r.retryOf, r]));
    mount(list, runs.map((run) => row(run, retried.get(run.id))));
    empty.hidden = runs.length > 0;
    more.hidden = !hasNextPage;
    more.dataset.hasNext = String(hasNextPage);
  }

  function row(run, retry) {
    const headId = uid("run");
    const meta = [
      chatName(run),
      formatDuration(run.durationMs),
      apiCallWords(run),
      tokenWords(run),
      run.trigger !== "EVENT" ? triggerWords(run) : null,
      run.retryOf ? "retries an earlier run" : null,
    ].filter(Boolean);
    let action = null;
    if (retry) {
      action = h("p", { class: "run__retried", tabindex: "-1" }, icon("refresh", 14),
        `Retried: ${outcomeLabel(retry).toLowerCase()}`);
    } else if (run.canRetry) {
      action = h("button", {
        class: "button button--secondary button--small", type: "button", "aria-describedby": headId,
        onclick: (event) => retryRun(run, event.currentTarget),
      }, icon("refresh", 16), "Retry");
    }
    const output = outputBlock(run.output);
    return h("li", { class: "run", tabindex: "-1", dataset: { runId: run.id, outcome: run.outcome, trigger: run.trigger } },
      h("div", { class: "run__head", id: headId },
        outcomeBadge(run),
        h("span", { class: "run__event" }, run.eventLabel),
        run.eventType ? h("code", { class: "run__type" }, run.eventType) : null),
      action ? h("div", { class: "run__actions" }, action) : null,
      h("p", { class: "run__meta" }, `${meta.join(" · ")} · `,
        h("time", { datetime: run.createdAt }, formatDateTime(run.createdAt))),
      run.error ? h("p", { class: "run__error" }, run.error) : null,
      output ? h("details", { class: "run__output" }, h("summary", {}, "Output"), output) : null);
  }

  async function retryRun(run, button) {
    button.disabled = true;
    button.lastChild.textContent = "Retrying…";
    alert.hidden = true;
    try {
      const { retryRun: retry } = await graphql(RETRY, { runId: run.id });
      runs = [retry, ...runs.filter((r) => r.id !== retry.id)];
      draw(more.dataset.hasNext === "true");
      list.querySelector(`[data-run-id="${CSS.escape(run.id)}"] .run__retried`)?.focus();
      announce.textContent = `Retried. ${outcomeSentence(retry, "The new run")}`;
      onChanged();
    } catch (error) {
      button.disabled = false;
      button.lastChild.textContent = "Retry";
      fail(error);
    }
  }

  function reload() {
    generation += 1;
    loading = false;
    runs = [];
    endCursor = null;
    loadPage({ first: true });
  }

  return {
    element,
    open() {
      element.hidden = false;
      reload();
    },
    close() {
      element.hidden = true;
      generation += 1;
      loading = false;
    },
    reload,
  };
}
