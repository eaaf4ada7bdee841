"""Token buckets: what a rate means, and where its state is shared.

A plain token bucket refilling at R with room for B tokens lets B + R requests through in a
one-second window, above R; shrinking B to keep under R loses every token a moment with no
sender waiting would have used. A channel's ``rate`` is a promise to its provider that no
second ever carries more than R requests, so two limits are kept together:

- a token bucket (room for 10% of R, refilled at R) smooths the flow, so an idle channel's
  first second is not one burst;
- a log of the grants of the last ``window`` (1.02 s) caps them at R. Whole tokens are
  granted, so no one-second window of grants holds more than R, and none of requests either
  while each leaves within 20 ms of its grant (the 2% guard); a steady stream gets R / 1.02,
  98% of R. (Below one message a second the window is stretched to one message per 1/R.)
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from redis import Redis

from alertd.settings import Settings

# Share of the rate the bucket may hold: a pause of up to 100 ms with no sender asking is
# made up for, not lost.
BURST_FRACTION = 0.1
# The window is this much longer than a second: the time a request may take to leave after
# its grant without its second carrying more than R.
GUARD = 0.02
REDIS_PREFIX = "alertd:limiter:"


@dataclass(frozen=True)
class Shape:
    """The limits that keep a channel at or under ``rate`` messages per second: a bucket of
    ``burst`` tokens refilled at ``refill``, and at most ``cap`` grants in any ``window``."""

    burst: float
    refill: float
    cap: int
    window: float

    @classmethod
    def for_rate(cls, rate: float) -> Shape:
        if not rate > 0:
            raise ValueError(f"a rate must be above 0 messages per second, got {rate!r}")
        cap = max(1, math.floor(rate))
        return cls(
            burst=max(1.0, math.floor(rate * BURST_FRACTION)),
            refill=float(rate),
            cap=cap,
            window=max(1.0, cap / rate) * (1 + GUARD),
        )


@dataclass(frozen=True)
class Grant:
    """``granted`` tokens may be spent now; ``wait`` seconds from now, more are likely (the
    rest, up to a burst), unless another worker takes them first. ``wait`` is 0 when every
    token asked for was granted."""

    granted: int
    wait: float


@dataclass
class State:
    """A bucket's shared state: its tokens at ``at``, and the grants ``(time, count)`` still
    inside the window, oldest first."""

    tokens: float
    at: float
    log: list[tuple[float, int]] = field(default_factory=list)


def take_tokens(
    state: State | None, now: float, shape: Shape, wanted: int
) -> tuple[int, float, State]:
    """The bucket's arithmetic, the same as the Lua script's: (granted, wait, new state)."""
    if state is None:
        state = State(shape.burst, now)
    tokens = state.tokens
    if now > state.at:  # A clock stepped back refills nothing.
        tokens = min(shape.burst, tokens + (now - state.at) * shape.refill)
    # A grant leaves the window ``window`` seconds after it was made.
    log = [(t, c) for t, c in state.log if t > now - shape.window]
    used = sum(c for _, c in log)
    granted = max(0, min(wanted, math.floor(tokens), shape.cap - used))
    if granted:
        tokens -= granted
        used += granted
        log.append((now, granted))
    wait = 0.0
    if granted < wanted:
        need = min(wanted - granted, shape.burst)
        wait = max(0.0, (need - tokens) / shape.refill)
        # ...and until enough of the oldest grants have left the window.
        short = need - (shape.cap - used)
        for t, c in log:
            if short <= 0:
                break
            short -= c
            wait = max(wait, t + shape.window - now)
    return granted, wait, State(tokens, now, log)


class Bucket(Protocol):
    def take(self, key: str, shape: Shape, wanted: int) -> Grant:
        """Atomically grant up to ``wanted`` tokens of the bucket ``key``."""
        ...


# KEYS[1]: the bucket's hash (tokens, at, used), KEYS[2]: its log of grants (a sorted set
# scored by time, members "n:count"). ARGV: refill, burst, cap, window, wanted. Returns
# {granted, wait in microseconds}. The clock is Redis' own (TIME), so workers whose clocks
# disagree share one bucket fairly. Numbers go to Redis as "%.6f" strings: Lua's tostring keeps
# 14 digits, which would round a Unix time to 10 ms.
REDIS_SCRIPT = """
local refill = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local wanted = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'used', 'n')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
local used = tonumber(state[3]) or 0
local n = tonumber(state[4]) or 0
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * refill)
end
local horizon = string.format('%.6f', now - window)
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', horizon)) do
  used = used - tonumber(string.match(member, ':(%d+)$'))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', horizon)
if used < 0 then used = 0 end
local granted = math.min(wanted, math.floor(tokens), cap - used)
if granted < 0 then granted = 0 end
if granted > 0 then
  tokens = tokens - granted
  used = used + granted
  n = n + 1
  redis.call('ZADD', KEYS[2], string.format('%.6f', now), n .. ':' .. granted)
end
local wait = 0
if granted < wanted then
  local need = math.min(wanted - granted, burst)
  wait = (need - tokens) / refill
  if wait < 0 then wait = 0 end
  local short = need - (cap - used)
  if short > 0 then
    local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
    for i = 1, #entries, 2 do
      if short <= 0 then break end
      short = short - tonumber(string.match(entries[i], ':(%d+)$'))
      wait = math.max(wait, tonumber(entries[i + 1]) + window - now)
    end
  end
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'at', string.format('%.6f', now), 'used', used, 'n', n)
-- An idle bucket is full and its window empty after this: its keys may go then.
local ttl = math.ceil((window + burst / refill) * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {granted, math.ceil(wait * 1000000)}
"""


class RedisBucket:
    """The bucket as a Redis hash, changed only by one Lua script, so every worker on every
    machine takes from the same tokens atomically."""

    def __init__(self, client: Redis[bytes]) -> None:
        self.client = client
        self._script = client.register_script(REDIS_SCRIPT)

    @classmethod
    def from_url(cls, url: str, timeout: float = 2.0) -> RedisBucket:
        return cls(Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout))

    def take(self, key: str, shape: Shape, wanted: int) -> Grant:
        args = [repr(shape.refill), repr(shape.burst), shape.cap, repr(shape.window), wanted]
        granted, wait_us = self._script(
            keys=[f"{REDIS_PREFIX}{key}", f"{REDIS_PREFIX}{key}:log"], args=args
        )
        return Grant(int(granted), int(wait_us) / 1_000_000)


class FileBucket:
    """The bucket on the embedded default, where every worker is a process of one machine: a
    small JSON file per channel in the instance folder, read and rewritten under ``flock``.

    Chosen over a row in the SQLite database because that database's write lock is what the
    fan-out's own transactions queue on: a take would wait behind a sub-batch's record step,
    and the wait would land between the grant and the send. A file lock is held for well under
    a millisecond and by nothing else. The machine's wall clock is shared by its processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def _fd(self, key: str) -> int:
        # One descriptor per process: a descriptor inherited across fork shares its lock with
        # the parent, and flock would then exclude nobody.
        index = (os.getpid(), key)
        if index not in self._files:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)
            self._files[index] = os.open(self.directory / f"{name}.bucket", os.O_RDWR | os.O_CREAT)
        return self._files[index]

    def take(self, key: str, shape: Shape, wanted: int) -> Grant:
        with self._lock:
            fd = self._fd(key)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                state = _load(os.pread(fd, 1 << 20, 0))
                granted, wait, state = take_tokens(state, time.time(), shape, wanted)
                raw = json.dumps([state.tokens, state.at, state.log]).encode()
                os.pwrite(fd, raw, 0)
                os.ftruncate(fd, len(raw))
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return Grant(granted, wait)


def _load(raw: bytes) -> State | None:
    try:
        tokens, at, log = json.loads(raw)
        return State(float(tokens), float(at), [(float(t), int(c)) for t, c in log])
    except (ValueError, TypeError):
        return None  # A new (empty) file: the bucket starts full.


_BUCKETS: dict[tuple[str, str], Bucket] = {}


def bucket_for(settings: Settings) -> Bucket:
    """The shared bucket for this deployment, one per process and broker."""
    index = (settings.broker_url, str(settings.instance_path))
    if index not in _BUCKETS:
        url = settings.broker_url
        if settings.embedded_broker:
            _BUCKETS[index] = FileBucket(settings.instance_path / "limiter")
        elif url.startswith(("redis://", "rediss://", "unix://")):
            _BUCKETS[index] = RedisBucket.from_url(url, max(settings.PUBLISH_TIMEOUT_SECONDS, 1.0))
        else:
            raise ValueError(
                f"a channel rate needs a Redis broker or the embedded default, not {url!r}"
            )
    return _BUCKETS[index]
