"""The /etc/hosts and /etc/resolv.conf a step sees, generated per step as BuildKit does.

They are bind-mounted from files outside the rootfs, so the image's own copies stay
untouched and nothing the step writes to them reaches its layer.
"""

from __future__ import annotations

from pathlib import Path

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
# systemd-resolved keeps the real upstream servers here when /etc/resolv.conf names its stub.
RESOLVED_UPSTREAM_CONF = Path("/run/systemd/resolve/resolv.conf")
# What Docker and BuildKit fall back to when the host has no server usable from a netns.
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844")


def hosts_content(hostname: str) -> str:
    """Loopback names plus the step's hostname."""
    return (
        f"127.0.0.1\tlocalhost {hostname}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "ff00::0\tip6-mcastprefix\n"
        "ff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
    )


def _is_loopback_nameserver(line: str) -> bool:
    fields = line.split()
    return len(fields) >= 2 and fields[0] == "nameserver" and fields[1].startswith(("127.", "::1"))


def resolv_conf_content(host_resolv_conf: str, *, host_network: bool) -> str:
    """The host's resolver config, fit for the step's network.

    With the host's network it is used as is. In a network namespace of its own a loopback
    nameserver (a local stub resolver) is unreachable, so such lines are dropped, and when
    no server is left the public fallback servers are listed, as Docker does.
    """
    if host_network:
        return host_resolv_conf
    kept = [line for line in host_resolv_conf.splitlines() if not _is_loopback_nameserver(line)]
    if not any(line.split()[:1] == ["nameserver"] for line in kept):
        kept.extend(f"nameserver {server}" for server in FALLBACK_NAMESERVERS)
    return "\n".join(kept) + "\n"


def read_host_resolv_conf() -> str:
    """The host's resolver config; the systemd-resolved upstream list when /etc names its stub."""
    try:
        text = HOST_RESOLV_CONF.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    if "nameserver 127.0.0.53" in text:
        try:
            return RESOLVED_UPSTREAM_CONF.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return text
    return text
