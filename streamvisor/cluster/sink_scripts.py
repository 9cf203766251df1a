"""The ``redis_streams`` sink's Lua scripts (the sink calls them through ``ScriptRunner``).

``SINK_WRITE`` is the fenced write of cluster mode: per run of one SSE stream's events it
compares the writer's token with the stream's fence key, drops ids the sink already holds
(a window of ``id\\n<digest>`` members per stream and sink), appends the rest and, for
streams the sink alone takes, moves the checkpoint, all in one atomic call (research note
§3). ``XADD_BATCH`` is the unfenced batch outside cluster mode. Both take the events as one
JSON argument (decoded by Redis' ``cjson``): redis-py packs each argument in Python, so one
argument per chunk instead of one per field value is what makes 50k+ events/s possible
(``bench/redis_sink.py``).
"""

from __future__ import annotations

from streamvisor.cluster.scripts import Script

__all__ = ["SINK_WRITE", "XADD_BATCH"]

SINK_WRITE = Script(
    "sink_write",
    # KEYS: per part (a run of one SSE stream's events): fence, window, target stream, ckpt
    # ARGV: window_size, maxlen (0: none), member, fields (JSON list of names),
    #       parts (JSON list of [token, checkpoint 1|0, at, last or false, events]), where
    #       events is a list of [dedup member or '', values...]
    # -> per part: status (1, or -1 when fenced), added, duplicates
    # One call serves many streams: each call has a fixed cost in Redis and in the client.
    """
local fields = cjson.decode(ARGV[4])
local parts = cjson.decode(ARGV[5])
local nf = #fields
local entry = {}
for j = 1, nf do entry[2 * j - 1] = fields[j] end
local out = {}
for p, part in ipairs(parts) do
  local k = 4 * (p - 1)
  local token = tostring(part[1])
  if redis.call('GET', KEYS[k + 1]) ~= token then
    out[#out + 1] = -1; out[#out + 1] = 0; out[#out + 1] = 0
  else
    local window = KEYS[k + 2]
    local top = redis.call('ZRANGE', window, -1, -1, 'WITHSCORES')
    local seq = 0
    if top[2] then seq = tonumber(top[2]) end
    local added, dups = 0, 0
    for _, e in ipairs(part[5]) do
      local member = e[1]
      if member ~= '' and redis.call('ZSCORE', window, member) then
        dups = dups + 1
      else
        for j = 1, nf do entry[2 * j] = e[j + 1] end
        if ARGV[2] == '0' then
          redis.call('XADD', KEYS[k + 3], '*', unpack(entry))
        else
          redis.call('XADD', KEYS[k + 3], 'MAXLEN', '~', ARGV[2], '*', unpack(entry))
        end
        if member ~= '' then
          seq = seq + 1
          redis.call('ZADD', window, seq, member)
        end
        added = added + 1
      end
    end
    redis.call('ZREMRANGEBYRANK', window, 0, -(tonumber(ARGV[1]) + 1))
    if part[2] == 1 then
      if part[4] then redis.call('HSET', KEYS[k + 4], 'last', part[4]) end
      redis.call('HSET', KEYS[k + 4], 'at', part[3], 'token', token, 'owner', ARGV[3],
                 'window', '1')
    end
    out[#out + 1] = 1; out[#out + 1] = added; out[#out + 1] = dups
  end
end
return out
""",
)

XADD_BATCH = Script(
    "xadd_batch",
    # KEYS: target stream   ARGV: maxlen (0: none), idmp (1|0), fields (JSON list of names),
    #       events (JSON list of [producer or '', idempotent id or '', values...])  -> added
    # The unfenced batch of a redis_streams sink outside cluster mode: one call per chunk.
    """
local fields = cjson.decode(ARGV[3])
local events = cjson.decode(ARGV[4])
local nf = #fields
local trim = {}
if ARGV[1] ~= '0' then trim = {'MAXLEN', '~', ARGV[1]} end
local entry = {}
for j = 1, nf do entry[2 * j - 1] = fields[j] end
for _, e in ipairs(events) do
  for j = 1, nf do entry[2 * j] = e[j + 2] end
  local args = {KEYS[1]}
  if ARGV[2] == '1' and e[2] ~= '' then
    args[#args + 1] = 'IDMP'; args[#args + 1] = e[1]; args[#args + 1] = e[2]
  end
  for _, t in ipairs(trim) do args[#args + 1] = t end
  args[#args + 1] = '*'
  for _, v in ipairs(entry) do args[#args + 1] = v end
  redis.call('XADD', unpack(args))
end
return #events
""",
)
