"""What a Recording computes from its events: pure, no sockets, no clock."""

from __future__ import annotations

from handshake_lab.record.events import Event, Recording


def test_queue_lengths_read_the_recorders_detail_of_listen_events():
    events = [Event(1, "state", "listener", "LISTEN", detail="queue 0/128"),
              Event(2, "call", "listener", "accept()", actor="server", detail="queue 9/9"),
              Event(3, "state", "client", "ESTABLISHED"),
              Event(4, "state", "listener", "LISTEN", detail="queue 3/128"),
              Event(5, "state", "listener 2", "LISTEN", detail="queue 7/128"),
              Event(6, "state", "listener", "LISTEN"),
              Event(7, "state", "listener", "CLOSE", detail="queue 5/128")]
    recording = Recording.from_events(events, 0, 8)
    assert recording.queue_lengths() == [0, 3]
    assert recording.queue_lengths("listener 2") == [7]
    assert recording.queue_lengths("client") == []
