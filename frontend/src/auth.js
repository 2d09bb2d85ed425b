// The API token lives in this browser's localStorage: pages are separate documents and tabs,
// and a user signs in once per browser, as with any web app. It leaves the browser only as the
// `Authorization: Bearer` header and in the websocket's connection_init payload, never in a URL.

const KEY = "plugboard:token";
const SIGNED_OUT = "plugboard:signed-out";

export function getToken() {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null; // storage disabled: behave as signed out
  }
}

export function setToken(token) {
  localStorage.setItem(KEY, token);
}

/** Forgets the token; `reason` is shown above the sign-in form ("" for a plain sign-out). */
export function signOut(reason = "") {
  try {
    localStorage.removeItem(KEY);
  } catch {
    /* nothing stored */
  }
  window.dispatchEvent(new CustomEvent(SIGNED_OUT, { detail: { reason } }));
}

/** Calls `listener(reason)` when this tab or another one signs out. */
export function onSignedOut(listener) {
  window.addEventListener(SIGNED_OUT, (event) => listener(event.detail.reason));
  window.addEventListener("storage", (event) => {
    if (event.key === KEY && !event.newValue) listener("");
  });
}

export function bearer(token = getToken()) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}
