"""handshake_lab: watch the TCP three-way handshake happen in the real kernel, from Python.

`import handshake_lab` stays light: the names below are loaded on first use, so matplotlib
and ipywidgets are imported only by the plots and widgets that need them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # model: pure, no I/O
    "TcpState": "model.states",
    "Segment": "model.packets",
    "write_pcap": "model.pcap",
    "read_pcap": "model.pcap",
    "Connection": "model.tcp_model",
    "expected_handshake": "model.tcp_model",
    "check_handshake": "model.replay",
    "narrate": "model.tcp_model",
    "handshake_of": "model.sequence_numbers",
    "sequence_table": "model.sequence_numbers",
    "ack_relations": "model.sequence_numbers",
    "describe_options": "model.tcp_options",
    "check_option_answers": "model.tcp_options",
    "options_table": "model.tcp_options",
    # kernel: reading states without privileges
    "tcp_sockets": "kernel.lookup",
    "parse_tcp_table": "kernel.proc_tcp",
    "find_rows": "kernel.proc_tcp",
    "format_rows": "kernel.proc_tcp",
    "connection_state": "kernel.lookup",
    "wait_for_state": "kernel.lookup",
    "socket_state": "kernel.lookup",
    "accept_queue": "kernel.tcp_info",
    "wait_for_syn_retransmit": "kernel.tcp_info",
    "kernel_settings": "kernel.sysctls",
    "describe_syn_retries": "kernel.sysctls",
    "syn_retry_gaps": "kernel.sysctls",
    "syn_retry_schedule": "kernel.sysctls",
    "listen_counters": "kernel.drop_counters",
    "listener_queue_view": "kernel.listener_view",
    "saved_syn": "kernel.saved_syn",
    "segment_counts": "kernel.segment_counts",
    "isn_clock": "net.syn_experiments",
    "measure_syn_retries": "net.syn_retry_measurement",
    "time_wait_reuse": "net.syn_experiments",
    # net: loopback sockets and servers
    "LoopbackServer": "net.server",
    "connect": "net.clients",
    "start_connect": "net.clients",
    "finish_connect": "net.clients",
    "send": "net.clients",
    "receive": "net.clients",
    "close": "net.clients",
    "ThreadPerConnectionEchoServer": "net.echo_servers",
    "SelectorEchoServer": "net.echo_servers",
    "echo_on_ready": "net.echo_servers",
    "measure_connections_per_second": "net.load_test",
    "time_wait_rows": "net.load_test",
    "measure_idle_connections": "net.idle_cost",
    "default_thread_stack": "net.idle_cost",
    "measure_fin_wait_1": "net.fin_wait_1",
    "close_behind_full_windows": "net.fin_behind_full_window",
    # record: the timeline
    "Recorder": "record.recorder",
    "Recording": "record.events",
    "Event": "record.events",
    # capture: real packets, in tiers
    "capture_handshake": "capture.tiers",
    "load_shipped_capture": "capture.shipped",
    "listen_queue_experiments": "capture.listen_queue_evidence",
    "full_queue_recording": "capture.full_queue_recording",
    "refuse_connection": "capture.refusal",
    "reset_on_close": "capture.resets",
    "state_at": "capture.evidence",
    "Tier": "capture.evidence",
    "simultaneous_close": "capture.simultaneous_close",
    # stepper: one real socket call per step
    "Stepper": "stepper.engine",
    "SCENARIOS": "stepper.scenarios",
    # show: figures and widgets (matplotlib and ipywidgets are imported when one is used)
    "plot_timeline": "show.timeline_plot",
    "plot_ladder": "show.ladder_plot",
    "plot_accept_queue": "show.queue_plot",
    "StepperWidget": "show.stepper_widget",
    "Prediction": "show.prediction",
    # the host
    "doctor": "host",
    "what_this_machine_shows": "host",
    "FoldedDetails": "host",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'handshake_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython) -> None:
    """`%load_ext handshake_lab`: the notebooks' %%linux_only and %%not_linux cell magics."""
    from .show.platform_cells import register

    register(ipython)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
