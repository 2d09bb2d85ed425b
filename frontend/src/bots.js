// The user's Telegram bots: each connected one with its status and what to do about it (a rejected
// token gets a Reconnect form, a failing webhook Telegram's error and a "Check now"), and a form to
// connect one.

import { graphql } from "./api.js";
import { confirmAction } from "./confirm.js";
import { h } from "./dom.js";
import { formatDateTime, formatNumber } from "./format.js";
import { icon } from "./icons.js";
import { describeError, sentence } from "./messages.js";
import { toast } from "./toast.js";

/** What the page asks for each gateway: myGateways { GATEWAY_FIELDS }. */
export const GATEWAY_FIELDS = "id type name botUsername webhookUrl isActive status statusReason delivery health { pendingUpdates lastErrorAt lastErrorMessage checkedAt }";

const CONNECT = `mutation Connect($token: String!, $name: String) {
  connectTelegramBot(token: $token, name: $name) { id type name botUsername isActive status }
}`;
const DISCONNECT = "mutation Disconnect($id: ID!) { disconnectGateway(gatewayId: $id) }";
const CHECK = `mutation Check($id: ID!) {
  checkGateway(gatewayId: $id) { id status statusReason health { pendingUpdates lastErrorAt lastErrorMessage checkedAt } }
}`;

const STATUS = {
  ACTIVE: { label: "Connected", tone: "badge--success", icon: "check" },
  TOKEN_REJECTED: { label: "Token refused", tone: "badge--danger", icon: "alert" },
  WEBHOOK_FAILING: { label: "Webhook failing", tone: "badge--warning", icon: "webhook" },
  POLLING_CONFLICT: { label: "Polling conflict", tone: "badge--warning", icon: "alert" },
};
const DELIVERY = { WEBHOOK: "via webhook", POLLING: "via polling" };

/** The connected bots (a disconnected or replaced gateway is history, not shown). */
export function connectedBots(gateways) {
  return gateways.filter((g) => g.status !== "DISCONNECTED");
}

/**
 * Whether redrawing the section now would lose something its user is doing: a focused control, or
 * a token typed and not yet sent.
 */
export function botsBusy(section) {
  if (!section?.isConnected) return false;
  const focused = document.activeElement;
  if (focused && focused !== document.body && section.contains(focused)) return true;
  return [...section.querySelectorAll("input")].some((input) => input.value);
}

/** @param {{gateways: object[], onChange: () => void}} options */
export function botsSection({ gateways, onChange }) {
  const connected = connectedBots(gateways);
  return h(
    "section",
    { class: "section", "aria-labelledby": "bots-title" },
    h("div", { class: "section__head" },
      h("h2", { id: "bots-title" }, "Telegram bots"),
      h("p", { class: "field__help" }, "Plugins that need a bot work on the updates your connected bot receives.")),
    h("div", { class: "bots" },
      connected.length
        ? connected.map((gateway) => botRow(gateway, onChange))
        : h("p", { class: "notice notice--warning" }, icon("info", 18),
          "No bot connected yet. Plugins that need one wait until you connect it."),
      connectForm(onChange)),
  );
}

function handle(gateway) {
  return gateway.botUsername ? `@${gateway.botUsername}` : gateway.name;
}

export function botStatusBadge(gateway) {
  const status = STATUS[gateway.status] ?? { label: gateway.status, tone: "", icon: "info" };
  return h("span", { class: `badge bot-status ${status.tone}`, dataset: { status: gateway.status } },
    icon(status.icon, 14), h("span", { class: "visually-hidden" }, "Status: "), status.label);
}

function botRow(gateway, onChange) {
  const titleId = `bot-${gateway.id}-title`;
  async function disconnect(button) {
    const confirmed = await confirmAction({
      title: `Disconnect ${gateway.name}?`,
      body: "Telegram stops sending this bot's updates to Plugboard, and plugins stop seeing them.",
      confirm: "Disconnect",
    });
    if (!confirmed) return;
    button.disabled = true;
    try {
      await graphql(DISCONNECT, { id: gateway.id });
      toast(`${gateway.name} is disconnected.`);
    } catch (error) {
      toast(describeError(error), { error: true });
    }
    onChange();
  }
  const via = DELIVERY[gateway.delivery];
  return h(
    "article",
    { class: "bot-row", "aria-labelledby": titleId, dataset: { status: gateway.status } },
    h("div", { class: "bot-row__head" },
      h("h3", { class: "bot-row__name", id: titleId }, icon("bot", 18), gateway.name,
        gateway.botUsername && `@${gateway.botUsername}` !== gateway.name ? h("span", { class: "field__help" }, `@${gateway.botUsername}`) : null),
      h("span", { class: "bot-row__status" },
        botStatusBadge(gateway),
        gateway.status === "ACTIVE" && via ? h("span", { class: "bot-row__via" }, via) : null),
      h("button", { class: "button button--danger button--small bot-row__disconnect", type: "button", onclick: (e) => disconnect(e.currentTarget) }, "Disconnect")),
    statusDetail(gateway, onChange),
  );
}

function statusDetail(gateway, onChange) {
  switch (gateway.status) {
    case "TOKEN_REJECTED":
      return [
        h("div", { class: "notice notice--error" }, icon("alert", 18),
          h("div", { class: "notice__body" },
            h("p", { class: "notice__title" },
              sentence(gateway.statusReason || "Telegram refused this bot's token: it was revoked in @BotFather, or the bot was deleted")),
            h("p", {}, `In @BotFather, send /mybots, choose ${handle(gateway)}, then API Token, and paste the token it shows below. `
              + "The bot keeps its plugins, history and analytics."))),
        reconnectForm(gateway, onChange),
      ];
    case "WEBHOOK_FAILING":
      return webhookFailing(gateway, onChange);
    case "POLLING_CONFLICT":
      return h("div", { class: "notice notice--warning" }, icon("alert", 18),
        h("div", { class: "notice__body" },
          h("p", { class: "notice__title" }, "Another program is reading this bot's updates"),
          gateway.statusReason ? h("p", {}, sentence(gateway.statusReason)) : null,
          h("p", {}, "Telegram gives a bot's updates to one reader at a time. Stop the other deployment or webhook "
            + "that uses this token, or give it a bot of its own. Plugboard keeps trying and takes over once it is free.")));
    default:
      return null;
  }
}

function webhookFailing(gateway, onChange) {
  const health = gateway.health ?? {};
  const facts = [];
  if (health.lastErrorMessage) facts.push(["Telegram's last error", h("span", { class: "bot-health__error" }, health.lastErrorMessage)]);
  if (health.lastErrorAt) facts.push(["Failed at", time(health.lastErrorAt)]);
  if (health.pendingUpdates !== null && health.pendingUpdates !== undefined) {
    const n = health.pendingUpdates;
    facts.push(["Waiting at Telegram", `${formatNumber(n)} update${n === 1 ? "" : "s"}`]);
  }
  if (health.checkedAt) facts.push(["Last checked", time(health.checkedAt)]);
  const reason = gateway.statusReason && !(health.lastErrorMessage && gateway.statusReason.includes(health.lastErrorMessage))
    ? h("p", {}, sentence(gateway.statusReason))
    : null;

  async function check(button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      const { checkGateway: checked } = await graphql(CHECK, { id: gateway.id });
      if (checked.status === "ACTIVE") toast(`Telegram delivers ${gateway.name}'s updates again.`);
      else if (checked.status === "WEBHOOK_FAILING") toast(`Still failing: ${checked.health?.lastErrorMessage ?? "Telegram cannot deliver to the webhook"}.`, { error: true });
      onChange();
    } catch (error) {
      toast(describeError(error), { error: true });
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  return h("div", { class: "notice notice--warning" }, icon("webhook", 18),
    h("div", { class: "notice__body" },
      h("p", { class: "notice__title" }, "Telegram cannot deliver this bot's updates to Plugboard"),
      reason,
      facts.length ? h("dl", { class: "bot-health" }, facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])) : null,
      h("p", {}, "Check that PUBLIC_URL is this server's public HTTPS address and that it reaches this server: Telegram posts to ",
        h("code", { class: "bot-health__url" }, gateway.webhookUrl), ". Telegram keeps the waiting updates for 24 hours."),
      h("button", { class: "button button--secondary button--small", type: "button", onclick: (e) => check(e.currentTarget) },
        icon("refresh", 16), "Check now")));
}

function time(iso) {
  return h("time", { datetime: iso }, formatDateTime(iso));
}

function reconnectForm(gateway, onChange) {
  const inputId = `reconnect-${gateway.id}`;
  const helpId = `${inputId}-help`;
  const errorId = `${inputId}-error`;
  const error = h("p", { id: errorId, class: "field__error" });
  const formError = h("p", { class: "notice notice--error", role: "alert", hidden: true });
  const token = h("input", {
    id: inputId, class: "input", type: "password", autocomplete: "off", spellcheck: "false",
    "aria-describedby": `${helpId} ${errorId}`,
    oninput: () => { error.textContent = ""; token.removeAttribute("aria-invalid"); },
  });
  const button = h("button", { class: "button", type: "submit" }, icon("refresh", 16), "Reconnect");

  async function submit(event) {
    event.preventDefault();
    error.textContent = "";
    token.removeAttribute("aria-invalid");
    formError.hidden = true;
    if (!token.value.trim()) {
      error.textContent = `Paste the new token @BotFather gave you for ${handle(gateway)}.`;
      token.setAttribute("aria-invalid", "true");
      token.focus();
      return;
    }
    button.disabled = true;
    try {
      const { connectTelegramBot: connected } = await graphql(CONNECT, { token: token.value.trim(), name: gateway.name });
      if (connected.id !== gateway.id && gateway.botUsername && connected.botUsername !== gateway.botUsername) {
        toast(`That token is for @${connected.botUsername}, which is now connected too. ${handle(gateway)} still needs its own new token.`, { error: true, seconds: 10 });
      } else {
        toast(`${gateway.name} is connected again.`);
      }
      onChange();
    } catch (failure) {
      const placed = failure.code === "BAD_USER_INPUT" && failure.fieldErrors.length;
      if (placed) {
        error.textContent = failure.fieldErrors.map((e) => sentence(e.message)).join(" ");
        token.setAttribute("aria-invalid", "true");
        token.focus();
      } else {
        formError.replaceChildren(icon("alert", 18), describeError(failure));
        formError.hidden = false;
      }
    } finally {
      button.disabled = false;
    }
  }

  return h(
    "form",
    { class: "reconnect-form", onsubmit: submit, novalidate: true, "aria-label": `Reconnect ${gateway.name}` },
    formError,
    h("div", { class: "field" },
      h("label", { class: "field__label", for: inputId }, "New token"),
      h("p", { id: helpId, class: "field__help" }, `The token @BotFather shows for ${handle(gateway)}, like 123456:ABC-DEF…`),
      h("div", { class: "reconnect-form__row" }, token, button),
      error),
  );
}

function connectForm(onChange) {
  const tokenError = h("p", { id: "bot-token-error", class: "field__error" });
  const nameError = h("p", { id: "bot-name-error", class: "field__error" });
  const formError = h("p", { class: "notice notice--error", role: "alert", hidden: true });
  const changed = (error) => (event) => {
    error.textContent = "";
    event.target.removeAttribute("aria-invalid");
  };
  const token = h("input", { id: "bot-token", class: "input", type: "password", autocomplete: "off", spellcheck: "false", "aria-describedby": "bot-token-help bot-token-error", oninput: changed(tokenError) });
  const name = h("input", { id: "bot-name", class: "input", type: "text", maxlength: "128", "aria-describedby": "bot-name-error", oninput: changed(nameError) });
  const button = h("button", { class: "button", type: "submit" }, "Connect bot");

  async function submit(event) {
    event.preventDefault();
    for (const [input, error] of [[token, tokenError], [name, nameError]]) {
      error.textContent = "";
      input.removeAttribute("aria-invalid");
    }
    formError.hidden = true;
    if (!token.value.trim()) {
      tokenError.textContent = "Paste the token @BotFather gave you.";
      token.setAttribute("aria-invalid", "true");
      token.focus();
      return;
    }
    button.disabled = true;
    try {
      const { connectTelegramBot: gateway } = await graphql(CONNECT, { token: token.value.trim(), name: name.value.trim() || null });
      toast(`${gateway.name} is connected.`);
      onChange();
    } catch (error) {
      const placed = error.code === "BAD_USER_INPUT" && error.fieldErrors.length;
      if (placed) {
        for (const { path, message } of error.fieldErrors) {
          const [input, slot] = path === "/name" ? [name, nameError] : [token, tokenError];
          slot.textContent = sentence(message);
          input.setAttribute("aria-invalid", "true");
        }
      } else {
        formError.replaceChildren(icon("alert", 18), describeError(error));
        formError.hidden = false;
      }
    } finally {
      button.disabled = false;
    }
  }

  return h(
    "form",
    { class: "card", onsubmit: submit, novalidate: true, "aria-labelledby": "connect-title" },
    h("h3", { id: "connect-title" }, "Connect a bot"),
    h("p", { id: "bot-token-help", class: "field__help" }, "Paste the token @BotFather gave you, like 123456:ABC-DEF…"),
    formError,
    h("div", { class: "connect-form" },
      h("div", { class: "field" }, h("label", { class: "field__label", for: "bot-token" }, "Bot token"), token, tokenError),
      h("div", { class: "field" }, h("label", { class: "field__label", for: "bot-name" }, "Name (optional)"), name, nameError),
      h("div", { class: "connect-form__submit" }, button)),
  );
}
