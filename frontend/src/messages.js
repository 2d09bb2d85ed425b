// Server errors in words a user understands.

const PLAN_NAMES = { FREE: "Free", PRO: "Pro", BUSINESS: "Business" };

/** A message as a sentence, the way every message on these pages reads: capitalised, with a full stop. */
export function sentence(text) {
  const trimmed = String(text ?? "").trim();
  if (!trimmed) return "";
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

export function planName(plan) {
  return PLAN_NAMES[plan] ?? plan;
}

/**
 * @param {import("./api.js").ApiError} error
 * @param {{me?: {plan: string, pluginLimit: number|null}, action?: string}} context
 */
export function describeError(error, context = {}) {
  const { me } = context;
  switch (error.code) {
    case "PLAN_LIMIT_REACHED": {
      if (me && me.pluginLimit !== null && me.pluginLimit !== undefined) {
        const n = me.pluginLimit;
        return `Your ${planName(me.plan)} plan allows ${n} plugin${n === 1 ? "" : "s"}, and you have used ${n === 1 ? "it" : "them all"}. Uninstall one on My plugins, or upgrade your plan.`;
      }
      return "Your plan's plugin limit is reached. Uninstall a plugin on My plugins, or upgrade your plan.";
    }
    case "BAD_USER_INPUT":
      if (error.fieldErrors.length) {
        const list = error.fieldErrors.map((e) => `${fieldName(e.path)}: ${e.message}`).join("; ");
        return `Some settings are not valid (${list}).`;
      }
      return `That was not accepted: ${error.message}.`;
    case "NOT_FOUND":
      return "That no longer exists. The page has been refreshed.";
    case "NOT_INSTALLED":
      return "That plugin is not installed any more. The page has been refreshed.";
    case "ALREADY_INSTALLED":
      return "You have installed this plugin already.";
    case "PLUGIN_ERROR":
      return `The plugin reported a problem, so nothing was changed: ${error.message}`;
    case "RATE_LIMITED":
      return `Not now: ${sentence(error.message)}`;
    case "GATEWAY_UNREACHABLE":
      return "Telegram could not be reached or refused the bot token, so nothing was changed. Check the token and try again.";
    case "UNAUTHENTICATED":
      return "Your API token is not valid any more. Sign in again.";
    case "NETWORK":
      return "Plugboard cannot be reached. Check your connection and try again.";
    default:
      return "Something went wrong on our side, and nothing was changed. Try again in a moment.";
  }
}

function fieldName(pointer) {
  return pointer.replace(/^\//, "").replaceAll("/", " › ") || "settings";
}

const GATEWAY_NAMES = { TELEGRAM_BOT: "Telegram bot" };

export function gatewayName(type) {
  return GATEWAY_NAMES[type] ?? type.toLowerCase().replaceAll("_", " ");
}
