"""What both transports under the SDK share: how a request is written (query string, form,
HTTP Basic), the two ways a request can fail short of an answer, and where the status and
headers of the last answer are kept (the SDK's exception drops them; a 429's Retry-After is
read from there). Also the one-text transport, over a urllib3 pool."""

from __future__ import annotations

import base64
import functools
import json
import logging
import threading
import urllib.parse
import urllib.request
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import urllib3
from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse

# Seconds to connect, and again to read the answer (the SDK takes one number for both).
READ_SECONDS = 10.0

# The status and headers of the answer this thread or task last read: a context variable is
# per thread in a thread and per task on the event loop, so no request reads another's.
ANSWER: ContextVar[tuple[int, Mapping[str, str]] | None] = ContextVar("ANSWER", default=None)


class TransportError(Exception):
    """A request that got no HTTP answer."""


class NotSent(TransportError):
    """Nothing of the request left: no connection, refused, no DNS, a TLS or proxy refusal.
    Safe to send again."""


class NoAnswer(TransportError):
    """The request left (whole or in part) and no answer came: a read timeout, a dropped
    connection, an answer that is not HTTP. The gateway may have taken it."""


def failure(exc: BaseException) -> str:
    return type(exc).__name__


def env_proxy(parts: urllib.parse.SplitResult) -> str | None:
    """The proxy the environment names for this URL's scheme, unless its host bypasses it."""
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def prepare(
    url: str,
    params: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    auth: tuple[str, str] | None,
) -> tuple[str, bytes | None, dict[str, str]]:
    """The URL, body and headers of an SDK request, as both transports send it: the query
    string appended, the form (or JSON) encoded, HTTP Basic authentication."""
    sending = dict(headers or {})
    if params:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
    body: bytes | None = None
    if data is not None:
        if sending.get("Content-Type", "").endswith("json"):
            body = json.dumps(data).encode()
        else:
            sending.setdefault("Content-Type", "application/x-www-form-urlencoded")
            body = _form(data).encode()
    if auth:
        sending["Authorization"] = _basic(auth[0], auth[1])
    return url, body, sending


@functools.lru_cache(maxsize=8)
def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# Form values already quoted: a sub-batch's texts share their body, sender and validity, and
# quoting a 160-character body byte by byte was most of the encoding's cost. Emptied when
# full (the numbers and callback URLs, one per text, fill it).
_QUOTED: dict[str, str] = {}
_QUOTED_MAX = 4096


def _quoted(value: str) -> str:
    quoted = _QUOTED.get(value)
    if quoted is None:
        if len(_QUOTED) >= _QUOTED_MAX:
            _QUOTED.clear()
        quoted = _QUOTED[value] = urllib.parse.quote_plus(value)
    return quoted


def _form(data: Mapping[str, Any]) -> str:
    """``urllib.parse.urlencode(data, doseq=True)``, with strings and numbers quoted once."""
    pairs = []
    for key, value in data.items():
        if isinstance(key, str) and isinstance(value, (str, int, float)):
            pairs.append(f"{_quoted(key)}={_quoted(str(value))}")
        else:
            pairs.append(urllib.parse.urlencode({key: value}, doseq=True))
    return "&".join(pair for pair in pairs if pair)


# The twilio package is untyped (see the mypy override in pyproject.toml).
class PooledClient(HttpClient):  # type: ignore[misc]
    """The transport under the official SDK (its documented ``http_client`` hook) for one
    text at a time, from the calling thread, and for anything sent through a proxy: the SDK
    still builds every request and reads every answer; this carries them over one urllib3
    connection pool per process, as wide as our concurrency, with connections kept alive and
    no retry of its own.

    Not the SDK's own ``TwilioHttpClient``, for two things measured or found wrong with it:
    it keeps the last answer on the client and returns it from there, so two threads at once
    could each read the other's answer (a 429 taken for a 201); and through ``requests`` it
    re-reads every proxy variable of the environment per request. Together with ``requests``'
    own work that was 0.69 ms of CPU per text against 0.3 ms here, on this machine. Proxies are
    read from the environment once."""

    def __init__(self, pool: int, timeout: float) -> None:
        super().__init__(logger=logging.getLogger(__name__), is_async=False, timeout=timeout)
        self._pool = pool
        self._managers: dict[str, urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def _manager(self, url: str) -> urllib3.PoolManager:
        parts = urllib.parse.urlsplit(url)
        with self._lock:
            if parts.scheme not in self._managers:
                options: dict[str, Any] = {
                    "num_pools": 4,
                    "maxsize": self._pool,
                    "retries": False,
                    "timeout": urllib3.Timeout(connect=self.timeout, read=self.timeout),
                }
                proxy = env_proxy(parts)
                self._managers[parts.scheme] = (
                    urllib3.ProxyManager(proxy, **options)
                    if proxy
                    else urllib3.PoolManager(**options)
                )
            return self._managers[parts.scheme]

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        url, body, sending = prepare(url, params, data, headers, auth)
        # The SDK names no timeout of its own: urllib3 takes None for no timeout at all, so a
        # hung gateway held the request for as long as it kept the connection open.
        wait = timeout or self.timeout
        try:
            answer = self._manager(url).request(
                method.upper(),
                url,
                body=body,
                headers=sending,
                redirect=allow_redirects,
                timeout=urllib3.Timeout(connect=wait, read=wait),
            )
        except (
            urllib3.exceptions.ConnectTimeoutError,  # NewConnectionError too: refused, no DNS
            urllib3.exceptions.SSLError,
            urllib3.exceptions.ProxyError,
        ) as exc:
            raise NotSent(failure(exc)) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise NoAnswer(failure(exc)) from exc
        ANSWER.set((answer.status, answer.headers))
        return TwilioResponse(
            int(answer.status), answer.data.decode("utf-8", "replace"), answer.headers
        )
