"""The only module that posts alerts out: it vets a webhook's address (the name resolved, refused if any
address it resolves to is inside: loopback, private, link-local, a cloud's metadata service…) and posts to
the very address it vetted — no second DNS lookup to race — following no redirect. No database here."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ProtocolError, ReadTimeoutError, SSLError

from core.exceptions import BadRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Named for the message; most are caught by the ranges anyway (link-local, shared or unique-local space).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle…
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # a public-looking IPv6 address carrying an IPv4 one
ALLOW_HINT = "ALERT_WEBHOOK_ALLOW_PRIVATE=true allows it"
ERROR_TEXT_LIMIT = 300  # of a failed answer's body, kept on the attempt


class WebhookRefused(BadRequest):
    code = "invalid_webhook"


@dataclass(frozen=True)
class Target:
    """A vetted webhook: where to connect (`addresses`, all checked) and what to ask for there (`host`
    goes in the Host header and is the name TLS checks the certificate against)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Delivery:
    """One post: the answer's status (None without one), the address connected to, what went wrong."""

    status: int | None
    address: str
    error: str
    duration_ms: float
    retryable: bool

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _inside(address: Address) -> str | None:
    """Why an address is not a public one (None if it is). An IPv6 address carrying an IPv4 one
    (IPv4-mapped, 6to4, Teredo, NAT64) is judged by the IPv4 address it carries too."""
    candidates: list[Address] = []
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if carried is None and address in NAT64:
            carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if carried is not None:
            candidates.append(carried)
    candidates.append(address)
    for ip in candidates:
        carries = f" (it carries {ip})" if ip is not address else ""
        if ip in METADATA:
            return f"a cloud metadata address{carries}"
        for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
            if getattr(ip, f"is_{kind}"):
                return f"a {kind.replace('_', '-')} address{carries}"
        if not ip.is_global:
            return f"not a public address{carries}"
    return None


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise WebhookRefused(f"the webhook's host {host!r} does not resolve ({exc})") from None
    addresses = tuple(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))
    if not addresses:
        raise WebhookRefused(f"the webhook's host {host!r} does not resolve")
    return addresses


def target_check(url: str, *, allow_private: bool) -> Target:
    """The webhook `url` vetted now: http or https, no user name or password in it, a host that resolves
    (an IP address is taken as it is) and — unless `allow_private` — to public addresses only, every one
    of them. Raises WebhookRefused (400 invalid_webhook) naming why."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookRefused(f"the webhook {url!r} is not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookRefused(f"a webhook is an http or https URL, not {scheme or 'schemeless'!r}")
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused("a webhook's URL may not carry a user name or password (user:password@)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookRefused(f"the webhook {url!r} names no host")
    port = port or (443 if scheme == "https" else 80)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise WebhookRefused(f"the webhook's host {host!r} is not a valid host name ({exc})") from None
    addresses = (str(literal),) if literal is not None else _resolve(host, port)
    if not allow_private:
        for address in addresses:
            why = _inside(ipaddress.ip_address(address.split("%")[0]))
            if why is None:
                continue
            if literal is not None:
                raise WebhookRefused(f"the webhook's address {address} is {why} ({ALLOW_HINT})")
            raise WebhookRefused(f"the webhook's host {host!r} resolves to {address}, {why} ({ALLOW_HINT})")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, addresses=addresses)


def _pool(
    target: Target, address: str, timeout: urllib3.Timeout, ca_bundle: str
) -> urllib3.HTTPConnectionPool:
    """A one-connection pool whose socket goes to `address` (a literal: nothing to resolve) while TLS
    sends the name as SNI and checks the certificate against it."""
    if target.scheme == "http":
        return urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False, maxsize=1)
    named = target.host != address
    return urllib3.HTTPSConnectionPool(
        address, target.port, timeout=timeout, retries=False, maxsize=1, cert_reqs="CERT_REQUIRED",
        ca_certs=ca_bundle or None, server_hostname=target.host if named else None,
        assert_hostname=target.host if named else None,
    )  # fmt: skip


def post(
    target: Target,
    body: dict[str, Any],
    *,
    connect_timeout: float,
    read_timeout: float,
    ca_bundle: str = "",
    delivery: str = "",
    attempt: int = 1,
) -> Delivery:
    """POST `body` as JSON to the vetted target, trying its addresses in order until one takes the
    connection. A 3xx answer is returned as it is (never followed). Retryable: no connection, a timeout,
    a dropped connection, 5xx and 429 — not a refused certificate nor any other answer. Delivery is at
    least once: `X-Cvcp-Delivery` is the same on every attempt of one change, for the receiver to drop
    repeats, and `X-Cvcp-Attempt` counts them."""
    payload = json.dumps(body).encode()
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": "cvcp-alert-webhook/1",
        "X-Cvcp-Delivery": delivery,
        "X-Cvcp-Attempt": str(attempt),
    }
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
    started = time.monotonic()
    address, error, retryable = "", "", True

    def took() -> float:
        return round((time.monotonic() - started) * 1000, 1)

    for address in target.addresses:
        pool = _pool(target, address, timeout, ca_bundle)
        try:
            response = pool.urlopen(
                "POST", target.path, body=payload, headers=headers, retries=False, redirect=False,
                assert_same_host=False, preload_content=False,
            )  # fmt: skip
            try:
                text = response.read(ERROR_TEXT_LIMIT, decode_content=True) if response.status >= 300 else b""
            finally:
                response.release_conn()
        except (SSLError, ReadTimeoutError, ProtocolError) as exc:  # connected: the next address won't differ
            error, retryable = f"{type(exc).__name__}: {exc}", not isinstance(exc, SSLError)
            break
        except ConnectTimeoutError as exc:  # (NewConnectionError is one) the next address, if any
            error = f"{type(exc).__name__}: {exc}"
            continue
        except HTTPError as exc:
            error, retryable = f"{type(exc).__name__}: {exc}", False
            break
        finally:
            pool.close()
        status = response.status
        if 200 <= status < 300:
            return Delivery(status, address, "", took(), retryable=False)
        location = response.headers.get("Location", "")
        detail = f"redirect to {location!r}, not followed" if 300 <= status < 400 else ""
        detail = detail or text.decode("utf-8", "replace").strip()
        error = f"HTTP {status} {response.reason or ''}".strip() + (f": {detail}" if detail else "")
        return Delivery(status, address, error, took(), retryable=status >= 500 or status == 429)
    return Delivery(None, address, error, took(), retryable=retryable)
