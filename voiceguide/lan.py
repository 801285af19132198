"""How a phone on the same network reaches this computer: its LAN addresses, and a QR code of a URL.

The addresses are read from the network interfaces (psutil: getifaddrs on POSIX,
GetAdaptersAddresses on Windows), which sends nothing on any network: no DNS lookup of the
host name, and no socket connected toward an outside address to see which route the system picks.
"""

from __future__ import annotations

import io
import ipaddress
import socket

import psutil
import segno

# Interfaces to containers, virtual machines and VPNs: a phone on the Wi-Fi cannot reach these.
VIRTUAL_PREFIXES = ("docker", "br-", "veth", "virbr", "vmnet", "vboxnet", "lxc", "lxd", "podman", "cni", "tun", "tap",
                    "utun", "wg", "tailscale", "zt")  # fmt: skip


def lan_addresses() -> list[str]:
    """This computer's IPv4 addresses on the networks it is up on, likeliest for a phone first.

    Loopback and link-local addresses are left out; private addresses on physical interfaces
    come first, then other private ones (a VPN's), then public ones.
    """
    stats = psutil.net_if_stats()
    found = []
    for name, addresses in psutil.net_if_addrs().items():
        if name in stats and not stats[name].isup:
            continue
        for address in addresses:
            if address.family != socket.AF_INET:
                continue
            ip = ipaddress.IPv4Address(address.address)
            if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
                continue
            found.append((not ip.is_private, name.lower().startswith(VIRTUAL_PREFIXES), str(ip)))
    return [ip for *_, ip in sorted(found, key=lambda item: item[:2])]


def qr_code(text: str) -> str:
    """A QR code of `text` for a terminal, in half blocks (two rows of modules a line), light on dark."""
    out = io.StringIO()
    segno.make(text, error="m", micro=False).terminal(out=out, compact=True, border=2)
    return out.getvalue()
