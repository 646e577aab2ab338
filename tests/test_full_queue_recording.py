"""Notebook 04's full accept queue: the recording shipped for macOS and Windows, and a live run.

The recording must show what the notebook says Linux does (client 3 waits in SYN-SENT while
the queue of listen(1) holds 2, and connects after accept()), and it must say it is one. The
live run waits for two real kernel timers: the first SYN retransmission (1 s) and the next
one, which gets through once accept() has made room (about 2 s after the first SYN).
"""

from __future__ import annotations

import sys

import pytest

from handshake_lab import platforms
from handshake_lab.capture.full_queue_recording import full_queue_recording, run_full_queue


def check_full_queue(recording, retransmissions_ns) -> None:
    states = recording.states_of("client 3")  # then CLOSE: the clients close while recorded
    assert states[:2] == ["SYN_SENT", "ESTABLISHED"], recording.as_text()
    queue = recording.queue_lengths()
    assert max(queue) == 2 and 1 in queue, queue  # listen(1) held 1 + 1; accept() took one
    (spent,) = [
        span
        for span in recording.state_spans()
        if span.lane == "client 3" and span.state.linux_name == "SYN_SENT"
    ]
    (retry,) = retransmissions_ns
    assert spent.start_ns < retry < spent.end_ns, (spent, retry)


def test_the_shipped_recording_shows_the_wait_and_says_it_is_a_recording(monkeypatch):
    monkeypatch.setenv(platforms.SWITCH, "darwin")
    recorded = full_queue_recording()
    check_full_queue(recorded.recording, recorded.retransmissions_ns)
    assert recorded.label.startswith("macOS (simulated on Linux) cannot show the accept queue")
    assert "a recording made by this lab's own tool on" in recorded.label, recorded.label
    assert "--record" in recorded.label


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the experiment is Linux's")
def test_a_live_run_records_what_the_recording_shows():
    recording, retransmissions_ns = run_full_queue()
    check_full_queue(recording, retransmissions_ns)


def test_its_figure_as_notebook_04_draws_it_has_no_overlapping_text():
    from figure_recordings import overlapping_texts

    from handshake_lab.show.queue_plot import plot_accept_queue

    recorded = full_queue_recording()
    artists = plot_accept_queue(
        recorded.recording,
        client="client 3",
        retransmissions_ns=recorded.retransmissions_ns,
        title="On Linux, recorded: two clients fill the accept queue of listen(1)",
    )
    assert overlapping_texts(artists.figure) == ([], [])
