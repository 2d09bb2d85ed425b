// A form generated from a JSON Schema: a plugin's settings (its configSchema: "Configure", and the
// install form on /plugins), or the input of a run on demand (its inputSchema: "Run now").
//
// booleans -> checkboxes; numbers and strings -> inputs (long strings -> textareas); enums -> selects;
// arrays of scalars -> editable lists; objects -> fieldsets. `title` labels a field, `description`
// is its help text, and values start from `value` (the install's config), else the schema's defaults.
// A field left empty that has no default is left out of what the form sends.
// The server validates: its per-field errors (JSON Pointers) are shown beside their fields, each
// until its field is changed.
//
// A secret setting (`"writeOnly": true`) is never read back: the config shows {"$secret": "set"} or
// {"$secret": "unset"} in its place. Its field is a password input that starts empty, with "Set" or
// "Not set" beside it: left empty, the key is left out of the update (the server keeps the secret);
// typed in, it replaces it; "Clear" sends null.

import { h, mount, uid } from "./dom.js";
import { icon } from "./icons.js";
import { sentence } from "./messages.js";

const TYPE_WORDS = { integer: "a whole number", number: "a number", string: "text", boolean: "yes or no", array: "a list", object: "a group of settings" };

/** A type's name in words: "integer" is "a whole number". */
function typeWords(type) {
  const types = Array.isArray(type) ? type : [type];
  return types.map((t) => TYPE_WORDS[t] ?? t).join(" or ");
}

/**
 * What is wrong with a setting, in our own words from the JSON Schema keyword it failed and that
 * keyword's params (`{keyword: "minLength", params: {limit: 16}}`); the server's message, as a
 * sentence, for a problem that names no keyword.
 */
export function plainMessage({ message, keyword, params = {} }) {
  const { limit } = params;
  switch (keyword) {
    case "minimum": return `Must be at least ${limit}.`;
    case "exclusiveMinimum": return `Must be more than ${limit}.`;
    case "maximum": return `Must be at most ${limit}.`;
    case "exclusiveMaximum": return `Must be less than ${limit}.`;
    case "multipleOf": return `Must be a multiple of ${limit}.`;
    case "type": return `Must be ${typeWords(params.type)}.`;
    case "minLength": return limit === 1 ? "Must not be empty." : `Must be at least ${limit} characters long.`;
    case "maxLength": return `Must be at most ${limit} characters long.`;
    case "minItems": return limit === 1 ? "Must not be empty." : `Must have at least ${limit} items.`;
    case "maxItems": return `Must have at most ${limit} items.`;
    case "uniqueItems": return "Each item must be different.";
    case "enum":
    case "const": return "Choose one of the options.";
    case "pattern": return String(params.pattern ?? "").startsWith("^https:") ? "Must be an https:// address." : "Is not in the expected form.";
    case "required": return "Is required.";
    case "additionalProperties": return "Is not a known setting.";
    default: return sentence(message);
  }
}

function humanize(key) {
  const words = key.replace(/([a-z])([A-Z])/g, "$1 $2").replaceAll("_", " ").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The API's stand-in for a secret setting's value. */
export function isSecretMarker(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    && Object.keys(value).length === 1 && (value.$secret === "set" || value.$secret === "unset");
}

/** The top-level settings a user must fill in before an install: required, with no default. */
export function settingsToFill(schema) {
  const properties = schema?.properties ?? {};
  return (schema?.required ?? []).filter((key) => properties[key] && properties[key].default === undefined);
}

function isScalar(schema) {
  return Boolean(schema) && (schema.enum || ["string", "number", "integer", "boolean"].includes(schema.type));
}

/**
 * @param {{schema: object, value?: object, submitLabel?: string, refusal?: string,
 *          onSubmit(value: object): Promise<void>, onCancel?: () => void}} options
 *   `refusal` leads the words of errors that name no field of the form.
 * @returns {{element: HTMLFormElement, setErrors(errors: {path: string, message: string}[]): void,
 *            clearErrors(): void, setStatus(text: string): void, value(): object,
 *            saved(config: object): void}}
 * `saved(config)` takes the config the server answered with: secret fields empty again and show
 * whether their secret is set now.
 */
export function configForm({ schema, value, submitLabel = "Save", refusal = "These settings were not accepted", onSubmit, onCancel }) {
  const fields = new Map(); // JSON Pointer -> {input, error}
  const formError = h("p", { class: "notice notice--error", role: "alert", hidden: true });
  const status = h("p", { class: "config-form__status", role: "status" });
  const root = objectFields(schema, value ?? {}, "", fields);
  const submit = h("button", { class: "button", type: "submit" }, submitLabel);

  const element = h(
    "form",
    { class: "config-form", novalidate: true, onsubmit: handleSubmit, oninput: fieldChanged, onchange: fieldChanged },
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

  /** A field being changed is no longer what the error beside it was about: the error goes. */
  function fieldChanged(event) {
    for (const { input, error } of fields.values()) {
      if (error.textContent && (input === event.target || input.contains(event.target))) {
        error.textContent = "";
        input.removeAttribute("aria-invalid");
      }
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
    for (const error of errors) {
      const field = closestField(error.path);
      if (!field) {
        unplaced.push(plainMessage(error));
        continue;
      }
      field.error.textContent = [field.error.textContent, plainMessage(error)].filter(Boolean).join(" ");
      field.input.setAttribute("aria-invalid", "true");
      // The first invalid field on the page, whatever order the server listed them in.
      if (!first || first.compareDocumentPosition(field.input) & Node.DOCUMENT_POSITION_PRECEDING) first = field.input;
    }
    if (unplaced.length) {
      formError.replaceChildren(icon("alert", 18), `${refusal}: ${unplaced.join(" ")}`);
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

  return {
    element, setErrors, clearErrors,
    setStatus: (text) => (status.textContent = text),
    value: () => root.read(),
    saved: (config) => root.sync?.(config ?? {}),
  };
}

// --- field builders: each returns {element, read(), problems()} ---------------------------

function objectFields(schema, value, pointer, fields) {
  const properties = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  const children = properties.map(([key, property]) =>
    [key, fieldFor(property, value?.[key], `${pointer}/${escapePointer(key)}`, humanize(key), fields, required.has(key))]);
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
    sync(config) {
      for (const [key, child] of children) child.sync?.(config?.[key]);
    },
  };
}

function escapePointer(key) {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

function fieldFor(schema, value, pointer, fallbackTitle, fields, required = false) {
  const title = schema.title ?? fallbackTitle;
  if (schema.writeOnly === true || isSecretMarker(value)) return secretField(schema, value, pointer, title, fields, required);
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
  if (isScalar(schema)) return scalarField(schema, current, pointer, title, fields, { required });
  return jsonField(schema, current, pointer, title, fields);
}

/**
 * A secret: a password input that starts empty (the value is never sent to the browser), its state
 * ("Set" / "Not set") in its description, and "Clear" for a secret that is set and not required.
 */
function secretField(schema, value, pointer, title, fields, required) {
  const id = uid("field");
  const stateId = `${id}-state`;
  const helpId = schema.description ? `${id}-help` : null;
  const errorId = `${id}-error`;
  const error = h("p", { id: errorId, class: "field__error" });
  const state = h("p", { id: stateId, class: "secret__state" });
  const input = h("input", {
    id, class: "input", type: "password", autocomplete: "new-password", spellcheck: "false",
    maxlength: schema.maxLength, "aria-required": required ? "true" : null,
    "aria-describedby": [stateId, helpId, errorId].filter(Boolean).join(" "),
  });
  const clear = h("button", { class: "button button--secondary button--small", type: "button", onclick: toggleClear });
  let isSet = isSecretMarker(value) && value.$secret === "set";
  let clearing = false;

  function draw() {
    const [badge, words] = clearing
      ? ["Clearing", "It is cleared when you save."]
      : isSet
        ? ["Set", "Leave this empty to keep it, or type a new one to replace it."]
        : ["Not set", required ? "Required." : "Type one to set it."];
    mount(state, h("span", { class: `badge ${clearing ? "badge--warning" : isSet ? "badge--success" : ""}` }, badge), ` ${words}`);
    input.disabled = clearing;
    clear.hidden = !isSet || required;
    clear.textContent = clearing ? "Keep it" : "Clear";
    clear.setAttribute("aria-label", clearing ? `Keep ${title}` : `Clear ${title}`);
  }

  function toggleClear() {
    clearing = !clearing;
    if (clearing) input.value = "";
    draw();
  }

  draw();
  fields.set(pointer, { input, error });
  return {
    element: h("div", { class: "field" },
      h("label", { class: "field__label", for: id }, title, required ? h("span", { class: "field__required" }, " (required)") : null),
      h("div", { class: "secret" }, input, clear),
      state,
      helpId ? h("p", { id: helpId, class: "field__help" }, schema.description) : null,
      error),
    input,
    read: () => (clearing ? null : input.value === "" ? undefined : input.value),
    problems: () => [],
    sync(next) {
      isSet = isSecretMarker(next) && next.$secret === "set";
      clearing = false;
      input.value = "";
      draw();
    },
  };
}

/** A label, the control, help text and an error slot, wired together for assistive technology. */
function scalarField(schema, value, pointer, title, fields, { compact = false, label = title, required = false } = {}) {
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
    // A string with a pattern or a format is one line (a URL, an id), however long it may be.
    const long = (schema.maxLength ?? 0) > 200 && !schema.pattern && !schema.format;
    const url = schema.format === "uri" || /^\^https?/.test(schema.pattern ?? "");
    const text = typeof value === "string" ? value : typeof value === "number" ? String(value) : "";
    input = h(long ? "textarea" : "input", {
      id, class: long ? "textarea" : "input", type: long ? null : url ? "url" : "text", maxlength: schema.maxLength,
      "aria-describedby": describedBy, rows: long ? 3 : null, inputmode: url ? "url" : null,
      spellcheck: url ? "false" : null, value: long ? null : text,
    });
    if (long) input.value = text;
    // Left empty, a field with no default is left out (the server says when it is required); one
    // with a default is sent empty, so that the server says what it must be instead of putting the
    // default back without a word.
    read = () => (input.value === "" && schema.default === undefined ? undefined : input.value);
  }
  if (required) input.setAttribute("aria-required", "true");

  fields.set(pointer, { input, error });
  return {
    element: h("div", { class: "field" },
      h("label", { class: "field__label", for: id }, label, required ? h("span", { class: "field__required" }, " (required)") : null),
      input, help, error),
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
