// Live data over graphql-transport-ws (the graphql-ws client): the token goes in connection_init,
// and the client keeps retrying after the server goes away, re-subscribing once it is back.

import { createClient } from "graphql-ws";

const FORBIDDEN = 4403; // strawberry's close code for a refused connection_init

function isForbidden(event) {
  return Boolean(event) && typeof event === "object" && event.code === FORBIDDEN;
}

/** Waits 0.5 s, 1 s, 2 s, then 3 s between attempts, with a little jitter. */
async function backoff(retries) {
  const delay = Math.min(500 * 2 ** retries, 3000) + Math.random() * 300;
  await new Promise((resolve) => setTimeout(resolve, delay));
}

/**
 * @param {{token: () => string|null, onStatus: (status: "connecting"|"live"|"reconnecting"|"forbidden") => void}} options
 */
export function liveClient({ token, onStatus }) {
  let subscriptions = 0;
  let everConnected = false;
  const client = createClient({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
    connectionParams: () => ({ Authorization: `Bearer ${token() ?? ""}` }),
    lazy: true,
    lazyCloseTimeout: 1000,
    keepAlive: 10_000,
    retryAttempts: Infinity,
    retryWait: backoff,
    shouldRetry: (event) => !isForbidden(event), // everything else may pass: a restart, a network blip
    on: {
      connecting: () => onStatus(everConnected ? "reconnecting" : "connecting"),
      connected: () => {
        everConnected = true;
        onStatus("live");
      },
      closed: (event) => {
        if (!subscriptions) return;
        onStatus(isForbidden(event) ? "forbidden" : "reconnecting");
      },
    },
  });

  return {
    /** Starts a subscription; returns a function that stops it. */
    subscribe(query, variables, { next, error }) {
      subscriptions += 1;
      let stopped = false;
      const unsubscribe = client.subscribe(
        { query, variables },
        {
          next: (result) => (result.errors?.length ? error(result.errors) : next(result.data)),
          error: (reason) => error(Array.isArray(reason) ? reason : [reason]),
          complete: () => {},
        },
      );
      return () => {
        if (stopped) return;
        stopped = true;
        subscriptions -= 1;
        unsubscribe();
      };
    },
    dispose: () => client.dispose(),
  };
}
