"""Who is asking: the client's address, taken from X-Forwarded-For only through the proxies settings name
(TRUSTED_PROXIES). Lock-outs, logs and the login page's lock all count by this one address."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(names: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(name.strip(), strict=False) for name in names if name.strip())


def _address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """One hop of a forwarded chain: a bare address, [v6]:port or v4:port; None for anything else."""
    raw = raw.strip()
    if raw.startswith("[") and "]" in raw:
        raw = raw[1 : raw.index("]")]
    elif raw.count(":") == 1:
        raw = raw.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_address(request: Any) -> str:
    """The address of whoever sent the request. Without trusted proxies this is the connection's peer,
    whatever X-Forwarded-For says (anyone can send that header). When the peer is a trusted proxy, the
    chain is read from the right, past every trusted proxy, to the first address no trusted proxy is:
    the hops left of it were written by the client and prove nothing. A chain of nothing but trusted
    proxies gives its leftmost address; a malformed hop stops the walk at the last good one."""
    meta = getattr(request, "META", {})
    peer = _address(str(meta.get("REMOTE_ADDR") or ""))
    if peer is None:
        return "unknown"
    if not _trusted(peer):
        return str(peer)
    chain = [hop for field in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if (hop := field.strip())]
    found = peer
    for hop in reversed(chain):
        address = _address(hop)
        if address is None:
            break
        found = address
        if not _trusted(address):
            break
    return str(found)


def client_ip(request: Any) -> str | None:
    """The same address for django-axes (AXES_CLIENT_IP_CALLABLE), which stores it in an address column:
    None, not "unknown", for a request without a peer address (an in-process request, a test client)."""
    address = client_address(request)
    return None if address == "unknown" else address
