"""Distributed deep RL on Ray: A3C, DPPO, IMPALA (V-trace), Ape-X. Each algorithm is one page; what
they share (their config, the env runner actors, segments) is in `common`; the Ray engine itself
(session, supervised actor pools, weight broadcasts) is `ascent.cluster`, below every family."""
