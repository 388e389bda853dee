package redisbus

import "github.com/redis/go-redis/v9"

// Every change to a stream's state in Redis is one Lua script, so that it
// is atomic: Redis runs a script whole, with nothing in between. Times are
// Redis's own (TIME), so that the instances' clocks do not matter.

// A lease is held by one link at a time: its value is the instance's id and
// a fencing token, a number that grows with every lease of the stream
// (INCR of the fence key), so that a link that lost its lease can never
// pass for the holder again, even one of the same instance. The leader's
// scripts (publishing, taking input) check that value, and publishing also
// checks that the stream's last number is the one the leader has, so that
// a leader that fell behind another's lines cannot write over them.

// tickScript is a link's periodic visit: it refreshes or removes the
// instance's presence, drops presences that expired, renews the lease if the
// link holds it or takes it if it is free and the link wants it, and tells
// the leader when the presence changed.
//
// KEYS: lease, present, seq, replay, epoch, fence.
// ARGV: lease value held ("" for none), lease ttl ms, present (0/1), id,
// presence ttl ms, keep ttl ms, notify (0/1), input channel, want the lease
// (0/1).
// Returns {state, seq, instances present, lease value taken, history}:
// state 1 = renewed, 2 = taken, 0 = held by another or free and not
// wanted; history 1 when the stream has an epoch (another instance led it).
var tickScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
else
  redis.call('ZREM', KEYS[2], ARGV[4])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local state, taken = 0, ''
local holder = redis.call('GET', KEYS[1])
if holder and holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  for i = 3, 6 do
    redis.call('PEXPIRE', KEYS[i], ARGV[6])
  end
  state = 1
elseif not holder and ARGV[9] == '1' then
  taken = ARGV[4] .. '#' .. redis.call('INCR', KEYS[6])
  redis.call('PEXPIRE', KEYS[6], ARGV[6])
  redis.call('SET', KEYS[1], taken, 'PX', ARGV[2])
  state = 2
end
if ARGV[7] == '1' then
  redis.call('PUBLISH', ARGV[8], 'p')
end
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
local history = redis.call('EXISTS', KEYS[5])
return {state, seq, redis.call('ZCARD', KEYS[2]), taken, history}
`)

// attachScript makes the instance present, takes the lease if it is free,
// and reads where the stream is: its epoch (made now for a stream that has
// none: a new history), its last sequence number and the replay, at one
// instant, so that what the subscription delivers afterwards follows them,
// and an instance that takes the lease here has missed nothing.
//
// KEYS: present, seq, replay, lease, epoch, fence.
// ARGV: id, presence ttl ms, keep ttl ms, input channel, replay length,
// lease ttl ms, a new epoch.
// Returns {seq, lease value taken ("" for none), {entry...}, epoch,
// history (1 when the stream had an epoch)}.
var attachScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], 'p')
local epoch = redis.call('GET', KEYS[5])
local history = 1
if not epoch then
  history = 0
  epoch = ARGV[7]
  redis.call('SET', KEYS[5], epoch, 'PX', ARGV[3])
end
local taken = ''
if redis.call('EXISTS', KEYS[4]) == 0 then
  taken = ARGV[1] .. '#' .. redis.call('INCR', KEYS[6])
  redis.call('PEXPIRE', KEYS[6], ARGV[3])
  redis.call('SET', KEYS[4], taken, 'PX', ARGV[6])
  redis.call('PEXPIRE', KEYS[5], ARGV[3])
end
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local entries = {}
local n = tonumber(ARGV[5])
if n > 0 then
  entries = redis.call('LRANGE', KEYS[3], -n, -1)
end
return {seq, taken, entries, epoch, history}
`)

// publishScript publishes entries to every party, keeps them for replay and
// records the last sequence number: only if the link holds the lease and
// the stream's last number is the one it continues from, so that an
// instance that lost the lease, or fell behind another leader, can never
// publish. The last message of a stream also frees the lease and drops the
// stream's history: its replay, numbers, epoch and input queue. With
// announce 0 it publishes nothing (announceScript does, once replicas have
// the entries).
//
// KEYS: lease, seq, replay, input, input bytes, epoch.
// ARGV: lease value, last seq before, last seq after, replay length, output
// channel, ends (0/1), keep ttl ms, announce (0/1), entry....
// Returns 1, 0 when the lease is not the link's, or -1 when the stream's
// last number is not the one before the entries.
var publishScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then
  return -1
end
local n = tonumber(ARGV[4])
if ARGV[6] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
else
  if n > 0 then
    redis.call('RPUSH', KEYS[3], unpack(ARGV, 9))
    redis.call('LTRIM', KEYS[3], -n, -1)
    redis.call('PEXPIRE', KEYS[3], ARGV[7])
  end
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[7])
  redis.call('PEXPIRE', KEYS[6], ARGV[7])
end
if ARGV[8] == '1' then
  redis.call('PUBLISH', ARGV[5], table.concat(ARGV, '', 9))
end
return 1
`)

// announceScript publishes entries that publishScript stored without
// publishing them, once replicas acknowledged them (WAIT): only if the
// link still holds the lease and they are still the stream's last.
//
// KEYS: lease, seq.
// ARGV: lease value, last seq of the entries, output channel, the entries.
// Returns 1, or 0 when they are not published.
var announceScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] or (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then
  return 0
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)

// leaveScript takes the instance out of the stream: its presence, and the
// lease if the link holds it; the leader hears of it.
//
// KEYS: lease, present.
// ARGV: id, input channel, lease value held ("" for none).
var leaveScript = redis.NewScript(`
if ARGV[3] ~= '' and redis.call('GET', KEYS[1]) == ARGV[3] then
  redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'p')
return 1
`)

// sendScript queues one input for the leader, unless the queue is full: it
// holds inputBudget bytes or maxInputs inputs (an input alone is always
// taken, whatever its size). The leader hears of it on the input channel.
//
// KEYS: input, input bytes.
// ARGV: data, budget bytes, most inputs, input channel, keep ttl ms.
// Returns 1, or 0 when the queue is full.
var sendScript = redis.NewScript(`
local queued = redis.call('LLEN', KEYS[1])
if queued > 0 then
  local bytes = tonumber(redis.call('GET', KEYS[2]) or '0')
  if bytes + #ARGV[1] > tonumber(ARGV[2]) or queued >= tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('INCRBY', KEYS[2], #ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PUBLISH', ARGV[4], 'i')
return 1
`)

// takeScript takes the oldest inputs from the queue, for the leader only,
// so that an instance that lost the lease takes nothing.
//
// KEYS: lease, input, input bytes.
// ARGV: lease value, most inputs.
// Returns the inputs, oldest first; none when the queue is empty or the
// lease is not the instance's.
var takeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {}
end
local items = redis.call('LPOP', KEYS[2], ARGV[2])
if not items then
  return {}
end
local size = 0
for _, v in ipairs(items) do
  size = size + #v
end
if redis.call('DECRBY', KEYS[3], size) <= 0 or redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[3])
end
return items
`)
