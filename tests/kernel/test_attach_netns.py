"""The private test network: created whole, removed whole, whatever happens."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

from pykex.testing import NetworkSetupError, VethNamespace, free_subnet, namespaces
from pykex.testing import netns as netns_module

pytestmark = [pytest.mark.kernel, pytest.mark.netns]


def interface_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def is_gone(network: VethNamespace) -> bool:
    return network.namespace not in namespaces() and not interface_exists(network.host_ifname)


def test_network_is_built_and_removed() -> None:
    with VethNamespace() as network:
        assert network.namespace in namespaces()
        assert interface_exists(network.host_ifname)
        assert not interface_exists(network.peer_ifname)  # it lives in the namespace
        assert len(network.host_ifname) <= 15
        assert socket.if_nametoindex(network.host_ifname) == network.host_ifindex

        inside = network.run(["ip", "-br", "addr"]).stdout.decode()
        assert network.peer_ifname in inside and network.peer_address in inside
        assert network.host_ifname not in inside

        assert network.ping(3) == 3
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
            receiver.bind((network.host_address, 0))
            receiver.settimeout(5)
            network.send_udp(4, receiver.getsockname()[1], b"hello")
            assert [receiver.recv(64) for _ in range(4)] == [b"hello"] * 4
    assert is_gone(network)


@pytest.mark.parametrize("raised", [RuntimeError, KeyboardInterrupt])
def test_network_is_removed_when_the_block_fails(raised: type[BaseException]) -> None:
    with pytest.raises(raised), VethNamespace() as network:
        raise raised("boom")
    assert is_gone(network)


def test_half_built_network_is_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    real_ip = netns_module._ip

    def failing_late(*args: str) -> str:
        if args[-2:] == ("lo", "up"):  # after the namespace and the pair exist
            raise NetworkSetupError("injected failure")
        return real_ip(*args)

    monkeypatch.setattr(netns_module, "_ip", failing_late)
    network = VethNamespace()
    try:
        with pytest.raises(NetworkSetupError, match="injected failure"):
            network.create()
        assert is_gone(network)
    finally:
        network.remove()  # a no-op once create() cleaned up


def test_given_subnet_is_used() -> None:
    subnet = free_subnet(29)
    with VethNamespace(str(subnet)) as network:
        assert ipaddress.ip_address(network.host_address) in subnet
        assert ipaddress.ip_address(network.peer_address) in subnet
        assert network.ping(1) == 1
    with pytest.raises(ValueError, match="fewer than two"):
        VethNamespace("10.9.9.9/32")


def test_free_subnets_avoid_existing_routes() -> None:
    used = netns_module._used_networks()
    assert used  # the machine routes something (eth0's network at least)
    for _ in range(50):
        subnet = free_subnet()
        assert subnet.prefixlen == 30 and subnet.subnet_of(ipaddress.ip_network("10.0.0.0/8"))
        assert not any(subnet.overlaps(network) for network in used)


def test_failed_commands_are_reported() -> None:
    with VethNamespace() as network:
        with pytest.raises(NetworkSetupError, match="exited with 3"):
            network.run(["sh", "-c", "echo oops >&2; exit 3"])
        assert network.run(["false"], check=False).returncode == 1
