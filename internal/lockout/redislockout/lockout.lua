-- One operation of redislockout over the keys of one login attempt, with
-- the rules of lockout.Memory (see its table.fail, succeed and wait).
--
-- KEYS[1]  the account: a hash whose field "a" is the account-wide entry,
--          "p:<network>" the entry of the account from one network, and
--          "prune" the field count at which dead pair entries are next
--          dropped. Unlock deletes the key.
-- KEYS[2]  the client network: a string holding its entry
-- ARGV[1]  the operation: check, fail or success
-- ARGV[2]  now, Unix milliseconds of the caller's clock
-- ARGV[3]  the network, as it names the pair field
-- ARGV[4..15]  the policies of the pair, the account and the network, four
--          values each: max failures (0: disabled), window, first lockout
--          and longest lockout in milliseconds
-- ARGV[16] how long a success trusts a network, in milliseconds
-- ARGV[17] the margin added to every key's time to live, in milliseconds
-- Returns  check: the longest wait in milliseconds (0: allowed);
--          fail, success: 0
--
-- An entry is "till,level,last,trusted,f1,...,fn": the end of its current
-- or latest lockout, the lockouts so far, the time of its latest failure,
-- the end of its trust (0: none), and its failures in the window, oldest
-- first. Times are Unix milliseconds, exact as Lua numbers (doubles), and
-- written with %d, never tostring.
local op, now, net = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local function policy(i)
  local b = 4 + 4 * i
  return {max = tonumber(ARGV[b]), window = tonumber(ARGV[b + 1]),
    lockout = tonumber(ARGV[b + 2]), maxLockout = tonumber(ARGV[b + 3])}
end
local pairP, acctP, netP = policy(0), policy(1), policy(2)
local trustFor, margin = tonumber(ARGV[16]), tonumber(ARGV[17])
local pairField = 'p:' .. net

local function decode(s)
  local e = {till = 0, level = 0, last = 0, trusted = 0, fails = {}}
  if not s then
    return e
  end
  local v = {}
  for x in string.gmatch(s, '[^,]+') do
    v[#v + 1] = tonumber(x)
  end
  e.till, e.level, e.last, e.trusted = v[1], v[2], v[3], v[4]
  for i = 5, #v do
    e.fails[#e.fails + 1] = v[i]
  end
  return e
end

local function encode(e)
  local out = {string.format('%d', e.till), string.format('%d', e.level),
    string.format('%d', e.last), string.format('%d', e.trusted)}
  for _, f in ipairs(e.fails) do
    out[#out + 1] = string.format('%d', f)
  end
  return table.concat(out, ',')
end

local function decayed(e, p)
  return e.level == 0 or now - math.max(e.last, e.till) >= p.maxLockout
end

local function lockoutFor(p, level)
  local d = p.lockout
  for _ = 1, level do
    if d > math.floor(p.maxLockout / 2) then
      return p.maxLockout
    end
    d = d * 2
  end
  return math.min(d, p.maxLockout)
end

local function fail(e, p)
  if now < e.till then
    return -- locked out: ignored, and the lockout is not extended
  end
  if e.level > 0 and decayed(e, p) then
    e.level = 0
  end
  e.fails[#e.fails + 1] = now
  if #e.fails > p.max then
    table.remove(e.fails, 1)
  end
  e.last = now
  if #e.fails < p.max or now - e.fails[1] >= p.window then
    return
  end
  e.till = now + lockoutFor(p, e.level)
  e.level = math.min(e.level + 1, 64)
  e.fails = {}
end

-- needed is until when an entry matters: failures in the window, a
-- lockout, trust, or escalation that has not decayed yet.
local function needed(e, p)
  local t = math.max(e.last + p.window, e.till, e.trusted)
  if e.level > 0 then
    t = math.max(t, math.max(e.last, e.till) + p.maxLockout)
  end
  return t
end

local function wait(e)
  if now < e.till then
    return e.till - now
  end
  return 0
end

-- extend makes the account hash live at least until t (and the margin):
-- its time to live only grows, as it covers every entry in it.
local function extend(t)
  local want = t - now + margin
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < want then
    redis.call('PEXPIRE', KEYS[1], string.format('%d', want))
  end
end

-- prune drops dead pair entries once the hash has grown to the field
-- count stored under "prune", and sets the next threshold at twice what
-- is left: amortised, a new pair entry costs O(1).
local function prune()
  local n = redis.call('HLEN', KEYS[1])
  local at = tonumber(redis.call('HGET', KEYS[1], 'prune')) or 64
  if n < at then
    return
  end
  local all = redis.call('HGETALL', KEYS[1])
  local dead = {}
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'p:' and needed(decode(all[i + 1]), pairP) <= now then
      dead[#dead + 1] = all[i]
    end
  end
  for i = 1, #dead, 1000 do
    redis.call('HDEL', KEYS[1], unpack(dead, i, math.min(i + 999, #dead)))
  end
  redis.call('HSET', KEYS[1], 'prune', string.format('%d', math.max(64, 2 * (n - #dead))))
end

if op == 'check' then
  local f = redis.call('HMGET', KEYS[1], pairField, 'a')
  local w, trusted = 0, false
  if pairP.max > 0 then
    local e = decode(f[1])
    w, trusted = wait(e), now < e.trusted
  end
  if netP.max > 0 then
    w = math.max(w, wait(decode(redis.call('GET', KEYS[2]))))
  end
  if acctP.max > 0 and not trusted then
    w = math.max(w, wait(decode(f[2])))
  end
  return w
end

local until_ = 0
if op == 'fail' then
  if pairP.max > 0 then
    local raw = redis.call('HGET', KEYS[1], pairField)
    local e = decode(raw)
    fail(e, pairP)
    redis.call('HSET', KEYS[1], pairField, encode(e))
    until_ = math.max(until_, needed(e, pairP))
    if not raw then
      prune()
    end
  end
  if acctP.max > 0 then
    local e = decode(redis.call('HGET', KEYS[1], 'a'))
    fail(e, acctP)
    redis.call('HSET', KEYS[1], 'a', encode(e))
    until_ = math.max(until_, needed(e, acctP))
  end
  if netP.max > 0 then
    local e = decode(redis.call('GET', KEYS[2]))
    fail(e, netP)
    redis.call('SET', KEYS[2], encode(e), 'PX', string.format('%d', needed(e, netP) - now + margin))
  end
elseif op == 'success' then
  if pairP.max > 0 then
    local raw = redis.call('HGET', KEYS[1], pairField)
    local e = decode(raw)
    e.fails = {}
    if e.level > 0 and decayed(e, pairP) then
      e.level = 0
    end
    e.trusted = now + trustFor
    redis.call('HSET', KEYS[1], pairField, encode(e))
    until_ = needed(e, pairP)
    if not raw then
      prune()
    end
  end
else
  return redis.error_reply('unknown operation ' .. op)
end
if until_ > 0 then
  extend(until_)
end
return 0
