// Pieces shared by the catalog and the installs: a plugin's icon, title and requirements.

import { h } from "./dom.js";
import { icon } from "./icons.js";
import { gatewayName } from "./messages.js";

export function categoryLabel(category) {
  return category.charAt(0).toUpperCase() + category.slice(1);
}

export function pluginIcon(plugin) {
  return h("span", { class: `plugin-icon plugin-icon--${plugin.category}` }, icon(plugin.icon ?? "puzzle", 22));
}

/** Icon, name (a heading with `titleId`), category, version and anything in `extra` (a badge). */
export function pluginHead(plugin, titleId, level = "h2", extra = null) {
  return h(
    "div",
    { class: "card__head" },
    pluginIcon(plugin),
    h(
      "div",
      { class: "card__title" },
      h(level, { id: titleId }, plugin.name),
      h(
        "p",
        { class: "card__meta" },
        h("span", { class: "badge" }, categoryLabel(plugin.category)),
        h("span", {}, `Version ${plugin.version}`),
        extra,
      ),
    ),
  );
}

/** The gateway types a plugin needs that the user has no active gateway of. */
export function missingGateways(plugin, gateways) {
  const active = new Set(gateways.filter((g) => g.isActive).map((g) => g.type));
  return plugin.requiredGateways.filter((type) => !active.has(type));
}

export function requirements(plugin, gateways) {
  if (!plugin.requiredGateways.length) {
    return h("p", { class: "requires" }, "Works without a connected bot");
  }
  const missing = missingGateways(plugin, gateways);
  return h(
    "p",
    { class: "requires" },
    icon("bot", 16),
    `Requires: ${plugin.requiredGateways.map(gatewayName).join(", ")}`,
    missing.length ? h("span", { class: "badge badge--warning" }, "Not connected yet") : null,
  );
}
