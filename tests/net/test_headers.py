"""pykex.net's headers and constants compared with the C headers, through gcc.

Two C programs (kernel UAPI headers and glibc's ``<netinet/*>``, which cannot
share a file) print ``sizeof``, every ``offsetof``, the bytes of a header
filled member by member (bitfields through C's own bitfields) and the
constants; pykex's numbers and encodings must equal them.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pykex import net
from pykex.layout import StructType

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

UAPI_INCLUDES = ["linux/if_ether.h", "linux/ip.h", "linux/ipv6.h", "linux/tcp.h",
                 "linux/udp.h", "linux/icmp.h", "linux/icmpv6.h", "linux/if_arp.h"]
LIBC_INCLUDES = ["netinet/if_ether.h", "netinet/in.h", "netinet/ip.h", "netinet/tcp.h",
                 "netinet/ip_icmp.h", "netinet/icmp6.h", "arpa/inet.h"]

# The kernel's 802.1Q tag (include/linux/if_vlan.h) is not in the UAPI headers,
# so the test declares it as the standard defines it: TCI, then the inner EtherType.
VLAN_DECLARATION = "struct vlan_hdr { __be16 h_vlan_TCI; __be16 h_vlan_encapsulated_proto; };"


@dataclass(frozen=True)
class CHeader:
    header: StructType
    c_type: str
    program: str  # "uapi" or "libc": which C program declares it
    members: dict[str, str]  # pykex field -> C member; fields that are C bitfields are absent
    fill: str  # C statements filling `h`, the same values as `value`
    value: dict[str, object] = field(default_factory=dict)


HEADERS = [
    CHeader(
        net.Ethernet, "struct ethhdr", "uapi",
        {"dst": "h_dest", "src": "h_source", "proto": "h_proto"},
        "memcpy(h.h_dest, \"\\x02\\x00\\x00\\x00\\x00\\x02\", 6);"
        "memcpy(h.h_source, \"\\x02\\x00\\x00\\x00\\x00\\x01\", 6);"
        "h.h_proto = htons(ETH_P_IPV6);",
        {"dst": [2, 0, 0, 0, 0, 2], "src": [2, 0, 0, 0, 0, 1], "proto": net.ETH_P_IPV6},
    ),
    CHeader(
        net.Vlan, "struct vlan_hdr", "uapi",
        {"tci": "h_vlan_TCI", "proto": "h_vlan_encapsulated_proto"},
        "h.h_vlan_TCI = htons(0x6123); h.h_vlan_encapsulated_proto = htons(ETH_P_IP);",
        {"tci": 0x6123, "proto": net.ETH_P_IP},
    ),
    CHeader(
        net.Arp, "struct ether_arp", "libc",
        {"hardware_type": "ea_hdr.ar_hrd", "protocol_type": "ea_hdr.ar_pro",
         "hardware_len": "ea_hdr.ar_hln", "protocol_len": "ea_hdr.ar_pln",
         "op": "ea_hdr.ar_op", "sender_mac": "arp_sha", "sender_ip": "arp_spa",
         "target_mac": "arp_tha", "target_ip": "arp_tpa"},
        "h.ea_hdr.ar_hrd = htons(ARPHRD_ETHER); h.ea_hdr.ar_pro = htons(ETHERTYPE_IP);"
        "h.ea_hdr.ar_hln = 6; h.ea_hdr.ar_pln = 4; h.ea_hdr.ar_op = htons(ARPOP_REPLY);"
        "memcpy(h.arp_sha, \"\\x02\\x00\\x00\\x00\\x00\\x01\", 6);"
        "memcpy(h.arp_spa, \"\\x0a\\x00\\x00\\x01\", 4);"
        "memcpy(h.arp_tha, \"\\x02\\x00\\x00\\x00\\x00\\x02\", 6);"
        "memcpy(h.arp_tpa, \"\\xc0\\xa8\\x01\\xfe\", 4);",
        {"hardware_type": 1, "protocol_type": 0x0800, "hardware_len": 6, "protocol_len": 4,
         "op": 2, "sender_mac": [2, 0, 0, 0, 0, 1], "sender_ip": 0x0A000001,
         "target_mac": [2, 0, 0, 0, 0, 2], "target_ip": 0xC0A801FE},
    ),
    CHeader(
        net.IPv4, "struct iphdr", "uapi",
        {"tos": "tos", "tot_len": "tot_len", "id": "id", "frag_off": "frag_off",
         "ttl": "ttl", "protocol": "protocol", "check": "check", "saddr": "saddr",
         "daddr": "daddr"},
        "h.version = 4; h.ihl = 6; h.tos = 0x10; h.tot_len = htons(1500);"
        "h.id = htons(0xBEEF); h.frag_off = htons(0x4000 | 185); h.ttl = 63;"
        "h.protocol = IPPROTO_UDP; h.check = htons(0x1234);"
        "h.saddr = htonl(0x0A000001); h.daddr = htonl(0xC0A80102);",
        {"version_ihl": 0x46, "tos": 0x10, "tot_len": 1500, "id": 0xBEEF,
         "frag_off": net.IP_DF | 185, "ttl": 63, "protocol": net.IPPROTO_UDP,
         "check": 0x1234, "saddr": 0x0A000001, "daddr": 0xC0A80102},
    ),
    CHeader(
        net.IPv6, "struct ipv6hdr", "uapi",
        {"payload_len": "payload_len", "nexthdr": "nexthdr", "hop_limit": "hop_limit",
         "saddr": "saddr", "daddr": "daddr"},
        "h.version = 6; h.priority = 0xA; h.flow_lbl[0] = 0xB1; h.flow_lbl[1] = 0x23;"
        "h.flow_lbl[2] = 0x45; h.payload_len = htons(1234); h.nexthdr = IPPROTO_TCP;"
        "h.hop_limit = 255; memset(&h.saddr, 0x11, 16); memset(&h.daddr, 0xEE, 16);",
        {"version_class_flow": 6 << 28 | 0xAB << 20 | 0x12345, "payload_len": 1234,
         "nexthdr": net.IPPROTO_TCP, "hop_limit": 255, "saddr": [0x11] * 16,
         "daddr": [0xEE] * 16},
    ),
    CHeader(
        net.TCP, "struct tcphdr", "uapi",
        {"sport": "source", "dport": "dest", "seq": "seq", "ack_seq": "ack_seq",
         "window": "window", "check": "check", "urg_ptr": "urg_ptr"},
        "h.source = htons(443); h.dest = htons(51000); h.seq = htonl(0x01020304);"
        "h.ack_seq = htonl(0xA0B0C0D0); h.doff = 8; h.syn = 1; h.ack = 1; h.cwr = 1;"
        "h.window = htons(29200); h.check = htons(0xABCD); h.urg_ptr = htons(7);",
        {"sport": 443, "dport": 51000, "seq": 0x01020304, "ack_seq": 0xA0B0C0D0,
         "data_offset": 8 << 4, "flags": net.TCP_SYN | net.TCP_ACK | net.TCP_CWR,
         "window": 29200, "check": 0xABCD, "urg_ptr": 7},
    ),
    CHeader(
        net.UDP, "struct udphdr", "uapi",
        {"sport": "source", "dport": "dest", "len": "len", "check": "check"},
        "h.source = htons(5353); h.dest = htons(53); h.len = htons(40);"
        "h.check = htons(0xFFFF);",
        {"sport": 5353, "dport": 53, "len": 40, "check": 0xFFFF},
    ),
    CHeader(
        net.ICMP, "struct icmphdr", "uapi",
        {"type": "type", "code": "code", "check": "checksum", "id": "un.echo.id",
         "sequence": "un.echo.sequence"},
        "h.type = ICMP_ECHO; h.code = 0; h.checksum = htons(0x0102);"
        "h.un.echo.id = htons(0x1234); h.un.echo.sequence = htons(9);",
        {"type": net.ICMP_ECHO, "code": 0, "check": 0x0102, "id": 0x1234, "sequence": 9},
    ),
    CHeader(
        net.ICMPv6, "struct icmp6hdr", "uapi",
        {"type": "icmp6_type", "code": "icmp6_code", "check": "icmp6_cksum",
         "id": "icmp6_dataun.u_echo.identifier", "sequence": "icmp6_dataun.u_echo.sequence"},
        "h.icmp6_type = ICMPV6_ECHO_REPLY; h.icmp6_code = 0; h.icmp6_cksum = htons(0xFEED);"
        "h.icmp6_dataun.u_echo.identifier = htons(77);"
        "h.icmp6_dataun.u_echo.sequence = htons(65535);",
        {"type": net.ICMPV6_ECHO_REPLY, "code": 0, "check": 0xFEED, "id": 77,
         "sequence": 65535},
    ),
]

# pykex.net constant -> the C expression that defines it
UAPI_CONSTANTS = {
    "ETH_P_IP": "ETH_P_IP", "ETH_P_IPV6": "ETH_P_IPV6", "ETH_P_ARP": "ETH_P_ARP",
    "ETH_P_8021Q": "ETH_P_8021Q", "ETH_P_8021AD": "ETH_P_8021AD", "ETH_ALEN": "ETH_ALEN",
    "ETH_HLEN": "ETH_HLEN", "ICMP_ECHO": "ICMP_ECHO", "ICMP_ECHOREPLY": "ICMP_ECHOREPLY",
    "ICMP_DEST_UNREACH": "ICMP_DEST_UNREACH", "ICMP_TIME_EXCEEDED": "ICMP_TIME_EXCEEDED",
    "ICMPV6_ECHO_REQUEST": "ICMPV6_ECHO_REQUEST", "ICMPV6_ECHO_REPLY": "ICMPV6_ECHO_REPLY",
    "ICMPV6_DEST_UNREACH": "ICMPV6_DEST_UNREACH", "ARPHRD_ETHER": "ARPHRD_ETHER",
    "ARPOP_REQUEST": "ARPOP_REQUEST", "ARPOP_REPLY": "ARPOP_REPLY",
}
LIBC_CONSTANTS = {
    **{name: name for name in dir(net) if name.startswith("IPPROTO_")},
    "IP_RF": "IP_RF", "IP_DF": "IP_DF", "IP_MF": "IP_MF", "IP_OFFMASK": "IP_OFFMASK",
    "TCP_FIN": "TH_FIN", "TCP_SYN": "TH_SYN", "TCP_RST": "TH_RST", "TCP_PSH": "TH_PUSH",
    "TCP_ACK": "TH_ACK", "TCP_URG": "TH_URG",
}


def c_program(kind: str) -> str:
    includes = UAPI_INCLUDES if kind == "uapi" else LIBC_INCLUDES
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <string.h>",
             "#include <arpa/inet.h>", *(f"#include <{name}>" for name in includes)]
    if kind == "uapi":
        lines.append(VLAN_DECLARATION)
    lines.append("int main(void) {")
    for spec in (s for s in HEADERS if s.program == kind):
        name = spec.header.__name__
        lines.append(f'printf("sizeof {name} %zu\\n", sizeof({spec.c_type}));')
        for pykex_field, member in spec.members.items():
            offset = f"offsetof({spec.c_type}, {member})"
            lines.append(f'printf("offsetof {name}.{pykex_field} %zu\\n", {offset});')
        lines.append(
            f"{{ {spec.c_type} h; memset(&h, 0, sizeof h); {spec.fill}"
            f' printf("bytes {name} "); for (size_t i = 0; i < sizeof h; i++)'
            ' printf("%02x", ((unsigned char *)&h)[i]); printf("\\n"); }'
        )
    constants = UAPI_CONSTANTS if kind == "uapi" else LIBC_CONSTANTS
    for name, expression in constants.items():
        lines.append(f'printf("const {name} %ld\\n", (long)({expression}));')
    lines += ["return 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def c_facts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``"sizeof IPv4" -> "20"``, ``"bytes IPv4" -> hex``, ... from both C programs."""
    facts: dict[str, str] = {}
    directory: Path = tmp_path_factory.mktemp("net_c")
    for kind in ("uapi", "libc"):
        source = directory / f"{kind}.c"
        source.write_text(c_program(kind))
        binary = directory / kind
        subprocess.run(["gcc", "-Wall", "-Werror", "-o", binary, source], check=True,
                       capture_output=True)
        output = subprocess.run([binary], check=True, capture_output=True, text=True).stdout
        for line in output.splitlines():
            what, name, value = line.split(" ")
            facts[f"{what} {name}"] = value
    return facts


@pytest.mark.parametrize("spec", HEADERS, ids=lambda spec: spec.header.__name__)
def test_size_and_offsets_equal_c(spec: CHeader, c_facts: dict[str, str]) -> None:
    name = spec.header.__name__
    assert spec.header.size == int(c_facts[f"sizeof {name}"])
    for pykex_field in spec.members:
        assert spec.header.offset_of(pykex_field) == int(
            c_facts[f"offsetof {name}.{pykex_field}"]
        ), pykex_field


@pytest.mark.parametrize("spec", HEADERS, ids=lambda spec: spec.header.__name__)
def test_encoding_equals_c(spec: CHeader, c_facts: dict[str, str]) -> None:
    """The bitfield bytes included: C fills them through its own bitfields."""
    encoded = spec.header.encode(spec.value)
    assert encoded.hex() == c_facts[f"bytes {spec.header.__name__}"]
    assert spec.header.decode(encoded) == spec.header(**spec.value)


def test_every_header_is_compared() -> None:
    compared = {spec.header for spec in HEADERS}
    declared = {value for value in vars(net).values()
                if isinstance(value, StructType) and value.__module__ == net.__name__}
    assert compared == declared


@pytest.mark.parametrize("name", [*UAPI_CONSTANTS, *LIBC_CONSTANTS])
def test_constant_equals_c(name: str, c_facts: dict[str, str]) -> None:
    assert getattr(net, name) == int(c_facts[f"const {name}"])


def test_vlan_tci_layout() -> None:
    """Priority in the top 3 bits, then the drop-eligible bit, then the 12-bit id
    (the kernel's VLAN_* masks are not UAPI, so there is no C to compare with)."""
    tci = 5 << net.VLAN_PRIO_SHIFT | 1 << 12 | 0x123
    assert tci & net.VLAN_VID_MASK == 0x123
    assert tci >> net.VLAN_PRIO_SHIFT == 5
