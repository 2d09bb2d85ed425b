// The user's Telegram bots: connected ones with "Disconnect", and a form to connect one.

import { graphql } from "./api.js";
import { confirmAction } from "./confirm.js";
import { h, mount } from "./dom.js";
import { icon } from "./icons.js";
import { describeError, sentence } from "./messages.js";
import { toast } from "./toast.js";

const CONNECT = `mutation Connect($token: String!, $name: String) {
  connectTelegramBot(token: $token, name: $name) { id type name botUsername isActive }
}`;
const DISCONNECT = "mutation Disconnect($id: ID!) { disconnectGateway(gatewayId: $id) }";

/** @param {{gateways: object[], onChange: () => void}} options */
export function botsSection({ gateways, onChange }) {
  const active = gateways.filter((g) => g.isActive);
  return h(
    "section",
    { class: "section", "aria-labelledby": "bots-title" },
    h("div", { class: "section__head" },
      h("h2", { id: "bots-title" }, "Telegram bots"),
      h("p", { class: "field__help" }, "Plugins that need a bot work on the updates your connected bot receives.")),
    h("div", { class: "bots" },
      active.length
        ? active.map((gateway) => botRow(gateway, onChange))
        : h("p", { class: "notice notice--warning" }, icon("info", 18),
          "No bot connected yet. Plugins that need one wait until you connect it."),
      connectForm(onChange)),
  );
}

function botRow(gateway, onChange) {
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
  return h(
    "div",
    { class: "bot-row" },
    h("span", { class: "bot-row__name" }, icon("bot", 18), gateway.name,
      gateway.botUsername && `@${gateway.botUsername}` !== gateway.name ? h("span", { class: "field__help" }, `@${gateway.botUsername}`) : null,
      h("span", { class: "badge badge--success" }, "Connected")),
    h("button", { class: "button button--danger button--small", type: "button", onclick: (e) => disconnect(e.currentTarget) }, "Disconnect"),
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
