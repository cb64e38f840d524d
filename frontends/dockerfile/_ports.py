"""EXPOSE port specs (``80``, ``8000-8002/udp``, ``127.0.0.1:80:80/tcp``) → exposed ports.

The rules are those of Docker's ``go-connections/nat.ParsePortSpecs`` that BuildKit uses:
only the container side is exposed, a range exposes every port in it, and an address part
must be an IP literal.
"""

from __future__ import annotations

import ipaddress

from builder.errors import DockerfileError

_PROTOCOLS = ("tcp", "udp", "sctp")


def _split_parts(spec: str) -> tuple[str, str, str]:
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _split_proto(container: str) -> tuple[str, str]:
    parts = container.split("/")
    if not container or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _port_range(text: str) -> tuple[int, int]:
    start_text, has_end, end_text = text.partition("-")
    start = int(start_text)
    end = int(end_text) if has_end else start
    if not (0 <= start <= 65535 and 0 <= end <= 65535) or end < start:
        raise ValueError(text)
    return start, end


def exposed_ports(spec: str) -> list[str]:
    """The ``port/proto`` keys one spec exposes; DockerfileError (no span) when invalid."""
    address, host_port, container = _split_parts(spec)
    proto, container_port = _split_proto(container)
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if address:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise DockerfileError(f"invalid IP address: {address}") from None
    if not container_port:
        raise DockerfileError(f'invalid port: "{spec}": no port specified')
    try:
        start, end = _port_range(container_port)
    except ValueError:
        raise DockerfileError(f"invalid containerPort: {container_port}") from None
    if host_port:
        try:
            _port_range(host_port)
        except ValueError:
            raise DockerfileError(f"invalid hostPort: {host_port}") from None
    if proto.lower() not in _PROTOCOLS:
        raise DockerfileError(f"invalid proto: {proto}")
    return [f"{port}/{proto.lower()}" for port in range(start, end + 1)]
