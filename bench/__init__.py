"""pykex's benchmarks: each workload written twice, idiomatic pykex and idiomatic C.

``pykex bench`` (or ``python -m bench.run`` from the repository) loads both
versions of every workload under ``workloads/``, checks that they compute
the same thing, and times them side by side with BPF_PROG_TEST_RUN. See
``docs/BENCHMARKS.md`` for the method.
"""
