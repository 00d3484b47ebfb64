"""The client's IP address, trusting `X-Forwarded-For` only as far as the configured proxies.

Behind no proxy (the default) the client is the socket's peer, `REMOTE_ADDR`, and a forged
`X-Forwarded-For` changes nothing. Behind proxies, say how many (`TRUSTED_PROXY_COUNT`: each
appends the address it received from, so the client is that many hops left of the peer) or
which networks they live in (`TRUSTED_PROXIES`, CIDRs: addresses are walked from the peer
leftwards while they belong to a trusted proxy; the first one that does not is the client).
Rate limits, sign-in lockouts, anonymous idempotency keys and the `/metrics` allow-list all ask here.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def address_in(address: str, cidrs) -> bool:
    """Whether `address` belongs to one of `cidrs` (False for anything that is not an IP address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(cidrs)))


def client_ip(request) -> str:
    """The address of whoever sent `request` (a Django or DRF request)."""
    meta = request.META
    peer = meta.get("REMOTE_ADDR") or "unknown"
    proxy_count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
    trusted = tuple(getattr(settings, "TRUSTED_PROXIES", ()))
    if not proxy_count and not trusted:
        return peer
    forwarded = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    chain = [*forwarded, peer]
    if trusted:
        for hop in reversed(chain):
            if not address_in(hop, trusted):
                return hop
        return chain[0]
    return chain[max(0, len(chain) - 1 - proxy_count)]


def client_ip_address(request) -> str | None:
    """`client_ip` where only a real address will do (django-axes stores it in an IP address column):
    None for a request that came from no socket, such as a management command's signed-in client."""
    address = client_ip(request)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return address
