"""When Linux sends an unanswered SYN again, and when connect() gives up: the kernel's rule.

Pure: numbers in, a frozen `SynRetrySchedule` out; no sysctl reads, sockets or clock (the
kernel layer's `syn_retry_schedule` reads this host's settings and calls `schedule_syn_retries`).

The rule, read from torvalds/linux net/ipv4/tcp_timer.c and include/net/tcp.h:
- tcp_connect() arms the retransmit timer with TCP_TIMEOUT_INIT (1 s, include/net/tcp.h).
- Each time it fires, tcp_retransmit_timer() first asks tcp_write_timeout(). For SYN-SENT that
  gives up when either (a) icsk_retransmits >= retry_until + tcp_syn_linear_timeouts, where
  retry_until is the socket's TCP_SYNCNT or else the sysctl tcp_syn_retries, or (b)
  retransmits_timed_out(): at least one retransmission was sent and the time since the first
  SYN is >= tcp_model_timeout(retry_until, rto_base = 1 s), i.e. (2 << n) - 1 seconds while
  n <= ilog2(TCP_RTO_MAX / rto_base) = 6, plus TCP_RTO_MAX (120 s) per retry beyond that.
  Giving up is tcp_write_err(): connect() fails with ETIMEDOUT.
- Otherwise it retransmits the SYN, counts it, and in its linear-timeout branch keeps the RTO
  while the back-off count is <= tcp_syn_linear_timeouts; after that the RTO doubles, capped
  at TCP_RTO_MAX.
Kernels before tcp_syn_linear_timeouts (Linux 6.5) give up after tcp_syn_retries
retransmissions with pure doubling; pass None for them: that is the same as 0.

Times are the timers' nominal deadlines. Real timers fire a little late (the kernel's timer
wheel rounds a long timeout up), so measurements come out slightly later, most on the long
waits; callers compare with a tolerance.
"""

from __future__ import annotations

import dataclasses

#: include/net/tcp.h: the first SYN's retransmission timeout and the RTO's ceiling, in seconds.
TCP_TIMEOUT_INIT = 1.0
TCP_RTO_MAX = 120.0
#: include/net/tcp.h MAX_TCP_SYNCNT: the largest TCP_SYNCNT, tcp_syn_retries and
#: tcp_syn_linear_timeouts the kernel accepts (setsockopt and sysctl refuse more).
MAX_TCP_SYNCNT = 127


@dataclasses.dataclass(frozen=True)
class SynRetrySchedule:
    """What the kernel does with a SYN nobody answers, in seconds after the first SYN."""

    syn_retries: int
    syn_linear_timeouts: int | None
    retries_from: str  # "tcp_syn_retries" (the sysctl) or "TCP_SYNCNT" (the socket option)
    retransmissions: tuple[float, ...]
    gives_up_after: float

    def describe(self) -> str:
        """One sentence for the doctor and the notebooks."""
        if self.syn_linear_timeouts is None:
            settings = f"{self.retries_from}={self.syn_retries} (no tcp_syn_linear_timeouts here)"
        else:
            settings = (
                f"{self.retries_from}={self.syn_retries}, "
                f"tcp_syn_linear_timeouts={self.syn_linear_timeouts}"
            )
        times = ", ".join(f"{t:g}" for t in self.retransmissions)
        return (
            f"{settings}: an unanswered SYN is sent again {len(self.retransmissions)} times, "
            f"{times} s after the first, and connect() fails with ETIMEDOUT "
            f"{self.gives_up_after:g} s after it (kernel timers fire a little late, the "
            f"later ones most, never early)"
        )


def _count(name: str, value: object, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"{name} must be a whole number from {lowest} to {MAX_TCP_SYNCNT}, got {value!r}"
        )
    if not lowest <= value <= MAX_TCP_SYNCNT:
        raise ValueError(
            f"{name} must be from {lowest} to {MAX_TCP_SYNCNT} (the kernel refuses anything else), "
            f"got {value}"
        )
    return value


def _model_timeout_ms(boundary: int, rto_base_ms: int, rto_max_ms: int) -> int:
    """tcp_model_timeout(): the time `boundary` doubling retransmissions take, capped RTO."""
    linear_backoff_thresh = (rto_max_ms // rto_base_ms).bit_length() - 1  # ilog2
    if boundary <= linear_backoff_thresh:
        return ((2 << boundary) - 1) * rto_base_ms
    return ((2 << linear_backoff_thresh) - 1) * rto_base_ms + (
        boundary - linear_backoff_thresh
    ) * rto_max_ms


def schedule_syn_retries(
    syn_retries: int,
    syn_linear_timeouts: int | None,
    initial_rto: float = TCP_TIMEOUT_INIT,
    max_rto: float = TCP_RTO_MAX,
    *,
    retries_from: str = "tcp_syn_retries",
) -> SynRetrySchedule:
    """Run tcp_retransmit_timer()'s SYN-SENT rule (see the module docstring) to its end.

    `syn_retries` is TCP_SYNCNT if the socket set it, else the sysctl tcp_syn_retries;
    `syn_linear_timeouts` is the sysctl, or None on kernels without it.
    """
    if retries_from not in ("tcp_syn_retries", "TCP_SYNCNT"):
        raise ValueError(
            f"retries_from must be 'tcp_syn_retries' or 'TCP_SYNCNT', got {retries_from!r}"
        )
    _count(retries_from, syn_retries, 1)
    linear = (
        0
        if syn_linear_timeouts is None
        else _count("tcp_syn_linear_timeouts", syn_linear_timeouts, 0)
    )
    # Whole milliseconds, as the kernel counts (tcp_time_stamp and jiffies_to_msecs).
    initial_ms, max_ms = round(initial_rto * 1000), round(max_rto * 1000)
    if not 0 < initial_ms <= max_ms:
        raise ValueError(
            f"initial_rto and max_rto must be seconds with 0 < initial_rto <= max_rto, "
            f"got {initial_rto!r} and {max_rto!r} (the kernel uses 1 and 120)"
        )
    time_limit_ms = _model_timeout_ms(syn_retries, initial_ms, max_ms)
    rto_ms, now_ms, backoff, sent = initial_ms, 0, 0, []
    while True:
        now_ms += rto_ms  # the retransmit timer fires
        count_expired = len(sent) >= syn_retries + linear
        time_expired = bool(sent) and now_ms >= time_limit_ms
        if count_expired or time_expired:
            break
        sent.append(now_ms)
        backoff += 1
        if backoff > linear:
            rto_ms = min(rto_ms * 2, max_ms)
    return SynRetrySchedule(
        syn_retries=syn_retries,
        syn_linear_timeouts=syn_linear_timeouts,
        retries_from=retries_from,
        retransmissions=tuple(ms / 1000 for ms in sent),
        gives_up_after=now_ms / 1000,
    )
