"""The benchmark behind docs/commands.md's performance promises, run against the in-repo fakes on loopback.

    .venv/bin/python -m bench            # the full run (about 7 minutes on 2 cores)
    .venv/bin/python -m bench --quick    # a small sanity run (about 3.5 minutes)

Modules: `quota` (credit reservations, overspend), `polling` (the bot's poll schedule against fixed 2 s and
5 s pollers), `latency` (the real bot process under 0–1,000 jobs in flight: first response, success → upload,
loop lag, CPU, memory), `memory` (a 100 MB delivery), `postgres` (a gateway and a worker on PostgreSQL at
1,000 jobs in flight, takeover after SIGKILL, admissions per second with 1–4 processes; `admit_process` is one
of those processes), `report` (the table). See docs/performance.md.
"""
