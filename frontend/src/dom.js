// A tiny element builder: text goes in as text nodes, never as HTML.

/**
 * h("button", { class: "button", onclick: save, "aria-expanded": "false" }, "Save")
 * Props: `class`, `on<event>` listeners, `dataset`, and attributes (true -> present, false/null -> absent).
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...flatten(children));
  return element;
}

function flatten(children) {
  return children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false);
}

/** Replaces an element's children. */
export function mount(parent, ...children) {
  parent.replaceChildren(...flatten(children));
  return parent;
}

let ids = 0;

/** A document-unique id for label/aria-describedby pairs. */
export function uid(prefix = "id") {
  ids += 1;
  return `${prefix}-${ids}`;
}
