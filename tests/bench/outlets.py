"""The benchmark's outlets stage (issue 14): round timings with Sentry off,
and with a DSN at an address that drops everything (each send waits for its
connect timeout on the daemon's sending thread), both while the daemon logs
an ERROR line twice a second (a refused reload), each of which is a Sentry
event. The rounds must keep their schedule: the p99 of each run and their
ratio, and the worst round, from the daemon's own "round done in X ms"
(measured from when the round was due)."""

import os
import re
import statistics
import time

from benchlib import CLEANUP, NetNs, errors_while, fakeups_config, kill, start_fakeups

STAGE = "outlets"
INTERVAL, TIMEOUT = "100ms", "50ms"
LATE_TARGET_MS = 100.0  # every round done within this of when it was due
ROUND_DONE = re.compile(r"DEBUG: round done in ([\d.]+) ms")


def run_once(args, base, name, extra, seconds):
    d = os.path.join(base, f"outlets-{name}")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    cfg = fakeups_config(d, ["127.0.0.1"], interval=INTERVAL, timeout=TIMEOUT,
                         level="debug", extra=extra)
    proc, notify = start_fakeups(args.fakeups, d, cfg)
    try:
        errors_while(proc.pid, cfg, seconds, 0.5)
        time.sleep(1)
    finally:
        kill(proc)
        notify.close()
    with open(f"{d}/log/fakeups.log") as f:
        log = f.read()
    ms = sorted(float(m.group(1)) for m in ROUND_DONE.finditer(log))
    return {
        "rounds": len(ms),
        "p50": statistics.median(ms) if ms else None,
        "p99": ms[min(len(ms) - 1, len(ms) * 99 // 100)] if ms else None,
        "max": ms[-1] if ms else None,
        "unreachable_lines": log.count("cannot send to Sentry at"),
        "errors": log.count("reload refused"),
    }


def stage(args, p, base):
    seconds = 10 if args.smoke else 60
    print(f"[{time.strftime('%H:%M:%S')}] outlets: rounds with Sentry off, then unreachable, "
          f"{seconds} s each", flush=True)
    off = run_once(args, base, "off", "", seconds)
    sink = NetNs(244)
    try:
        sink.ns("iptables", "-A", "INPUT", "-j", "DROP")
        dsn = f"http://0123456789abcdef@{sink.peer_ip}:9/1"
        on = run_once(args, base, "unreachable", f'[sentry]\ndsn = "{dsn}"\n', seconds)
    finally:
        sink.delete()
    return {"seconds": seconds, "off": off, "unreachable": on}


def report(r):
    o = r.get(STAGE)
    if not o:
        return [], []
    off, on = o["off"], o["unreachable"]
    fmt = lambda x: "-" if x is None else f"{x:.1f} ms"
    ratio = f"{on['p99'] / off['p99']:.2f}" if off["p99"] and on["p99"] else "-"
    lines = [f"### Outlets: rounds while Sentry does not answer (interval {INTERVAL}, "
             f"timeout {TIMEOUT}, {o['seconds']} s each, an ERROR event every 0.5 s)", "",
             "| | Sentry off | Sentry unreachable | unreachable / off |",
             "|---|---|---|---|",
             f"| rounds | {off['rounds']} | {on['rounds']} | |",
             f"| round done after its due time, median | {fmt(off['p50'])} | {fmt(on['p50'])} | |",
             f"| p99 | {fmt(off['p99'])} | {fmt(on['p99'])} | {ratio} |",
             f"| worst | {fmt(off['max'])} | {fmt(on['max'])} | |",
             f"| ERROR lines (Sentry events) | {off['errors']} | {on['errors']} | |",
             f"| lines saying Sentry is unreachable | {off['unreachable_lines']} | "
             f"{on['unreachable_lines']} | |", ""]
    late_ok = on["max"] is not None and on["max"] <= LATE_TARGET_MS
    targets = [(f"outlets: every round within {LATE_TARGET_MS:.0f} ms of its due time while "
                f"Sentry is unreachable", late_ok, fmt(on["max"])),
               ("outlets: Sentry's loss logged once", on["unreachable_lines"] == 1,
                str(on["unreachable_lines"]))]
    return lines, targets


__all__ = ["STAGE", "stage", "report", "CLEANUP"]
