"""Token buckets: what a rate means, and where its state is shared.

A channel's ``rate`` is a promise to its provider that no second ever carries more than R
requests, counted when they arrive there. A request arrives somewhere between its grant and its
answer, so a grant is logged from the moment it is made until ``window`` (a second and a small
guard) after its answer came back, and the log never holds more than R. Whatever arrival times
the provider sees, any one-second window of them lies within that span of every request in it:
no second carries more than R, however late a request leaves or slowly it is answered. A
steady stream of requests answered at once gets about R / 1.005; requests slow to answer lower
the pace by their latency, which is the price of the promise.

A token bucket (room for 10% of R, refilled at R) in front of the log smooths the flow, so an
idle channel's first second is not one burst of R.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from redis import Redis

from alertd.settings import Settings

# Share of the rate the bucket may hold: a pause of up to 100 ms with no sender asking is
# made up for, not lost.
BURST_FRACTION = 0.1
# The window is this much longer than a second: rounding of the clocks, nothing more.
GUARD = 0.005
# A grant whose answer is never reported (its worker died) leaves the log this long after it
# was made: longer than any channel's request may take.
HOLD_SECONDS = 60.0
REDIS_PREFIX = "alertd:limiter:"


@dataclass(frozen=True)
class Shape:
    """The limits that keep a channel at or under ``rate`` messages per second: a bucket of
    ``burst`` tokens refilled at ``refill``, and at most ``cap`` requests granted in any
    ``window``, each counted from its grant until ``window`` after its answer."""

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
            # Below one message a second: one message per 1/R.
            window=max(1.0, cap / rate) * (1 + GUARD),
        )


@dataclass(frozen=True)
class Grant:
    """``granted`` tokens may be spent now; give ``ticket`` back to ``release`` once their
    requests are answered. ``wait`` seconds from now, more are likely (the rest, up to a
    quarter of a burst; when the log is full, as many as its oldest grant held), unless another
    worker takes them first; 0 when every token asked for was granted."""

    granted: int
    wait: float
    ticket: str = ""


@dataclass
class State:
    """A bucket's shared state: its tokens at ``at``, and the grants ``[until, count, ticket]``
    still counted, where ``until`` is when the grant was answered (or, while in flight, when it
    is given up on): it leaves the log ``window`` after that."""

    tokens: float
    at: float
    log: list[tuple[float, int, str]] = field(default_factory=list)
    serial: int = 0


def take_tokens(state: State | None, now: float, shape: Shape, wanted: int) -> tuple[Grant, State]:
    """The bucket's arithmetic, the same as the Lua script's."""
    if state is None:
        state = State(shape.burst, now)
    tokens = state.tokens
    if now > state.at:  # A clock stepped back refills nothing.
        tokens = min(shape.burst, tokens + (now - state.at) * shape.refill)
    log = [entry for entry in state.log if entry[0] > now - shape.window]
    used = sum(count for _, count, _ in log)
    granted = max(0, min(wanted, math.floor(tokens), shape.cap - used))
    ticket, serial = "", state.serial
    if granted:
        tokens -= granted
        used += granted
        serial += 1
        ticket = f"{serial}:{granted}"
        log.append((now + HOLD_SECONDS, granted, ticket))
    wait = 0.0
    if granted < wanted:
        # Wake for a quarter of a burst, not a whole one: a bucket left to fill up while its
        # takers sleep loses every token past full.
        need = min(wanted - granted, max(1, math.floor(shape.burst / 4)))
        wait = max(0.0, (need - tokens) / shape.refill)
        if used >= shape.cap:
            # ...and, when the log is full, until its oldest grant leaves (one still in flight
            # leaves no sooner than a window from now), not until a quarter of a burst has:
            # a place in the log is not kept like a token, and every moment it stays free is
            # a request no window can carry any more.
            oldest = min(until for until, _, _ in log)
            wait = max(wait, min(oldest, now) + shape.window - now)
    return Grant(granted, wait, ticket), State(tokens, now, log, serial)


def release_tokens(state: State, now: float, ticket: str) -> State:
    """The grant ``ticket`` was answered ``now``: it leaves the log a window from now."""
    log = [(min(now, until), c, t) if t == ticket else (until, c, t) for until, c, t in state.log]
    return State(state.tokens, state.at, log, state.serial)


class Bucket(Protocol):
    def take(self, key: str, shape: Shape, wanted: int) -> Grant:
        """Atomically grant up to ``wanted`` tokens of the bucket ``key``."""
        ...

    def release(self, key: str, ticket: str) -> None:
        """The requests of the grant ``ticket`` have been answered."""
        ...


# KEYS[1]: the bucket's hash (tokens, at, used, n), KEYS[2]: its log of grants (a sorted set
# scored by when each leaves: answered or given up on; members "n:count"). ARGV: refill, burst,
# cap, window, wanted, hold. Returns {granted, wait in microseconds, ticket}. The clock is
# Redis' own (TIME), so workers whose clocks disagree share one bucket fairly. Numbers go to
# Redis as "%.6f" strings: Lua's tostring keeps 14 digits, which would round a Unix time to
# 10 ms.
REDIS_TAKE = """
local refill = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local wanted = tonumber(ARGV[5])
local hold = tonumber(ARGV[6])
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
local ticket = ''
if granted > 0 then
  tokens = tokens - granted
  used = used + granted
  n = n + 1
  ticket = n .. ':' .. granted
  redis.call('ZADD', KEYS[2], string.format('%.6f', now + hold), ticket)
end
local wait = 0
if granted < wanted then
  local need = math.min(wanted - granted, math.max(1, math.floor(burst / 4)))
  wait = (need - tokens) / refill
  if wait < 0 then wait = 0 end
  if used >= cap then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    if #oldest == 2 then
      wait = math.max(wait, math.min(tonumber(oldest[2]), now) + window - now)
    end
  end
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'at', string.format('%.6f', now), 'used', used, 'n', n)
-- An idle bucket is full and its log empty after this: its keys may go then.
local ttl = math.ceil((hold + window + burst / refill) * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {granted, math.ceil(wait * 1000000), ticket}
"""

# KEYS[2]: the log; ARGV[1]: the ticket answered now. A ticket already gone is left gone.
REDIS_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local leaves = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]))
if leaves ~= nil and now < leaves then
  redis.call('ZADD', KEYS[2], 'XX', string.format('%.6f', now), ARGV[1])
end
return 1
"""


class RedisBucket:
    """The bucket as a Redis hash and sorted set, changed only by two Lua scripts, so every
    worker on every machine takes from the same tokens atomically."""

    def __init__(self, client: Redis[bytes]) -> None:
        self.client = client
        self._take = client.register_script(REDIS_TAKE)
        self._release = client.register_script(REDIS_RELEASE)

    @classmethod
    def from_url(cls, url: str, timeout: float = 2.0) -> RedisBucket:
        return cls(Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout))

    @staticmethod
    def _keys(key: str) -> list[str]:
        # One hash tag for both keys: a script's keys must live on one node of a cluster.
        return [f"{REDIS_PREFIX}{{{key}}}", f"{REDIS_PREFIX}{{{key}}}:log"]

    def take(self, key: str, shape: Shape, wanted: int) -> Grant:
        args = [
            repr(shape.refill),
            repr(shape.burst),
            shape.cap,
            repr(shape.window),
            wanted,
            repr(HOLD_SECONDS),
        ]
        granted, wait_us, ticket = self._take(keys=self._keys(key), args=args)
        return Grant(int(granted), int(wait_us) / 1_000_000, ticket.decode())

    def release(self, key: str, ticket: str) -> None:
        self._release(keys=self._keys(key), args=[ticket])


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
        with self._locked(key) as (state, save):
            grant, state = take_tokens(state, time.time(), shape, wanted)
            save(state)
        return grant

    def release(self, key: str, ticket: str) -> None:
        # Answered now, not once the lock is ours: time spent waiting for the other worker's
        # take would only keep the grant's place in the log longer.
        answered = time.time()
        with self._locked(key) as (state, save):
            if state is not None:
                save(release_tokens(state, answered, ticket))

    @contextmanager
    def _locked(self, key: str) -> Iterator[tuple[State | None, Callable[[State], None]]]:
        with self._lock:
            fd = self._fd(key)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:

                def save(state: State) -> None:
                    raw = json.dumps([state.tokens, state.at, state.log, state.serial]).encode()
                    os.pwrite(fd, raw, 0)
                    os.ftruncate(fd, len(raw))

                yield _load(os.pread(fd, 1 << 20, 0)), save
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


def _load(raw: bytes) -> State | None:
    try:
        tokens, at, log, serial = json.loads(raw)
        entries = [(float(u), int(c), str(t)) for u, c, t in log]
        return State(float(tokens), float(at), entries, int(serial))
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
