-- wrk script: POST one small chat completion (BENCH_BODY overrides the body).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-key"
local extra = os.getenv("BENCH_HEADERS")
if extra then
  for name, value in string.gmatch(extra, "([^:;]+):([^;]*)") do wrk.headers[name] = value end
end
wrk.body = os.getenv("BENCH_BODY") or
  '{"model":"fast","messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":16}'

-- BENCH_DELAY_MS: each connection waits this long between requests (a fixed offered rate of
-- about connections * 1000 / delay requests per second, e.g. 10 connections x 10 ms = 1,000/s).
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause then
  function delay() return pause end
end
