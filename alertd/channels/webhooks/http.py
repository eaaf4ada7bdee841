"""One request to a checked address: connect and read timeouts, no redirects, a cap on how much
of the answer is read (a huge or never-ending body costs at most that and one deadline)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import urllib3
from urllib3.exceptions import HTTPError

from alertd.channels.webhooks.ssrf import Target


@dataclass(frozen=True)
class Limits:
    connect_seconds: float
    read_seconds: float
    # The whole exchange, body included, ends by then: a body that trickles forever is cut.
    total_seconds: float
    max_body_bytes: int
    # CA bundle for TLS verification; None trusts the system's store (tests pass their own CA).
    ca_certs: str | None = None


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (refused, timed out, reset)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    latency_ms: int = 0
    # The request may have reached the receiver although no answer came (read timeout, reset
    # after sending): a platform without idempotency keys may then have acted on it.
    maybe_received: bool = False


def request(
    target: Target,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    limits: Limits,
    *,
    path: str | None = None,
    fields: dict[str, tuple[str, bytes, str] | str] | None = None,
) -> Answer:
    """Try each checked address in turn until one connects; never resolve the name again."""
    started = time.monotonic()
    error = "no address to connect to"
    for address in target.addresses:
        pool = _pool(target, address, limits)
        try:
            return _exchange(pool, target, method, body, headers, limits, path, fields, started)
        except urllib3.exceptions.NewConnectionError as exc:
            error = f"cannot connect to {address}: {exc.__class__.__name__}"
        except urllib3.exceptions.ConnectTimeoutError as exc:
            return Answer(None, error=_describe(exc), latency_ms=_ms(started))
        except (HTTPError, OSError) as exc:
            return Answer(None, error=_describe(exc), latency_ms=_ms(started), maybe_received=True)
        finally:
            pool.close()
    return Answer(None, error=error, latency_ms=_ms(started))


def _pool(target: Target, address: str, limits: Limits) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=limits.connect_seconds, read=limits.read_seconds)
    if target.scheme == "https":
        # Connect to the checked address; TLS still sees (SNI) and verifies the real host name.
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=limits.ca_certs,
        )
    return urllib3.HTTPConnectionPool(
        address, target.port, timeout=timeout, retries=False, maxsize=1
    )


def _exchange(
    pool: urllib3.HTTPConnectionPool,
    target: Target,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    limits: Limits,
    path: str | None,
    fields: dict[str, tuple[str, bytes, str] | str] | None,
    started: float,
) -> Answer:
    headers = {**headers, "Host": target.host_header}
    url = path or target.path
    if fields is not None:
        encoded, content_type = urllib3.encode_multipart_formdata(fields)
        body, headers["Content-Type"] = encoded, content_type
    response = pool.urlopen(
        method,
        url,
        body=body,
        headers=headers,
        redirect=False,
        retries=False,
        preload_content=False,
        assert_same_host=False,
    )
    try:
        data = bytearray()
        deadline = started + limits.total_seconds
        while len(data) < limits.max_body_bytes and time.monotonic() < deadline:
            chunk = response.read(min(16_384, limits.max_body_bytes - len(data)))
            if not chunk:
                break
            data += chunk
    except (HTTPError, OSError) as exc:
        # The status arrived; a body cut short does not change what the status says.
        return Answer(response.status, bytes(data), dict(response.headers), _describe(exc))
    finally:
        # Never drain the rest: close the connection on whatever is left unread.
        response.close()
    return Answer(response.status, bytes(data), dict(response.headers), latency_ms=_ms(started))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return "timed out waiting for the answer"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return "timed out connecting"
    return f"{exc.__class__.__name__}: {str(exc)[:300]}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
