// Self-hosted GraphiQL: everything it loads comes from this server (no CDN).
import "graphiql/setup-workers/vite";
import "graphiql/style.css";
import { createElement } from "react";
import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { createClient } from "graphql-ws";

const httpUrl = `${location.origin}/graphql`;
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;

const fetcher = createGraphiQLFetcher({
  url: httpUrl,
  // graphql-transport-ws; the token in the headers editor goes along as the connection payload.
  wsClient: createClient({
    url: wsUrl,
    lazy: true,
    connectionParams: () => {
      try {
        return JSON.parse(localStorage.getItem("graphiql:headers") || "{}");
      } catch {
        return {};
      }
    },
  }),
});

const defaultQuery = `# Paste your API token in the headers below: {"Authorization": "Bearer pb_…"}
{
  plugins {
    id
    slug
    name
    category
    installed
  }
}
`;

createRoot(document.getElementById("graphiql")).render(
  createElement(GraphiQL, {
    fetcher,
    defaultQuery,
    defaultHeaders: '{"Authorization": "Bearer "}',
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: true,
  }),
);
