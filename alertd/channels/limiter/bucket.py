"""Token buckets: what a rate means, and where its state is shared.

A plain token bucket refilling at R with room for B tokens lets B + R requests through in a
one-second window, above R. A channel's ``rate`` is a promise to its provider that no second
ever carries more than R requests, so the bucket is shaped below R: it holds at most ``burst``
(1% of R, at least one token) and refills at ``refill`` (98% of R, less the burst beyond one
token). Whole tokens are granted, so a window of one second grants at most
``floor(burst + refill)`` <= R, with a few tokens of slack for the moments between a grant and
the request leaving; a steady stream still gets about 97% of R.
"""

from __future__ import annotations

import fcntl
import math
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from redis import Redis

from alertd.settings import Settings

# Share of the rate the bucket may hold, so an idle channel's first second is not a burst.
BURST_FRACTION = 0.01
# Share of the rate kept back for the time between a grant and its request leaving.
HEADROOM = 0.02
REDIS_PREFIX = "alertd:limiter:"


@dataclass(frozen=True)
class Shape:
    """The bucket that keeps a channel at or under ``rate`` messages per second."""

    burst: float
    refill: float

    @classmethod
    def for_rate(cls, rate: float) -> Shape:
        if not rate > 0:
            raise ValueError(f"a rate must be above 0 messages per second, got {rate!r}")
        burst = max(1.0, math.floor(rate * BURST_FRACTION))
        return cls(burst=burst, refill=rate * (1 - HEADROOM) - (burst - 1))


@dataclass(frozen=True)
class Grant:
    """``granted`` tokens may be spent now; ``wait`` seconds from now, more are likely (the
    rest, up to a burst), unless another worker takes them first. ``wait`` is 0 when every
    token asked for was granted."""

    granted: int
    wait: float


def take_tokens(
    tokens: float, elapsed: float, shape: Shape, wanted: int
) -> tuple[int, float, float]:
    """The bucket's arithmetic, the same as the Lua script's: (granted, tokens left, wait)."""
    tokens = min(shape.burst, tokens + max(0.0, elapsed) * shape.refill)
    granted = max(0, min(wanted, math.floor(tokens)))
    tokens -= granted
    wait = 0.0
    if granted < wanted:
        wait = max(0.0, (min(wanted - granted, shape.burst) - tokens) / shape.refill)
    return granted, tokens, wait


class Bucket(Protocol):
    def take(self, key: str, shape: Shape, wanted: int) -> Grant:
        """Atomically grant up to ``wanted`` tokens of the bucket ``key``."""
        ...


# KEYS[1]: the bucket. ARGV: refill per second, burst, tokens wanted. Returns {granted, wait in
# microseconds}. The clock is Redis' own (TIME), so workers whose clocks disagree still share
# one bucket fairly. Numbers are kept as "%.6f" strings: Lua's tostring keeps 14 digits, which
# would round a Unix time to 10 ms.
REDIS_SCRIPT = """
local refill = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * refill)
end
local granted = math.min(wanted, math.floor(tokens))
if granted < 0 then granted = 0 end
tokens = tokens - granted
local wait = 0
if granted < wanted then
  wait = (math.min(wanted - granted, burst) - tokens) / refill
  if wait < 0 then wait = 0 end
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'at', string.format('%.6f', now))
-- An idle bucket is full again after burst / refill seconds: its key may go then.
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / refill * 1000) + 1000)
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
        granted, wait_us = self._script(
            keys=[REDIS_PREFIX + key], args=[repr(shape.refill), repr(shape.burst), wanted]
        )
        return Grant(int(granted), int(wait_us) / 1_000_000)


_STATE = struct.Struct("<dd")  # tokens, Unix time of the last take


class FileBucket:
    """The bucket on the embedded default, where every worker is a process of one machine: a
    16-byte file per channel in the instance folder, read and written under ``flock``.

    Chosen over a row in the SQLite database because that database's write lock is what the
    fan-out's own transactions queue on: a take would wait behind a sub-batch's record step,
    and the wait would land between the grant and the send. A file lock is held for a few
    microseconds and by nothing else. The machine's wall clock is shared by its processes; a
    clock stepped back grants nothing extra (the refill is never negative)."""

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
                raw = os.pread(fd, _STATE.size, 0)
                now = time.time()
                tokens, at = _STATE.unpack(raw) if len(raw) == _STATE.size else (shape.burst, now)
                granted, left, wait = take_tokens(tokens, now - at, shape, wanted)
                os.pwrite(fd, _STATE.pack(left, now), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return Grant(granted, wait)


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
