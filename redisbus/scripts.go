package redisbus

import "github.com/redis/go-redis/v9"

// Every change to a stream's state in Redis is one Lua script, so that it
// is atomic: Redis runs a script whole, with nothing in between. Times are
// Redis's own (TIME), so that the instances' clocks do not matter.

// tickScript is a link's periodic visit: it refreshes or removes the
// instance's presence, drops presences that expired, renews the lease if the
// instance holds it or takes it if it is free and the instance wants it,
// and tells the leader when the presence changed.
//
// KEYS: lease, present, seq, replay.
// ARGV: id, lease ttl ms, present (0/1), presence ttl ms, keep ttl ms,
// notify (0/1), input channel, want the lease (0/1).
// Returns {state, seq, instances present}: state 1 = renewed, 2 = taken,
// 0 = held by another or free and not wanted.
var tickScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local state = 0
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
  state = 1
elseif not holder and ARGV[8] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  state = 2
end
if ARGV[6] == '1' then
  redis.call('PUBLISH', ARGV[7], 'p')
end
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
return {state, seq, redis.call('ZCARD', KEYS[2])}
`)

// attachScript makes the instance present, takes the lease if it is free,
// and reads where the stream is: its last sequence number and the replay,
// at one instant, so that what the subscription delivers afterwards follows
// them, and an instance that takes the lease here has missed nothing.
//
// KEYS: present, seq, replay, lease.
// ARGV: id, presence ttl ms, keep ttl ms, input channel, replay length,
// lease ttl ms.
// Returns {seq, took the lease (0/1), {entry...}}.
var attachScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], 'p')
local took = 0
if redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[6]) then
  took = 1
end
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local entries = {}
local n = tonumber(ARGV[5])
if n > 0 then
  entries = redis.call('LRANGE', KEYS[3], -n, -1)
end
return {seq, took, entries}
`)

// publishScript publishes entries to every party, keeps them for replay and
// records the last sequence number: only if the instance holds the lease,
// so that an instance that lost it can never publish. The last message of
// a stream also frees the lease and drops the replay and the input queue.
//
// KEYS: lease, seq, replay, input, input bytes.
// ARGV: id, last seq, replay length, output channel, ends (0/1), keep ttl
// ms, entry....
// Returns 1, or 0 when the lease is not the instance's.
var publishScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local n = tonumber(ARGV[3])
if ARGV[5] == '1' then
  redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5])
elseif n > 0 then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, 7))
  redis.call('LTRIM', KEYS[3], -n, -1)
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[6])
redis.call('PUBLISH', ARGV[4], table.concat(ARGV, '', 7))
return 1
`)

// leaveScript takes the instance out of the stream: its presence, and the
// lease if it holds it; the leader hears of it.
//
// KEYS: lease, present.
// ARGV: id, input channel.
var leaveScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
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
// ARGV: id, most inputs.
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
