"""The pure core: TCP states, addresses, segments, pcap files, the TCP model and its replay.

Layer rule: no sockets, threads or clock here, and no import from any other layer of the
package; everything else builds on it.
"""
