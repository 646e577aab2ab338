"""Reading the kernel's TCP states without privileges, and where each state comes from.

Layer rule: thin readers (proc_tcp, tcp_info, segment_counts, sock_diag, recvmmsg,
psutil_states, sysctls, drop_counters, listener_view, saved_syn) that each ask the kernel one
way, and `lookup`, the one module that decides which state reader answers on this platform.
Imports only `model` and `timeouts`.
"""
