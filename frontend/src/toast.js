// Short confirmations and errors that do not belong to one field, announced politely.

import { h } from "./dom.js";

function region() {
  let toasts = document.querySelector(".toasts");
  if (!toasts) {
    toasts = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(toasts);
  }
  return toasts;
}

export function toast(message, { error = false, seconds = 5 } = {}) {
  const item = h("div", { class: `toast${error ? " toast--error" : ""}` }, message);
  region().append(item);
  setTimeout(() => item.remove(), seconds * 1000);
}
