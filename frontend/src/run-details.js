// One run as the pages show it, wherever it is shown (the Runs panel, "Run now"'s result): its
// outcome as a badge, its trigger in words, its figures (duration, API calls, model tokens) and
// its output as pretty JSON.

import { h } from "./dom.js";
import { formatNumber } from "./format.js";
import { icon } from "./icons.js";

/** The fields of PluginRun the pages read. */
export const RUN_FIELDS = "id outcome trigger eventType eventLabel chatId chatTitle error durationMs createdAt retryOf canRetry output apiCalls tokensUsed stepIndex";

const OUTCOMES = {
  SUCCEEDED: { label: "Succeeded", tone: "badge--success", icon: "check", verb: "succeeded" },
  FAILED: { label: "Failed", tone: "badge--danger", icon: "alert", verb: "failed" },
  SKIPPED: { label: "Skipped", tone: "badge--warning", icon: "skip", verb: "was skipped" },
};

// Why a run ran, in words. An event's run says which event in its eventLabel ("Message"), and the
// runs on demand say "Run now" or "Chain step" there: these words are for the line below it.
const TRIGGERS = {
  EVENT: "From an event",
  SCHEDULE: "On its schedule",
  RETRY: "Retry",
  STANDALONE: "On demand",
  WORKFLOW_STEP: "Step of a chain",
};

function outcomeOf(run) {
  return OUTCOMES[run.outcome] ?? { label: run.outcome, tone: "", icon: "info", verb: `ended as ${run.outcome}` };
}

export function outcomeBadge(run) {
  const outcome = outcomeOf(run);
  return h("span", { class: `badge ${outcome.tone}` }, icon(outcome.icon, 14), outcome.label);
}

/** "Succeeded", "Failed", "Skipped". */
export function outcomeLabel(run) {
  return outcomeOf(run).label;
}

/** "The run succeeded.", "The new run failed.", "The run was skipped." */
export function outcomeSentence(run, subject = "The run") {
  return `${subject} ${outcomeOf(run).verb}.`;
}

/** "On its schedule", "Step 2 of a chain". */
export function triggerWords(run) {
  if (run.trigger === "WORKFLOW_STEP" && Number.isInteger(run.stepIndex)) return `Step ${run.stepIndex + 1} of a chain`;
  return TRIGGERS[run.trigger] ?? run.trigger;
}

/** "under 0.1 ms", "0.4 ms", "12 ms", "1.5 s". */
export function formatDuration(ms) {
  if (ms < 0.1) return "under 0.1 ms";
  if (ms < 1) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

function counted(n, one, many) {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}

/** "1 API call", "3 API calls". */
export function apiCallWords(run) {
  return counted(run.apiCalls, "API call", "API calls");
}

/** "1,200 tokens"; null when the run reported none. */
export function tokenWords(run) {
  return run.tokensUsed === null || run.tokensUsed === undefined ? null : counted(run.tokensUsed, "token", "tokens");
}

/** The run's figures as a list of terms: Duration, API calls, and Tokens when it reported some. */
export function runFigures(run, className) {
  const figure = (term, value) => h("div", {}, h("dt", {}, term), h("dd", {}, value));
  return h("dl", { class: className },
    figure("Duration", formatDuration(run.durationMs)),
    figure("API calls", formatNumber(run.apiCalls)),
    run.tokensUsed === null || run.tokensUsed === undefined ? null : figure("Tokens", formatNumber(run.tokensUsed)));
}

/**
 * The output as pretty JSON, in a block that scrolls (both ways) inside its container instead of
 * widening the page; focusable, so that a keyboard scrolls it too. Null for a run that answered nothing.
 */
export function outputBlock(output) {
  if (output === null || output === undefined) return null;
  return h("pre", { class: "json-output", tabindex: "0" }, JSON.stringify(output, null, 2));
}
