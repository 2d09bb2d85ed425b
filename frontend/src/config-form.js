// A settings form generated from a plugin's configSchema (JSON Schema).
//
// booleans -> checkboxes; numbers and strings -> inputs (long strings -> textareas); enums -> selects;
// arrays of scalars -> editable lists; objects -> fieldsets. `title` labels a field, `description`
// is its help text, and values start from the install's config, else the schema's defaults.
// The server validates: its per-field errors (JSON Pointers) are shown beside their fields.

import { h, uid } from "./dom.js";
import { icon } from "./icons.js";

const TYPE_WORDS = { integer: "a whole number", number: "a number", string: "text", boolean: "yes or no", array: "a list", object: "a group of settings" };

/** The server's validation message in plainer words. */
export function plainMessage(message) {
  const rules = [
    [/less than the minimum of (\S+)/, (m) => `Must be at least ${m[1]}.`],
    [/greater than the maximum of (\S+)/, (m) => `Must be at most ${m[1]}.`],
    [/is not of type '(\w+)'/, (m) => `Must be ${TYPE_WORDS[m[1]] ?? m[1]}.`],
    [/should be non-empty|is too short/, () => "Must not be empty."],
    [/is too long|expected at most/, () => "Is too long."],
    [/non-unique elements/, () => "Each item must be different."],
    [/is not one of/, () => "Choose one of the options."],
    [/is required/, () => "Is required."],
  ];
  for (const [pattern, words] of rules) {
    const match = message.match(pattern);
    if (match) return words(match);
  }
  return message.charAt(0).toUpperCase() + message.slice(1);
}

function humanize(key) {
  const words = key.replace(/([a-z])([A-Z])/g, "$1 $2").replaceAll("_", " ").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function isScalar(schema) {
  return Boolean(schema) && (schema.enum || ["string", "number", "integer", "boolean"].includes(schema.type));
}

/**
 * @returns {{element: HTMLFormElement, setErrors(errors: {path: string, message: string}[]): void,
 *            clearErrors(): void, setStatus(text: string): void, value(): object}}
 */
export function configForm({ schema, value, submitLabel = "Save", onSubmit, onCancel }) {
  const fields = new Map(); // JSON Pointer -> {input, error}
  const formError = h("p", { class: "notice notice--error", role: "alert", hidden: true });
  const status = h("p", { class: "config-form__status", role: "status" });
  const root = objectFields(schema, value ?? {}, "", fields);
  const submit = h("button", { class: "button", type: "submit" }, submitLabel);

  const element = h(
    "form",
    { class: "config-form", novalidate: true, onsubmit: handleSubmit },
    formError,
    root.element,
    h(
      "div",
      { class: "config-form__actions" },
      submit,
      onCancel ? h("button", { class: "button button--secondary", type: "button", onclick: onCancel }, "Close") : null,
      status,
    ),
  );

  async function handleSubmit(event) {
    event.preventDefault();
    clearErrors();
    status.textContent = "";
    const problems = root.problems();
    if (problems.length) {
      setErrors(problems);
      return;
    }
    submit.disabled = true;
    try {
      await onSubmit(root.read() ?? {});
    } finally {
      submit.disabled = false;
    }
  }

  function clearErrors() {
    formError.hidden = true;
    formError.replaceChildren();
    for (const { input, error } of fields.values()) {
      error.textContent = "";
      input.removeAttribute("aria-invalid");
    }
  }

  function setErrors(errors) {
    clearErrors();
    const unplaced = [];
    let first = null;
    for (const { path, message } of errors) {
      const field = closestField(path);
      if (!field) {
        unplaced.push(plainMessage(message));
        continue;
      }
      field.error.textContent = [field.error.textContent, plainMessage(message)].filter(Boolean).join(" ");
      field.input.setAttribute("aria-invalid", "true");
      first ??= field.input;
    }
    if (unplaced.length) {
      formError.replaceChildren(icon("alert", 18), `These settings were not accepted: ${unplaced.join(" ")}`);
      formError.hidden = false;
    }
    (first ?? formError).focus?.();
  }

  function closestField(pointer) {
    let path = pointer;
    while (path) {
      if (fields.has(path)) return fields.get(path);
      path = path.slice(0, path.lastIndexOf("/"));
    }
    return null;
  }

  return { element, setErrors, clearErrors, setStatus: (text) => (status.textContent = text), value: () => root.read() };
}

// --- field builders: each returns {element, read(), problems()} ---------------------------

function objectFields(schema, value, pointer, fields) {
  const properties = Object.entries(schema.properties ?? {});
  const children = properties.map(([key, property]) =>
    [key, fieldFor(property, value?.[key], `${pointer}/${escapePointer(key)}`, humanize(key), fields)]);
  const element = h("div", { class: "config-form__fields" }, children.map(([, child]) => child.element));
  return {
    element,
    read() {
      const result = {};
      for (const [key, child] of children) {
        const v = child.read();
        if (v !== undefined) result[key] = v;
      }
      return result;
    },
    problems: () => children.flatMap(([, child]) => child.problems()),
  };
}

function escapePointer(key) {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

function fieldFor(schema, value, pointer, fallbackTitle, fields) {
  const title = schema.title ?? fallbackTitle;
  const current = value !== undefined ? value : schema.default;
  if (schema.type === "object" && schema.properties) {
    const inner = objectFields(schema, current ?? {}, pointer, fields);
    const error = h("p", { class: "field__error" });
    fields.set(pointer, { input: inner.element, error });
    return {
      element: h("fieldset", { class: "field" }, h("legend", { class: "field__label" }, title),
        schema.description ? h("p", { class: "field__help" }, schema.description) : null, error, inner.element),
      read: inner.read,
      problems: inner.problems,
    };
  }
  if (schema.type === "array" && isScalar(schema.items)) {
    return listField(schema, current ?? [], pointer, title, fields);
  }
  if (isScalar(schema)) return scalarField(schema, current, pointer, title, fields);
  return jsonField(schema, current, pointer, title, fields);
}

/** A label, the control, help text and an error slot, wired together for assistive technology. */
function scalarField(schema, value, pointer, title, fields, { compact = false, label = title } = {}) {
  const id = uid("field");
  const helpId = schema.description && !compact ? `${id}-help` : null;
  const errorId = `${id}-error`;
  const error = h("p", { id: errorId, class: "field__error" });
  const describedBy = [helpId, errorId].filter(Boolean).join(" ");
  const help = helpId ? h("p", { id: helpId, class: "field__help" }, schema.description) : null;
  let input;
  let read;

  if (schema.enum) {
    input = h("select", { id, class: "select", "aria-describedby": describedBy },
      schema.enum.map((option, index) => h("option", { value: String(index), selected: option === value }, String(option))));
    read = () => schema.enum[Number(input.value)];
  } else if (schema.type === "boolean") {
    input = h("input", { id, type: "checkbox", checked: Boolean(value), "aria-describedby": describedBy });
    read = () => input.checked;
    fields.set(pointer, { input, error });
    return {
      element: h("div", { class: "field" },
        h("div", { class: "check" }, input, h("label", { class: "field__label", for: id }, label)), help, error),
      read,
      problems: () => [],
    };
  } else if (schema.type === "number" || schema.type === "integer") {
    input = h("input", {
      id, class: "input", type: "number", inputmode: schema.type === "integer" ? "numeric" : "decimal",
      step: schema.type === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum,
      value: value === undefined || value === null ? "" : String(value), "aria-describedby": describedBy,
    });
    read = () => (input.value.trim() === "" ? undefined : Number(input.value));
  } else {
    const long = (schema.maxLength ?? 0) > 200;
    input = h(long ? "textarea" : "input", {
      id, class: long ? "textarea" : "input", type: long ? null : "text", maxlength: schema.maxLength,
      "aria-describedby": describedBy, rows: long ? 3 : null,
      value: long ? null : value ?? "",
    });
    if (long) input.value = value ?? "";
    read = () => input.value;
  }

  fields.set(pointer, { input, error });
  return {
    element: h("div", { class: "field" }, h("label", { class: "field__label", for: id }, label), input, help, error),
    input,
    read,
    problems: () => (input.validity?.badInput ? [{ path: pointer, message: `Must be ${TYPE_WORDS[schema.type]}.` }] : []),
  };
}

/** An editable list of scalars: one control per item, "Remove" beside each, "Add item" below. */
function listField(schema, values, pointer, title, fields) {
  const labelId = uid("list");
  const helpId = schema.description ? `${labelId}-help` : null;
  const error = h("p", { class: "field__error", id: `${labelId}-error` });
  const list = h("ul", { class: "list-editor__items", "aria-labelledby": labelId });
  const empty = h("p", { class: "list-editor__empty" }, "No items yet.");
  let items = [];

  const container = h("div", { class: "list-editor", role: "group", "aria-labelledby": labelId, "aria-describedby": [helpId, error.id].filter(Boolean).join(" "), tabindex: "-1" });
  fields.set(pointer, { input: container, error });

  function redraw() {
    // Pointers follow positions, so re-register every item after a change.
    for (const key of [...fields.keys()]) if (key.startsWith(`${pointer}/`)) fields.delete(key);
    items = items.map((item, index) => {
      const value = item.read();
      const field = scalarField(schema.items, value, `${pointer}/${index}`, title, fields, {
        compact: true, label: `${title}: item ${index + 1}`,
      });
      const remove = h("button", { class: "button button--secondary button--small", type: "button", onclick: () => removeAt(index) },
        icon("x", 16), h("span", { class: "visually-hidden" }, `Remove item ${index + 1} of ${title}`));
      field.element.querySelector("label").classList.add("visually-hidden");
      return { ...field, row: h("li", { class: "list-editor__item" }, field.element, remove) };
    });
    list.replaceChildren(...items.map((item) => item.row));
    empty.hidden = items.length > 0;
  }

  function add(value) {
    items.push({ read: () => value });
    redraw();
  }

  function removeAt(index) {
    items.splice(index, 1);
    redraw();
  }

  for (const value of values) items.push({ read: () => value });
  redraw();
  empty.hidden = items.length > 0;

  container.append(
    h("span", { id: labelId, class: "field__label" }, title),
    helpId ? h("p", { id: helpId, class: "field__help" }, schema.description) : null,
    list,
    empty,
    error,
    h("div", {}, h("button", {
      class: "button button--secondary button--small", type: "button",
      onclick: () => {
        add(schema.items.type === "boolean" ? false : schema.items.enum ? schema.items.enum[0] : undefined);
        items.at(-1).input?.focus();
      },
    }, icon("plus", 16), "Add item")),
  );
  return {
    element: h("div", { class: "field" }, container),
    read: () => items.map((item) => item.read()).filter((v) => v !== undefined),
    problems: () => items.flatMap((item) => item.problems?.() ?? []),
  };
}

/** Anything the generator has no control for: JSON text, parsed before sending. */
function jsonField(schema, value, pointer, title, fields) {
  const id = uid("field");
  const error = h("p", { id: `${id}-error`, class: "field__error" });
  const input = h("textarea", { id, class: "textarea", spellcheck: "false", "aria-describedby": `${id}-help ${id}-error` });
  input.value = value === undefined ? "" : JSON.stringify(value, null, 2);
  fields.set(pointer, { input, error });
  const parse = () => {
    if (!input.value.trim()) return { value: undefined };
    try {
      return { value: JSON.parse(input.value) };
    } catch {
      return { problem: "Must be valid JSON." };
    }
  };
  return {
    element: h("div", { class: "field" }, h("label", { class: "field__label", for: id }, title), input,
      h("p", { id: `${id}-help`, class: "field__help" }, schema.description ?? "Written as JSON."), error),
    read: () => parse().value,
    problems: () => {
      const { problem } = parse();
      return problem ? [{ path: pointer, message: problem }] : [];
    },
  };
}
