// A confirmation in a native modal <dialog>: resolves true when the user confirms.

import { h } from "./dom.js";

export function confirmAction({ title, body, confirm, cancel = "Cancel" }) {
  return new Promise((resolve) => {
    const titleId = "confirm-title";
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      h("p", {}, body),
      h(
        "form",
        { method: "dialog", class: "dialog__actions" },
        h("button", { class: "button button--secondary", value: "cancel", autofocus: true }, cancel),
        h("button", { class: "button button--danger-solid", value: "confirm" }, confirm),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
