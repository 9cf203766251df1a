"""The cluster's keys and Lua scripts, and ``ScriptRunner``, which calls them by SHA.

Every write that must not come from a stale owner runs as one Lua script that first compares
the writer's fencing token with the stream's fence key, so the check and the write are atomic
in Redis (Kleppmann's fencing token, checked by the store itself; research note §1.3, §3).
Leases are ``SET NX PX`` keys whose value is the holder's member id; one ``RENEW`` call
renews all of an instance's leases *and* its membership heartbeat, so the two always expire
together (§4.5). Scripts are loaded once (``SCRIPT LOAD``) and called with ``EVALSHA``; after
a Redis restart or ``SCRIPT FLUSH`` the ``NOSCRIPT`` reply reloads them and the call is
repeated (redis-py's ``Script`` object would send ``SCRIPT EXISTS`` on every pipeline; §2).

Keys (``P`` is ``cluster.key_prefix``): ``P members`` (ZSET member -> expiry, server ms) and
per stream ``P {stream}:lease``, ``:fence`` (INCR counter), ``:ckpt`` (HASH: ``last``,
``recent`` JSON, ``window`` flag, ``token``, ``owner``, ``at``, ``holder``, ``released``)
and ``:sink:<sink>`` (ZSET of ``id\\n<digest>`` written by a ``redis_streams`` sink).
A single Redis (or a primary with replicas) is assumed: the per-stream keys share a hash tag,
but scripts also touch the shared members key, so Redis Cluster is not supported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACQUIRE",
    "ALL",
    "RELEASE",
    "RENEW",
    "SAVE",
    "SURVEY",
    "Arg",
    "Call",
    "Keys",
    "Script",
    "ScriptRunner",
]

Arg = str | int | float | bytes


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script and its SHA-1 (the name ``EVALSHA`` knows it by)."""

    name: str
    text: str

    @property
    def sha(self) -> str:
        """SHA-1 of the text, hex."""
        return hashlib.sha1(self.text.encode()).hexdigest()


Call = tuple[Script, Sequence[str], Sequence[Arg]]
"""One script call: the script, its keys, its arguments."""


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix."""

    prefix: str

    @property
    def members(self) -> str:
        """ZSET: member id -> heartbeat expiry (server ms)."""
        return f"{self.prefix}members"

    def _stream(self, stream: str, what: str) -> str:
        return f"{self.prefix}{{{stream}}}:{what}"

    def lease(self, stream: str) -> str:
        """String: the holder's member id, with the lease TTL."""
        return self._stream(stream, "lease")

    def fence(self, stream: str) -> str:
        """Counter: the newest fencing token."""
        return self._stream(stream, "fence")

    def ckpt(self, stream: str) -> str:
        """HASH: the checkpoint and who holds or held the stream."""
        return self._stream(stream, "ckpt")

    def sink_window(self, stream: str, sink: str) -> str:
        """ZSET: the ids ``sink`` wrote for ``stream`` (dedup window)."""
        return self._stream(stream, f"sink:{sink}")


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

RENEW = Script(
    "renew",
    # KEYS: members, lease...   ARGV: member, ttl_ms   -> {now_ms, 1|0 per lease}
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local out = {now}
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
""",
)

SURVEY = Script(
    "survey",
    # KEYS: members, lease...   -> {now_ms, {member, expiry_ms, ...}, {holder or '' per lease}}
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local owners = {}
for i = 2, #KEYS do
  owners[i - 1] = redis.call('GET', KEYS[i]) or ''
end
return {now, live, owners}
""",
)

ACQUIRE = Script(
    "acquire",
    # KEYS: lease, fence, ckpt[, sink window]   ARGV: member, ttl_ms, recent_n
    # -> false | {token, 'new'|'handoff'|'failover', has_last, last, recent_json,
    #             window_flag, {window members, oldest first}}
    """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local token = redis.call('INCR', KEYS[2])
local c = redis.call('HMGET', KEYS[3], 'holder', 'released', 'last', 'recent', 'window')
local kind = 'new'
if c[1] then
  if c[2] == '1' then kind = 'handoff' else kind = 'failover' end
end
redis.call('HSET', KEYS[3], 'holder', ARGV[1], 'released', '0')
local tail = {}
local n = tonumber(ARGV[3])
if #KEYS >= 4 and n > 0 then tail = redis.call('ZRANGE', KEYS[4], -n, -1) end
local has_last = 0
if c[3] then has_last = 1 end
return {token, kind, has_last, c[3] or '', c[4] or '', c[5] or '0', tail}
""",
)

RELEASE = Script(
    "release",
    # KEYS: lease1, ckpt1, lease2, ckpt2, ...   ARGV: member   -> {1|0 per lease}
    """
local out = {}
for i = 1, #KEYS, 2 do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    redis.call('HSET', KEYS[i + 1], 'released', '1')
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
""",
)

SAVE = Script(
    "save",
    # KEYS: fence1, ckpt1, ...   ARGV: member, then per stream: token, has_last, last,
    # recent_json, at   -> {1-based index of each stream whose token was stale}
    """
local fenced = {}
for i = 1, #KEYS / 2 do
  local a = 1 + (i - 1) * 5
  local fence, ckpt = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('GET', fence) ~= ARGV[a + 1] then
    fenced[#fenced + 1] = i
  else
    if ARGV[a + 2] == '1' then
      redis.call('HSET', ckpt, 'last', ARGV[a + 3])
    else
      redis.call('HDEL', ckpt, 'last')
    end
    redis.call('HSET', ckpt, 'recent', ARGV[a + 4], 'at', ARGV[a + 5], 'token', ARGV[a + 1],
               'owner', ARGV[1], 'window', '0')
  end
end
return fenced
""",
)

ALL = (RENEW, SURVEY, ACQUIRE, RELEASE, SAVE)
"""The lease and checkpoint scripts (the sink's are in ``sink_scripts``)."""


class ScriptRunner:
    """Calls the scripts on one redis-py client by SHA, loading them when Redis lacks them.

    Args:
        client: a ``redis.Redis`` (``decode_responses=True``).
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def load(self, scripts: Iterable[Script] = ALL) -> None:
        """``SCRIPT LOAD`` scripts (at start; a script Redis lacks later is loaded on use)."""
        for script in scripts:
            self.client.script_load(script.text)

    def call(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run one script; reload and repeat once on ``NOSCRIPT``.

        Raises:
            redis.RedisError: the call failed (connection, timeout, script error).
        """
        from redis.exceptions import NoScriptError

        try:
            return self.client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.load([script])
            return self.client.evalsha(script.sha, len(keys), *keys, *args)

    def call_many(self, calls: Sequence[Call]) -> list[Any]:
        """Run several scripts in one pipelined round trip (not a transaction).

        Returns:
            One result per call, in order; a call that failed gives its exception as the
            value (the caller decides), except ``NOSCRIPT``, which is reloaded and repeated.

        Raises:
            redis.ConnectionError, redis.TimeoutError: the round trip itself failed.
        """

        return self._reload_missing(list(calls), self._pipeline(calls))

    def call_streamed(self, calls: Iterable[Call]) -> list[Any]:
        """Like ``call_many``, but each call is sent as soon as ``calls`` yields it, so Redis
        runs one call while the caller builds the next; the replies are read at the end.

        Raises:
            redis.ConnectionError, redis.TimeoutError: the connection failed (the
            connection is dropped; some calls may have run).
        """
        from redis.exceptions import ResponseError

        pool = self.client.connection_pool
        conn = pool.get_connection()
        sent: list[Call] = []
        results: list[Any] = []
        try:
            for script, keys, args in calls:
                conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
                sent.append((script, keys, args))
            for _ in sent:
                try:
                    results.append(conn.read_response())
                except ResponseError as exc:  # an error reply; the next replies still follow
                    results.append(exc)
        except BaseException:
            conn.disconnect()  # replies may be left unread: never reuse this connection
            raise
        finally:
            pool.release(conn)
        return self._reload_missing(sent, results)

    def _reload_missing(self, calls: Sequence[Call], results: list[Any]) -> list[Any]:
        """Load the scripts a NOSCRIPT reply named and run those calls again."""
        from redis.exceptions import NoScriptError

        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            self.load({calls[i][0] for i in missing})
            again = self._pipeline([calls[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return list(pipe.execute(raise_on_error=False))
