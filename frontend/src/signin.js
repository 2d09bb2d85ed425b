// The sign-in form: a field labelled "API token" and a "Sign in" button.

import { ApiError, graphql } from "./api.js";
import { setToken } from "./auth.js";
import { h } from "./dom.js";
import { icon } from "./icons.js";
import { describeError } from "./messages.js";

const ME = "query SignIn { me { id email plan pluginLimit } }";

/** Renders the form; calls `onSignedIn(me)` once a token is accepted by the server. */
export function signInView({ reason = "", onSignedIn }) {
  const errorId = "token-error";
  const input = h("input", {
    id: "token", name: "token", class: "input", type: "password", autocomplete: "off", spellcheck: "false",
    required: true, placeholder: "pb_…", "aria-describedby": `token-help ${errorId}`,
    oninput: () => {
      error.textContent = "";
      input.removeAttribute("aria-invalid");
    },
  });
  const error = h("p", { id: errorId, class: "field__error", role: "alert" });
  const button = h("button", { class: "button", type: "submit" }, "Sign in");

  async function submit(event) {
    event.preventDefault();
    const token = input.value.trim();
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    if (!token) {
      fail("Paste your API token first.");
      return;
    }
    button.disabled = true;
    try {
      const { me } = await graphql(ME, {}, { token });
      setToken(token);
      onSignedIn(me);
    } catch (err) {
      fail(err instanceof ApiError && err.code === "UNAUTHENTICATED"
        ? "That token was not recognised. Check that you copied all of it."
        : describeError(err));
    } finally {
      button.disabled = false;
    }
  }

  function fail(message) {
    error.textContent = message;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  return h(
    "section",
    { class: "signin", "aria-labelledby": "signin-title" },
    h(
      "form",
      { class: "card", onsubmit: submit, novalidate: true },
      h("h1", { id: "signin-title" }, "Sign in to Plugboard"),
      reason ? h("p", { class: "notice notice--warning", role: "alert" }, icon("alert", 18), reason) : null,
      h("p", { class: "signin__intro" }, "Manage your Telegram bot's plugins and watch its numbers live."),
      h(
        "div",
        { class: "field" },
        h("label", { class: "field__label", for: "token" }, "API token"),
        input,
        h("p", { id: "token-help", class: "field__help" },
          "Create one in Plugboard's folder with ", h("code", {}, ".venv/bin/python -m app create-user you@example.com"),
          " (or ", h("code", {}, "make cli ARGS=\"create-user you@example.com\""), "), or try ",
          h("code", {}, ".venv/bin/python -m app demo"), ". It stays in this browser until you sign out."),
        error,
      ),
      button,
    ),
  );
}
