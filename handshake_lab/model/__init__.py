"""The pure core: TCP states, addresses, segments, pcap files, the TCP model and its replay.

``states`` names the states; ``packets`` decodes frames into ``Segment``s; ``pcap`` reads and
writes capture files; ``tcp_rules`` is the transition table and Linux's overlays, ``tcp_model``
runs them for two ends joined in a ``Connection``;
``replay`` holds captured segments up against the model; ``sequence_numbers`` picks out and
shows the handshake's seq and ack; ``tcp_options`` says what each option of a SYN is for;
``syn_retries`` is the kernel's rule for SYN retransmissions.

Layer rule: no sockets, threads or clock here, and no import from any other layer of the
package; everything else builds on it.
"""
