-- One decision of redislimiter over every quota of a call, all or nothing
-- (the rule of ratelimit.Memory): the call is counted against every quota,
-- or, if one has no room, against none.
--
-- KEYS[i]    the window of quota i: a hash whose field is a bucket index
--            (decimal) and whose value is the calls counted in it
-- ARGV       three values per quota i:
--   ARGV[3i-2] the index of the bucket of now (ratelimit.BucketIndex:
--              Unix nanoseconds of the caller's clock / (window/10))
--   ARGV[3i-1] the limit
--   ARGV[3i]   the key's time to live in milliseconds, set when a call is
--              counted (a window, a bucket and a margin)
-- Returns    {allowed, then per quota: shift, c0, c1, ..., c10}
--   allowed  1 if the call was counted against every quota, 0 if refused
--   shift    how many buckets the newest bucket counted in is ahead of
--            the caller's (a replica whose clock is ahead wrote it): the
--            call counts in the newest, as ratelimit.Memory does
--   c0..c10  the calls of the 11 buckets that end at the newest, oldest
--            first, before this call
-- The caller computes Remaining, Reset and RetryAfter from these with
-- ratelimit.Decide, the code ratelimit.Memory decides with.
--
-- Bucket indices are compared as Lua numbers (doubles): exact below 2^53,
-- which windows of 1 ms and more keep them under. Fields are written with
-- the caller's decimal string, never formatted here.
local span = 10 -- ratelimit.SubBuckets
local out = {1}
local newest = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local now = tonumber(ARGV[3 * i - 2])
  local limit = tonumber(ARGV[3 * i - 1])
  local fields = redis.call('HGETALL', key)
  local top, topField = now, ARGV[3 * i - 2]
  for j = 1, #fields, 2 do
    local b = tonumber(fields[j])
    if b ~= nil and b > top then
      top, topField = b, fields[j]
    end
  end
  local counts = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
  local used, stale = 0, {}
  for j = 1, #fields, 2 do
    local b = tonumber(fields[j])
    if b == nil or top - b > span then
      stale[#stale + 1] = fields[j] -- left the window: forget it
    else
      local c = tonumber(fields[j + 1]) or 0
      counts[span + 1 - (top - b)] = c
      used = used + c
    end
  end
  if #stale > 0 then
    redis.call('HDEL', key, unpack(stale))
  end
  if used + 1 > limit then
    out[1] = 0
  end
  newest[i] = topField
  out[#out + 1] = top - now
  for k = 1, span + 1 do
    out[#out + 1] = counts[k]
  end
end
if out[1] == 1 then
  for i = 1, #KEYS do
    redis.call('HINCRBY', KEYS[i], newest[i], 1)
    redis.call('PEXPIRE', KEYS[i], ARGV[3 * i])
  end
end
return out
