"""What idle connections cost the two echo servers, measured on real sockets."""

from __future__ import annotations

import subprocess
import sys

import pytest

from handshake_lab.net.echo_servers import SelectorEchoServer, ThreadPerConnectionEchoServer
from handshake_lab.net.idle_cost import default_thread_stack, measure_idle_connections

pytestmark = pytest.mark.kernel


def test_a_thread_per_connection_server_holds_a_thread_per_idle_connection():
    cost = measure_idle_connections(ThreadPerConnectionEchoServer, connections=20)
    assert cost.threads_added >= 20, cost
    assert "20 idle connections" in str(cost)


def test_a_selectors_server_holds_idle_connections_in_its_one_thread():
    cost = measure_idle_connections(SelectorEchoServer, connections=20)
    assert cost.threads_added <= 1, cost


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory from /proc/self/status")
def test_each_idle_thread_reserves_most_of_its_stack_of_address_space():
    # glibc keeps the stacks of finished threads (up to 40 MiB) and gives them to new ones,
    # so the growth per thread can be less than a whole stack, never much less.
    stack = default_thread_stack()
    threads = measure_idle_connections(ThreadPerConnectionEchoServer, connections=20)
    selector = measure_idle_connections(SelectorEchoServer, connections=20)
    per_thread = threads.per_connection(threads.address_space_added)
    assert per_thread > 10 * max(1, selector.per_connection(selector.address_space_added)), (
        threads,
        selector,
    )
    if stack is not None:
        assert per_thread >= 0.5 * stack, (threads, stack)


# A child process whose address space leaves room for about ten more threads' stacks (RLIMIT_AS,
# as a memory-capped host may set), with glibc's malloc kept to one arena so that only the
# stacks fill it.
CAPPED = """
import ctypes, resource
ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX
from handshake_lab.net.echo_servers import ThreadPerConnectionEchoServer
from handshake_lab.net.idle_cost import default_thread_stack, measure_idle_connections
with open("/proc/self/status", encoding="ascii") as status:
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
_soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (size + 10 * default_thread_stack() + 2**25, hard))
try:
    measure_idle_connections(ThreadPerConnectionEchoServer, connections=50)
except Exception as error:
    print(f"{type(error).__name__}: {error}")
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not default_thread_stack(),
    reason="RLIMIT_AS, mallopt and a known stack size as on Linux with glibc",
)
def test_a_server_that_cannot_start_a_thread_says_so_not_that_a_client_timed_out():
    result = subprocess.run(
        [sys.executable, "-c", CAPPED], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("RuntimeError: ThreadPerConnectionEchoServer stopped"), result
    assert "can't start new thread" in result.stdout and "of 50" in result.stdout, result


@pytest.mark.parametrize("connections", [0, 501, 2.5, True, "10"])
def test_a_bad_count_says_what_to_pass(connections):
    with pytest.raises(ValueError, match="connections"):
        measure_idle_connections(SelectorEchoServer, connections=connections)
