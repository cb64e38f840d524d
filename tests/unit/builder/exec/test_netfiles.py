"""Generated /etc/hosts and /etc/resolv.conf."""

from __future__ import annotations

from builder.exec.netfiles import hosts_content, resolv_conf_content


def test_hosts_names_localhost_and_the_hostname() -> None:
    assert hosts_content("kiln").splitlines()[:2] == [
        "127.0.0.1\tlocalhost kiln",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]


def test_host_network_keeps_the_host_resolver() -> None:
    host = "nameserver 127.0.0.53\nsearch example.org\n"
    assert resolv_conf_content(host, host_network=True) == host


def test_own_network_drops_loopback_servers_and_falls_back() -> None:
    host = "nameserver 127.0.0.53\nsearch example.org\n"
    assert resolv_conf_content(host, host_network=False) == (
        "search example.org\n"
        "nameserver 8.8.8.8\n"
        "nameserver 8.8.4.4\n"
        "nameserver 2001:4860:4860::8888\n"
        "nameserver 2001:4860:4860::8844\n"
    )


def test_own_network_keeps_reachable_servers() -> None:
    host = "nameserver 10.0.0.2\nnameserver 127.0.0.1\n"
    assert resolv_conf_content(host, host_network=False) == "nameserver 10.0.0.2\n"
