// Every page's frame: header, navigation, the signed-in user, and the sign-in form when there is
// no token. A page module only renders its own content into <main>.

import "./styles/app.css";
import { graphql } from "./api.js";
import { getToken, onSignedOut, signOut } from "./auth.js";
import { h, mount } from "./dom.js";
import { icon } from "./icons.js";
import { describeError, planName } from "./messages.js";
import { signInView } from "./signin.js";

const ME = "query Me { me { id email plan pluginLimit } }";

const NAV = [
  { href: "/my-plugins", label: "My plugins" },
  { href: "/plugins", label: "Plugins" },
];

/**
 * @param {{path: string, title: string, render?: (main: HTMLElement, me: object) => void}} page
 *   A page without `render` is the sign-in page: once signed in it leads to /my-plugins.
 */
export function startPage(page) {
  const header = h("header", { class: "topbar" });
  const main = h("main", { id: "main", class: "page", tabindex: "-1" });
  mount(document.body, h("a", { class: "skip-link", href: "#main" }, "Skip to content"), header, main);

  function showSignIn(reason = "") {
    document.title = "Sign in · Plugboard";
    mount(header, topbar(page.path, null));
    mount(main, signInView({
      reason,
      onSignedIn: (me) => (page.render ? showPage(me) : location.assign("/my-plugins")),
    }));
  }

  function showPage(me) {
    document.title = `${page.title} · Plugboard`;
    mount(header, topbar(page.path, me));
    main.replaceChildren();
    page.render(main, me);
  }

  async function start() {
    if (!getToken()) {
      showSignIn();
      return;
    }
    if (!page.render) {
      location.replace("/my-plugins");
      return;
    }
    mount(header, topbar(page.path, null));
    mount(main, h("p", { class: "page__lead", role: "status" }, "Loading…"));
    try {
      const { me } = await graphql(ME);
      showPage(me);
    } catch (error) {
      if (error.code !== "UNAUTHENTICATED") {
        mount(main, h("p", { class: "notice notice--error", role: "alert" }, icon("alert", 18), describeError(error)));
      }
      // UNAUTHENTICATED signs out, and the sign-out listener shows the form.
    }
  }

  onSignedOut((reason) => showSignIn(reason));
  start();
}

function topbar(path, me) {
  const brand = h(
    "a",
    { class: "brand", href: "/my-plugins" },
    h("span", { class: "brand__mark" }, icon("plug", 18)),
    "Plugboard",
  );
  if (!me) return h("div", { class: "topbar__inner" }, brand);
  return h(
    "div",
    { class: "topbar__inner" },
    brand,
    h(
      "nav",
      { class: "nav", "aria-label": "Main" },
      NAV.map((item) => h("a", { href: item.href, "aria-current": item.href === path ? "page" : null }, item.label)),
    ),
    h(
      "div",
      { class: "account" },
      h(
        "span",
        { class: "account__who" },
        h("span", { class: "account__email" }, me.email),
        h("span", { class: "badge badge--accent" }, planName(me.plan)),
      ),
      h(
        "button",
        { class: "button button--secondary button--small", type: "button", onclick: () => signOut() },
        icon("log-out", 16),
        "Sign out",
      ),
    ),
  );
}
