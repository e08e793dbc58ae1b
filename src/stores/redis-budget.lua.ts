// The one Lua script behind every operation of the Redis BudgetStore
// (redis-budget.ts): take, publish, pause and read on one model's hash, each
// atomic because Redis runs a script to the end before anything else. It is
// bucket.ts and the slow-down helpers of budget-store.ts, line for line, so
// the two stores pass the same contract table.
//
// KEYS[1]  the model's hash in the scope (oai-batch:budget:<scope>:<model>).
// ARGV     op, now (ms; '' = Redis's own clock, TIME), idle TTL (ms), then the op's arguments.
// Returns  {granted (how many), waitMs, limitRpm, limitTpm, pausedForMs, rateFactor} as strings
//          ('' = null): Redis would truncate a Lua number to an integer.
//
// Numbers are stored with %.17g, which reads back to the same double, so the
// arithmetic matches the in-memory store's to the bit. An unlimited bucket
// has rate -1; an unknown limit, rate or last slow-down is stored as ''.

import { MIN_RATE_FACTOR, RECOVERY_PER_SECOND, SLOWDOWN_EPISODE_MS, SLOWDOWN_FACTOR } from './budget-store.js';

export const BUDGET_SCRIPT = `
local SLOWDOWN_FACTOR = ${SLOWDOWN_FACTOR}
local RECOVERY_PER_SECOND = ${RECOVERY_PER_SECOND}
local MIN_RATE_FACTOR = ${MIN_RATE_FACTOR}
local SLOWDOWN_EPISODE_MS = ${SLOWDOWN_EPISODE_MS}
local FIELDS = {'rq_r', 'rq_c', 'rq_l', 'rq_t', 'tk_r', 'tk_c', 'tk_l', 'tk_t', 'rpm', 'tpm', 'burst', 'lrpm', 'ltpm', 'f', 'fat', 'pu', 'lsa'}

local key = KEYS[1]
local op = ARGV[1]
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local ttl = tonumber(ARGV[3])

local function num(text) if text == nil or text == '' or text == false then return nil end return tonumber(text) end
local function str(n) if n == nil then return '' end return string.format('%.17g', n) end

-- bucket.ts
local function createBucket(perMinute, burstMs)
  if perMinute == nil then return {r = -1, c = 0, l = 0, t = now} end
  local r = perMinute / 60000
  local c = math.max(1, r * burstMs)
  return {r = r, c = c, l = c, t = now}
end
local function refill(b, at)
  if b.r < 0 then return end
  if at <= b.t then return end
  b.l = math.min(b.c, b.l + (at - b.t) * b.r)
  b.t = at
end
local function waitFor(b, charge)
  if b.r < 0 then return 0 end
  local needed = math.min(charge, b.c)
  if b.l >= needed then return 0 end
  if b.r <= 0 then return math.huge end
  return math.ceil((needed - b.l) / b.r - 1e-6)
end
local function takeFrom(b, charge)
  if b.r >= 0 then b.l = b.l - charge end
end
local function setRate(b, perMinute, burstMs, at)
  refill(b, at)
  if perMinute == nil then b.r = -1 b.c = 0 b.l = 0 return end
  local wasUnlimited = b.r < 0
  b.r = perMinute / 60000
  b.c = math.max(1, b.r * burstMs)
  if wasUnlimited then b.l = b.c else b.l = math.min(b.l, b.c) end
end
local function drain(b, at)
  b.t = at
  if b.r >= 0 then b.l = math.min(b.l, 0) end
end

-- budget-store.ts: factorAt, applyPause, lowestLimit
local function factorAt(m, at)
  if m.f >= 1 then return 1 end
  local seconds = (at - math.max(m.fat, m.pu)) / 1000
  if seconds <= 0 then return m.f end
  return math.min(1, m.f + seconds * RECOVERY_PER_SECOND)
end
local function applyPause(m, at, pauseMs)
  local pausedUntil = math.max(m.pu, at + pauseMs)
  if m.lsa ~= nil and at - m.lsa <= math.max(SLOWDOWN_EPISODE_MS, pauseMs) then
    m.pu = pausedUntil
    return
  end
  local recovered = factorAt(m, at)
  m.f = math.max(MIN_RATE_FACTOR, recovered * SLOWDOWN_FACTOR)
  m.fat = at
  m.pu = pausedUntil
  m.lsa = at
end
local function lowestLimit(stored, published)
  if published == nil or not (published > 0) then return stored end
  if stored == nil then return published end
  return math.min(stored, published)
end

-- The model's budget as stored, or nil.
local function load()
  local v = redis.call('HMGET', key, unpack(FIELDS))
  if not v[1] then return nil end
  return {
    rq = {r = num(v[1]), c = num(v[2]), l = num(v[3]), t = num(v[4])},
    tk = {r = num(v[5]), c = num(v[6]), l = num(v[7]), t = num(v[8])},
    rpm = num(v[9]), tpm = num(v[10]), burst = num(v[11]),
    lrpm = num(v[12]), ltpm = num(v[13]),
    f = num(v[14]), fat = num(v[15]), pu = num(v[16]), lsa = num(v[17]),
  }
end
-- A new budget: full buckets at the given rates (unlimited when none are given yet).
local function create(rpm, tpm, burstMs)
  burstMs = burstMs or 500
  return {
    rq = createBucket(rpm, burstMs), tk = createBucket(tpm, burstMs),
    rpm = rpm, tpm = tpm, burst = burstMs, lrpm = nil, ltpm = nil,
    f = 1, fat = now, pu = 0, lsa = nil,
  }
end
local function save(m)
  redis.call('HSET', key,
    'rq_r', str(m.rq.r), 'rq_c', str(m.rq.c), 'rq_l', str(m.rq.l), 'rq_t', str(m.rq.t),
    'tk_r', str(m.tk.r), 'tk_c', str(m.tk.c), 'tk_l', str(m.tk.l), 'tk_t', str(m.tk.t),
    'rpm', str(m.rpm), 'tpm', str(m.tpm), 'burst', str(m.burst), 'lrpm', str(m.lrpm), 'ltpm', str(m.ltpm),
    'f', str(m.f), 'fat', str(m.fat), 'pu', str(m.pu), 'lsa', str(m.lsa))
  -- An idle scope expires; never while a pause it holds is still running.
  redis.call('PEXPIRE', key, math.ceil(math.max(ttl, m.pu - now + ttl)))
end
local function answer(granted, waitMs, m)
  if m == nil then return {'0', '0', '', '', '0', '1'} end
  return {granted, str(waitMs), str(m.lrpm), str(m.ltpm), str(math.max(0, m.pu - now)), str(factorAt(m, now))}
end

if op == 'take' then
  -- rates, the limits this worker knew, then one charge per request (in order: stop at the first that must wait)
  local rpm, tpm, burstMs = num(ARGV[4]), num(ARGV[5]), tonumber(ARGV[6])
  local m = load() or create(rpm, tpm, burstMs)
  -- Limits this worker knew before (the store may have restarted empty): the lowest still wins.
  m.lrpm = lowestLimit(m.lrpm, num(ARGV[7]))
  m.ltpm = lowestLimit(m.ltpm, num(ARGV[8]))
  -- Run the buckets at the rates x the slow-down factor (memory-budget.ts #runAt).
  local factor = factorAt(m, now)
  local runRpm, runTpm = nil, nil
  if rpm ~= nil then runRpm = rpm * factor end
  if tpm ~= nil then runTpm = tpm * factor end
  if not (runRpm == m.rpm and runTpm == m.tpm and burstMs == m.burst) then
    setRate(m.rq, runRpm, burstMs, now)
    setRate(m.tk, runTpm, burstMs, now)
    m.rpm, m.tpm, m.burst = runRpm, runTpm, burstMs
  end
  refill(m.rq, now)
  refill(m.tk, now)
  local granted, waitMs = 0, 0
  for i = 9, #ARGV do
    local tokens = tonumber(ARGV[i])
    waitMs = math.max(m.pu - now, waitFor(m.rq, 1), waitFor(m.tk, tokens), 0)
    if waitMs > 0 then break end
    takeFrom(m.rq, 1)
    takeFrom(m.tk, tokens)
    granted = granted + 1
  end
  save(m)
  return answer(tostring(granted), waitMs, m)
elseif op == 'publish' then
  local m = load() or create(nil, nil, nil)
  m.lrpm = lowestLimit(m.lrpm, num(ARGV[4]))
  m.ltpm = lowestLimit(m.ltpm, num(ARGV[5]))
  save(m)
  return answer('0', 0, m)
elseif op == 'pause' then
  local m = load() or create(nil, nil, nil)
  applyPause(m, now, tonumber(ARGV[4]))
  drain(m.rq, m.pu)
  drain(m.tk, m.pu)
  save(m)
  return answer('0', 0, m)
elseif op == 'read' then
  return answer('0', 0, load())
end
return redis.error_reply('oai-batch budget script: unknown operation ' .. tostring(op))
`;
