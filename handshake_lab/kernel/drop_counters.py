"""The kernel's counters of SYNs dropped by a full accept queue, from /proc/net/netstat.

`parse_listen_counters` is pure: the file's text in, the two counters out, so it is tested on
fixture text. `listen_counters` is the thin reader. The file holds pairs of lines, a header
of names then a line of values, each starting with its group ("TcpExt:"); ListenOverflows
and ListenDrops are TcpExt counters (LINUX_MIB_LISTENOVERFLOWS, LINUX_MIB_LISTENDROPS in
include/uapi/linux/snmp.h). Any user may read them. They count for the whole network
namespace, so compare a before with an after: other programs can only make them grow more.
"""

from __future__ import annotations

#: The TcpExt counters that count SYNs dropped because a listener's accept queue was full.
LISTEN_COUNTERS = ("ListenOverflows", "ListenDrops")

NETSTAT_PATH = "/proc/net/netstat"


def parse_listen_counters(text: str) -> dict[str, int] | None:
    """{'ListenOverflows': n, 'ListenDrops': n} from the text of /proc/net/netstat.

    None when the text has no TcpExt header and values, or they lack either counter.
    """
    lines = [line.split() for line in text.splitlines() if line.startswith("TcpExt:")]
    if len(lines) < 2:
        return None
    values = dict(zip(lines[0][1:], lines[1][1:], strict=False))
    if not all(name in values for name in LISTEN_COUNTERS):
        return None
    return {name: int(values[name]) for name in LISTEN_COUNTERS}


def listen_counters(path: str = NETSTAT_PATH) -> dict[str, int] | None:
    """This namespace's ListenOverflows and ListenDrops now; None where the system has none."""
    try:
        with open(path, encoding="ascii") as file:
            text = file.read()
    except OSError:
        return None
    return parse_listen_counters(text)
