-- wrk script: POSTs one GraphQL request body (GRAPHQL_BODY) to /graphql, with AUTHORIZATION if set.
wrk.method = "POST"
wrk.path = "/graphql"
wrk.body = os.getenv("GRAPHQL_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/graphql-response+json, application/json"
local authorization = os.getenv("AUTHORIZATION")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d errors=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
