-- Debian's wrk has no fixed-rate mode (-R is wrk2's). Each connection waits this long before
-- its next request, so the offered rate is about connections × 1000 / (10 + latency ms)
-- requests per second: a moderate, steady load at which queueing does not hide the proxy's
-- own added latency.
function delay()
  return 10
end
