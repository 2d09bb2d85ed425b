// GraphQL over HTTP with the signed-in user's bearer token.

import { bearer, signOut } from "./auth.js";

export class ApiError extends Error {
  /**
   * @param {string} message the server's message (or ours for network failures)
   * @param {{code: string, fieldErrors?: {path: string, message: string, keyword?: string, params?: object}[]}} details
   */
  constructor(message, { code, fieldErrors = [] }) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.fieldErrors = fieldErrors;
  }
}

/** The `data` of an operation; throws ApiError with the server's `extensions.code`. */
export async function graphql(query, variables = {}, { token } = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...bearer(token) },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("network", { code: "NETWORK" });
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`HTTP ${response.status}`, { code: response.status >= 500 ? "SERVER" : "HTTP" });
  }
  const [error] = body.errors ?? [];
  if (error) {
    const code = error.extensions?.code ?? "INTERNAL_SERVER_ERROR";
    if (code === "UNAUTHENTICATED" && token === undefined) {
      signOut("Your API token is not valid any more. Sign in again with a current token.");
    }
    throw new ApiError(error.message, { code, fieldErrors: error.extensions?.errors ?? [] });
  }
  return body.data;
}

/** Fetches an authenticated file and saves it under `filename` (the token stays in the header). */
export async function download(path, filename) {
  const response = await fetch(path, { headers: bearer() });
  if (response.status === 401) {
    signOut("Your API token is not valid any more. Sign in again with a current token.");
  }
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      message = (await response.json()).error ?? message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(message, { code: response.status === 404 ? "NOT_INSTALLED" : "HTTP" });
  }
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
