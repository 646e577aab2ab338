"""The kernel's TcpExt counters, from /proc/net/netstat: those of SYNs dropped by a full
accept queue, and any other by name (`tcpext`).

`parse_tcpext` and `parse_listen_counters` are pure (the file's text in, counters out), so
they are tested on fixture text; `tcpext` and `listen_counters` are the thin readers. The
file holds pairs of lines, a header of names then a line of values, each starting with its
group ("TcpExt:"); ListenOverflows and ListenDrops are TcpExt counters
(LINUX_MIB_LISTENOVERFLOWS, LINUX_MIB_LISTENDROPS in include/uapi/linux/snmp.h). Any user
may read them. They count for the whole network namespace, so compare a before with an
after: other programs can only make them grow more.
"""

from __future__ import annotations

#: The TcpExt counters that count SYNs dropped because a listener's accept queue was full.
LISTEN_COUNTERS = ("ListenOverflows", "ListenDrops")

NETSTAT_PATH = "/proc/net/netstat"


def parse_tcpext(text: str) -> dict[str, int]:
    """Every TcpExt counter in the text of /proc/net/netstat ({} when it has none)."""
    lines = [line.split() for line in text.splitlines() if line.startswith("TcpExt:")]
    if len(lines) < 2:
        return {}
    return {name: int(value) for name, value in zip(lines[0][1:], lines[1][1:], strict=False)}


def tcpext(path: str = NETSTAT_PATH) -> dict[str, int]:
    """This namespace's TcpExt counters now ({} where the system has none)."""
    try:
        with open(path, encoding="ascii") as file:
            return parse_tcpext(file.read())
    except OSError:
        return {}


def parse_listen_counters(text: str) -> dict[str, int] | None:
    """{'ListenOverflows': n, 'ListenDrops': n} from the text of /proc/net/netstat.

    None when the text has no TcpExt header and values, or they lack either counter.
    """
    return _listen_counters_of(parse_tcpext(text))


def listen_counters(path: str = NETSTAT_PATH) -> dict[str, int] | None:
    """This namespace's ListenOverflows and ListenDrops now; None where the system has none."""
    return _listen_counters_of(tcpext(path))


def _listen_counters_of(values: dict[str, int]) -> dict[str, int] | None:
    if not all(name in values for name in LISTEN_COUNTERS):
        return None
    return {name: values[name] for name in LISTEN_COUNTERS}
