"""Which `Host` and `Origin` headers the HTTP transport accepts (DNS-rebinding protection).

The SDK's defaults for loopback use port wildcards (`http://127.0.0.1:*`) matched by string prefix, which let
`http://127.0.0.1:8765.evil.example` through, and for any other bind address it allows nothing that a real
client sends. Here every allowed value is exact: each address the server is reachable at, with its port,
written the way clients write it. Binding to all interfaces (`0.0.0.0`, `::`) allows every address of this
machine; names a proxy or DNS puts in front come from `--allow-host`.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from mcp.server.transport_security import TransportSecuritySettings

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")


def _bracket(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def machine_addresses() -> set[str]:
    """Every address and name this machine answers to (loopback included)."""
    found = set(LOOPBACK)
    name = socket.gethostname()
    found |= {name, socket.getfqdn()}
    try:
        found |= {str(info[4][0]).split("%")[0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        pass
    # Interface addresses from the kernel's tables (Linux); other systems rely on the lookups above.
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        found |= {lines[i - 1].split()[-1] for i, line in enumerate(lines) if "/32 host LOCAL" in line and i}
    except OSError:
        pass
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.add(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    except (OSError, ValueError, IndexError):
        pass
    return {f for f in found if f}


def security_settings(host: str, port: int, extra_hosts: list[str] | None = None) -> TransportSecuritySettings:
    """Exact allowed `Host` values (`addr:port`) and `Origin` values (`http://addr:port`)."""
    if host in WILDCARD:
        names = machine_addresses()
    elif host in LOOPBACK:
        names = set(LOOPBACK)
    else:
        names = {host}
    names |= set(extra_hosts or [])
    hosts = sorted(f"{_bracket(n)}:{port}" for n in names)
    origins = sorted(f"{scheme}://{h}" for h in hosts for scheme in ("http", "https"))
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)
