-- wrk script: POSTs a distinct Telegram message update per request to WEBHOOK_PATH.
local path = os.getenv("WEBHOOK_PATH")
local secret = os.getenv("WEBHOOK_SECRET") or ""
-- Each wrk run of one benchmark gets its own range of update ids, so no run repeats another's.
local offset = tonumber(os.getenv("UPDATE_ID_OFFSET") or "0")
local counter = 0
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function request()
  counter = counter + 1
  local update_id = offset + thread_id * 100000000 + counter
  local body = string.format(
    '{"update_id":%d,"message":{"message_id":%d,"date":1700000000,' ..
    '"chat":{"id":-100%d,"type":"supergroup","title":"Bench"},' ..
    '"from":{"id":%d,"is_bot":false,"first_name":"Bench"},"text":"hello world"}}',
    update_id, counter, counter % 50, 1000 + counter % 500)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-Telegram-Bot-Api-Secret-Token"] = secret,
  }, body)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d errors=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
