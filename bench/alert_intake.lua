-- wrk script for `make bench BENCH=alert-intake`: POST a realistic one-alert
-- Alertmanager (webhook version 4) notification to /hooks/alertmanager/<source>
-- with the source's bearer token (BENCH_ALERT_TOKEN). Each request names a new
-- alert (fingerprint and instance vary per thread and request), in one of 50
-- groups, as a real Alertmanager's traffic would.

local token = os.getenv("BENCH_ALERT_TOKEN") or ""
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

local template = [[{"version":"4","receiver":"console","status":"firing",]]
  .. [["groupKey":"{}:{alertname=\"HighErrorRate\", service=\"bench-%02d\"}",]]
  .. [["groupLabels":{"alertname":"HighErrorRate","service":"bench-%02d"},]]
  .. [["commonLabels":{"alertname":"HighErrorRate","service":"bench-%02d","severity":"critical"},]]
  .. [["commonAnnotations":{"summary":"5xx rate above 5%% for 5 minutes"},]]
  .. [["externalURL":"http://alertmanager.example:9093","truncatedAlerts":0,]]
  .. [["alerts":[{"status":"firing",]]
  .. [["labels":{"alertname":"HighErrorRate","service":"bench-%02d","severity":"critical","instance":"api-%d-%d:8080","job":"api"},]]
  .. [["annotations":{"summary":"5xx rate above 5%% for 5 minutes","runbook_url":"https://runbooks.example/yomira.md#1-high-api-error-rate-5xx"},]]
  .. [["startsAt":"2026-11-29T12:00:00.000Z","endsAt":"0001-01-01T00:00:00Z",]]
  .. [["generatorURL":"http://prometheus.example:9090/graph?g0.expr=sum%%28rate%%28http_requests_total%%7Bstatus%%3D~%%225..%%22%%7D%%5B5m%%5D%%29%%29&g0.tab=1",]]
  .. [["fingerprint":"%08x%08x"}]}]]

local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. token,
}
local counter = 0

function request()
  counter = counter + 1
  local group = counter % 50
  local body = string.format(
    template, group, group, group, group, id, counter, id, counter
  )
  return wrk.format("POST", nil, headers, body)
end
