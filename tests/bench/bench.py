#!/usr/bin/python3
"""The fakeups benchmark (issue 5): fakeups against the Python loop it
replaces (baseline.py), on real ICMP in network namespaces and a real upsd.
Run it through run.sh, which builds the binaries, installs what is missing
and cleans up after a hard kill:

    sudo tests/bench/run.sh            # the full run, about 55 minutes (loss: 42)
    sudo tests/bench/run.sh --smoke    # 2 trials, 10 sentinels, short stages

Stages:
 1. latency    cut the sentinel (ICMP dropped in its namespace), time until
               upsd serves OB; restore, time until OL. fakeups and the
               baseline at once, each with its own namespace and upsd;
               fakeups restarted a random 0-1 s before each trial.
 2. footprint  each alone for the same time on the same 3 sentinels at a
               1 s interval: peak RSS and CPU of the process tree, wake-ups.
 3. scale      fakeups alone with 10, 100, 1000 sentinels at 1 s: CPU per
               round, round durations (perf), RSS, answers received.
 4. size       stripped binaries (amd64, arm64 when built), the .deb.
 5. loss       one sentinel whose namespace drops echo requests at random
               (30 % and 50 %, 20 minutes each): false OB per hour, then the
               OB latency of a real cut (its link down) at each level. With
               --before OLD, that binary runs beside this one, at once.
 6. crash, control, disk: faults of issue 11, an older build (--before)
               beside this one; see faults.py.

Prints one markdown report (machine, tables, targets) and writes it, with
the raw figures as JSON, next to --out.
"""

import argparse
import concurrent.futures
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CLEANUP, STOP, FileWatch, NetNs, Nut, SentryReceiver, Tree,  # noqa: E402
                      UpsdWatch, cpu_ns, errors_while, fakeups_config, kill, pause,
                      perf_rounds, sh, spawn,
                      start_fakeups, status_field)
import faults  # noqa: E402
import outlets  # noqa: E402

STAGES = "latency,footprint,scale,size,loss," + ",".join(faults.STAGES) + ",outlets"

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1024 * 1024
UPS_NAMES = ["fakeups", "qnapups", "ups"]

# fakeups' detection settings in every stage (those of
# packaging/examples/loopback.toml). The baseline runs at the same 1 s
# interval with its original thresholds (OB after 6 silent rounds).
INTERVAL, TIMEOUT = 1.0, 0.5
ON_BATTERY_AFTER, ONLINE_AFTER = 5.0, 3.0
BASELINE_OB_AFTER, BASELINE_LB_AFTER = 6, 20

# Targets of issue 5.
LATENCY_SLACK = 1.2          # s over the configured window, every trial
# Peak RSS of fakeups (issue 14): as 0.2.0's (about 3 MiB) with Sentry off,
# at most 6 MiB with it on.
RSS_TARGET = 3 * MIB
RSS_SENTRY_TARGET = 6 * MIB
CPU_RATIO_TARGET = 0.1       # fakeups CPU / baseline CPU
ROUND_SLACK = 0.050          # s over the timeout, every round at the largest size
CPU_SHARE_TARGET = 0.05      # of one core, at the largest size
FLAT_TARGET = 1.25           # CPU per sentinel, largest size / 100 (our reading of "flat")
# Each binary (issue 14): the daemon, with Sentry, may grow to 4 MiB.
SIZE_TARGET = {"fakeups": 4 * MIB, "fakeupsctl": 3 * MIB}

# Namespace indexes (200-249 are the benchmark's): scale uses 200 and routes
# 10.231.204.0/22 through it; latency 210 and 211; footprint 212, routing
# 10.231.213.0/24 through it; loss 220 (--before) and 221.

# The loss stage's timings (those of issue 11's soak): one sentinel, and
# the status the shipped battery settings give.
LOSS_INTERVAL, LOSS_TIMEOUT = 1.0, 0.5
LOSS_ON_BATTERY_AFTER, LOSS_ONLINE_AFTER = 5.0, 5.0
LOSS_RUNTIME, LOSS_LOW_RUNTIME = "5m", "3m"
LOSS_SLACK = 0.2             # s over the detection window, to the data file


def parse_args():
    p = argparse.ArgumentParser(description="fakeups benchmark (run through run.sh)")
    p.add_argument("--fakeups", required=True, help="the amd64 daemon binary")
    p.add_argument("--fakeupsctl", help="the amd64 fakeupsctl binary (size only)")
    p.add_argument("--arm64", nargs="*", default=[], help="arm64 binaries (size only)")
    p.add_argument("--deb", help="the .deb, when one was built")
    p.add_argument("--deb-note", default="not built", help="why there is no .deb")
    p.add_argument("--arm64-note", default="not built", help="why there are no arm64 binaries")
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True, help="report path (.md; .json next to it)")
    p.add_argument("--smoke", action="store_true", help="2 trials, 10 sentinels, short stages")
    p.add_argument("--only", help=f"comma-separated stages: {STAGES}")
    p.add_argument("--check-targets", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--seed", type=int, default=5, help="seed of the random phases")
    p.add_argument("--before", help="loss and fault stages: an older fakeups daemon binary "
                   "(e.g. a release build of 0.1.0), run beside this one; its fakeupsctl "
                   "beside it")
    p.add_argument("--loss-minutes", type=float,
                   help="loss stage: minutes of soak per loss level (default 20; smoke 0.25)")
    p.add_argument("--loss-levels", default="30,50",
                   help="loss stage: percentages of echo requests dropped (default 30,50)")
    p.add_argument("--loss-cuts", type=int,
                   help="loss stage: real cuts timed per level (default 5; smoke 1)")
    faults.add_args(p)
    return p.parse_args()


def plan(smoke, args=None):
    if smoke:
        p = {"trials": 2, "footprint_s": 10, "sizes": [10], "scale_s": 5, "silent_s": 5,
             "loss_minutes": 0.25, "loss_cuts": 1}
    else:
        p = {"trials": 20, "footprint_s": 60, "sizes": [10, 100, 1000], "scale_s": 30,
             "silent_s": 15, "loss_minutes": 20.0, "loss_cuts": 5}
    if args is not None:
        if args.loss_minutes is not None:
            p["loss_minutes"] = args.loss_minutes
        if args.loss_cuts is not None:
            p["loss_cuts"] = args.loss_cuts
        p["loss_levels"] = [float(x) / 100 for x in args.loss_levels.split(",") if x.strip()]
    return p


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def workdir(base, name):
    d = os.path.join(base, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    os.chmod(d, 0o755)
    return d


# ------------------------------------------------------------------ 1. latency

def baseline_argv(nut, sentinels, interval=INTERVAL):
    return ["/usr/bin/python3", os.path.join(HERE, "baseline.py"),
            "--interval", str(interval), "--ob-after", str(BASELINE_OB_AFTER),
            "--lb-after", str(BASELINE_LB_AFTER), "--ups", ",".join(UPS_NAMES),
            "--upsd", nut.addr(), "--user", Nut.USER, "--password", Nut.PASSWORD,
            *sentinels]


def static_dev(path):
    """The data file of the baseline's dummy-ups (dummy-once: read once;
    upsrw sets ups.status from then on)."""
    with open(path, "w") as f:
        f.write("ups.status: OL\nbattery.charge: 100\nups.mfr: baseline\n"
                "ups.model: Python loop\n")
    os.chmod(path, 0o644)
    return path


def trials(ns, watch, file_watch, n, rng, timeout, before=None):
    """n cuts and restores; each waits a random 0.5-1.5 s first, so the cut
    falls anywhere in the round timer's phase. `before(rng)` runs first in
    each trial."""
    out = {"ob": [], "ol": [], "ob_file": [], "ol_file": []}
    for i in range(n):
        if before:
            before(rng)
        for cut, want, key in ((True, "OB", "ob"), (False, "OL", "ol")):
            pause(rng.uniform(0.5, 1.5))
            t0 = time.monotonic()
            ns.cut() if cut else ns.restore()
            seen = watch.first(want, t0, timeout)
            if seen is None:
                raise RuntimeError(f"trial {i + 1}: upsd did not serve {want} within "
                                   f"{timeout:.0f} s; changes: {watch.changes[-5:]}")
            out[key].append(seen - t0)
            if file_watch:
                seen_file = file_watch.first(want, t0, 2)
                if seen_file is None:
                    raise RuntimeError(f"trial {i + 1}: {want} at upsd but not in the data file")
                out[key + "_file"].append(seen_file - t0)
    return out


def latency_fakeups(args, p, base):
    d = workdir(base, "latency-fakeups")
    ns = NetNs(210)
    cfg = fakeups_config(d, [ns.peer_ip], interval=f"{INTERVAL:g}s",
                         timeout=f"{int(TIMEOUT * 1000)}ms",
                         on_battery_after=f"{ON_BATTERY_AFTER:g}s",
                         online_after=f"{ONLINE_AFTER:g}s")
    running = list(start_fakeups(args.fakeups, d, cfg))  # [process, notify socket]
    nut = Nut(f"{d}/nut", UPS_NAMES, f"{d}/lib/fakeups.dev", "dummy-loop")
    watch, fwatch = UpsdWatch(nut.port, "fakeups"), FileWatch(f"{d}/lib/fakeups.dev")

    def restart(rng):
        """A new daemon a random 0-1 s later: dummy-ups polls every second
        and keeps its phase to fakeups' rounds for as long as both run, so
        without this every trial would see NUT take the same share."""
        kill(running[0])
        running[1].close()
        pause(rng.uniform(0, 1))
        running[:] = start_fakeups(args.fakeups, d, cfg)

    try:
        if watch.first("OL", 0, 10) is None:
            raise RuntimeError("fakeups: upsd never served OL")
        return trials(ns, watch, fwatch, p["trials"], random.Random(args.seed),
                      ON_BATTERY_AFTER + 15, before=restart)
    finally:
        watch.stop()
        fwatch.stop()
        nut.stop()
        kill(running[0])
        running[1].close()
        ns.delete()


def latency_baseline(args, p, base):
    d = workdir(base, "latency-baseline")
    ns = NetNs(211)
    nut = Nut(f"{d}/nut", UPS_NAMES, static_dev(f"{d}/baseline.dev"), "dummy-once")
    loop = spawn(baseline_argv(nut, [ns.peer_ip]), f"{d}/baseline.log")
    watch = UpsdWatch(nut.port, "fakeups")
    try:
        if watch.first("OL", 0, 10) is None:
            raise RuntimeError("baseline: upsd never served OL")
        return trials(ns, watch, None, p["trials"], random.Random(args.seed + 1),
                      BASELINE_OB_AFTER * (INTERVAL + 1) + 15)
    finally:
        watch.stop()
        kill(loop)
        nut.stop()
        ns.delete()


def stage_latency(args, p, base):
    log(f"latency: {p['trials']} trials each, fakeups and baseline at once")
    pool = concurrent.futures.ThreadPoolExecutor(2)
    try:
        f = pool.submit(latency_fakeups, args, p, base)
        b = pool.submit(latency_baseline, args, p, base)
        return {"fakeups": f.result(), "baseline": b.result()}
    except BaseException:
        STOP.set()  # the other thread gives up at its next step
        raise
    finally:
        pool.shutdown(wait=True)


# ------------------------------------------------------------------ 2. footprint

def peak_rss_of(argv, repeat=5):
    """Peak RSS of a short command: its VmHWM read in a tight loop from the
    moment it runs the program (before exec, the child is a copy of this
    Python) until it exits; the last reading is its peak. The largest of
    `repeat` runs. (wait4's ru_maxrss would report the forking Python.)"""
    name = os.path.basename(argv[0])[:15]
    best = 0
    for _ in range(repeat):
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        hwm = 0
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/comm") as f:
                    if f.read().strip() == name:
                        hwm = max(hwm, status_field(proc.pid, "VmHWM"))
            except OSError:
                pass
        best = max(best, hwm)
    return best


def footprint_run(argv_or_daemon, d, nut, secs, args, cfg=None):
    """One tree for `secs` with its NUT beside it; the tree's figures."""
    n0 = nut.cpu_ns()
    t0 = time.monotonic()
    if cfg:
        tree, notify = start_fakeups(args.fakeups, d, cfg, measured=True)
    else:
        tree, notify = Tree(argv_or_daemon, f"{d}/baseline.log"), None
    time.sleep(max(0.0, secs - (time.monotonic() - t0)))
    n1 = nut.cpu_ns()
    r = tree.stop()
    if notify:
        notify.close()
    r["nut_cpu"] = (n1 - n0) / 1e9
    return r


def stage_footprint(args, p, base):
    secs = p["footprint_s"]
    log(f"footprint: fakeups, then the baseline, 3 sentinels, {secs} s each")
    ns = NetNs(212)
    sentinels = [ns.peer_ip] + ns.add_routed("10.231.213.0/24", 2)
    df, db = workdir(base, "footprint-fakeups"), workdir(base, "footprint-baseline")
    cfg = fakeups_config(df, sentinels, interval=f"{INTERVAL:g}s",
                         timeout=f"{int(TIMEOUT * 1000)}ms")
    # One after the other: fakeups' raw ICMP socket receives every ICMP
    # packet the host gets, the baseline's replies included. The data file
    # exists first (as fakeups writes it, OL) so that upsd serves it at once.
    static_dev(f"{df}/lib/fakeups.dev")
    nut_f = Nut(f"{df}/nut", UPS_NAMES, f"{df}/lib/fakeups.dev", "dummy-loop")
    rf = footprint_run(None, df, nut_f, secs, args, cfg)
    # The same with Sentry on, sending: an ERROR line (a refused reload, a
    # Sentry event) every 2 s to a receiver on 127.0.0.1.
    receiver = SentryReceiver()
    ds = workdir(base, "footprint-sentry")
    cfg_s = fakeups_config(ds, sentinels, interval=f"{INTERVAL:g}s",
                           timeout=f"{int(TIMEOUT * 1000)}ms",
                           extra=f'[sentry]\ndsn = "{receiver.dsn}"\n')
    tree, notify = start_fakeups(args.fakeups, ds, cfg_s, measured=True)
    errors_while(tree.pid, cfg_s, secs, 2.0)
    rs = tree.stop()
    notify.close()
    rs["peak_tree"] = max(rs["peak_tree_sampled"], rs["hwm"])
    rs["posts"] = receiver.posts
    receiver.stop()
    # "As today": the --before binary, same configuration, same NUT.
    rbefore = None
    if args.before:
        dbf = workdir(base, "footprint-before")
        cfg_b = fakeups_config(dbf, sentinels, interval=f"{INTERVAL:g}s",
                               timeout=f"{int(TIMEOUT * 1000)}ms")
        tree, notify = start_fakeups(args.before, dbf, cfg_b, measured=True)
        time.sleep(secs)
        rbefore = tree.stop()
        notify.close()
        rbefore["peak_tree"] = max(rbefore["peak_tree_sampled"], rbefore["hwm"])
    nut_f.stop()
    nut_b = Nut(f"{db}/nut", UPS_NAMES, static_dev(f"{db}/baseline.dev"), "dummy-once")
    rb = footprint_run(baseline_argv(nut_b, sentinels), db, nut_b, secs, args)
    # The baseline runs one child at a time: its tree peaks at its own peak
    # plus the largest child's. Those children, measured alone (ping to a
    # silent sentinel, so that it lives the whole second):
    ns.cut()
    children = {"ping": peak_rss_of(["ping", "-c", "1", "-W", "1", sentinels[0]], 3)}
    ns.restore()
    children["upsrw"] = peak_rss_of(["upsrw", "-s", "ups.status=OL", "-u", Nut.USER, "-p",
                                     Nut.PASSWORD, f"fakeups@{nut_b.addr()}"])
    nut_b.stop()
    ns.delete()
    rb["children_peak"] = children
    rb["peak_tree"] = max(rb["peak_tree_sampled"], rb["hwm"] + max(children.values()))
    rf["peak_tree"] = max(rf["peak_tree_sampled"], rf["hwm"])
    return {"seconds": secs, "sentinels": sentinels, "fakeups": rf, "baseline": rb,
            "sentry": rs, "before": rbefore}


# ------------------------------------------------------------------ 3. scale

ANSWERING = re.compile(r"(\d+)/(\d+) sentinels answering")


def stage_scale(args, p, base):
    sizes = p["sizes"]
    log(f"scale: {sizes} sentinels, {p['scale_s']} s each (+ perf, + silent)")
    ns = NetNs(200)
    addrs = ns.add_routed("10.231.204.0/22", max(sizes))
    out = []
    for n in sizes:
        d = workdir(base, f"scale-{n}")
        cfg = fakeups_config(d, addrs[:n], interval=f"{INTERVAL:g}s",
                             timeout=f"{int(TIMEOUT * 1000)}ms")
        daemon, notify = start_fakeups(args.fakeups, d, cfg)
        time.sleep(2 * INTERVAL)  # settle: the first round logs every sentinel
        # CPU over whole rounds, without perf attached.
        c0, t0 = cpu_ns(daemon.pid), time.monotonic()
        time.sleep(p["scale_s"])
        c1, t1 = cpu_ns(daemon.pid), time.monotonic()
        rounds = round((t1 - t0) / INTERVAL)
        # Round durations, all answering, then all silent.
        log(f"scale {n}: rounds (perf)")
        answering = perf_rounds(daemon.pid, p["scale_s"], f"{d}/perf-answering.data", INTERVAL)
        answers = [int(m.group(1)) for s in notify.statuses() for m in [ANSWERING.search(s)] if m]
        ns.cut()
        time.sleep(2 * INTERVAL)
        log(f"scale {n}: silent rounds (perf)")
        silent = perf_rounds(daemon.pid, p["silent_s"], f"{d}/perf-silent.data", INTERVAL)
        ns.restore()
        hwm = status_field(daemon.pid, "VmHWM")
        kill(daemon)
        notify.close()
        with open(f"{d}/log/fakeups.log") as f:
            silent_lines = sum("is silent" in line for line in f)
        cpu = (c1 - c0) / 1e9
        out.append({
            "sentinels": n, "window_s": t1 - t0, "rounds": rounds, "cpu_s": cpu,
            "cpu_per_round": cpu / rounds, "cpu_per_sentinel": cpu / rounds / n,
            "cpu_share": cpu / (t1 - t0), "hwm": hwm,
            "answering": [r[0] for r in answering], "answering_sends": [r[1] for r in answering],
            "silent": [r[0] for r in silent], "silent_sends": [r[1] for r in silent],
            "min_answering": min(answers) if answers else None,
            "silent_log_lines": silent_lines,
        })
    ns.delete()
    return out


# ------------------------------------------------------------------ 4. size

def stripped_size(path, strip):
    """Size after `strip --strip-all` of a copy (equal when already stripped)."""
    tmp = path + ".bench-stripped"
    try:
        sh(strip, "--strip-all", "-o", tmp, path)
        return os.path.getsize(tmp)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def stage_size(args):
    rows = []
    for path in [args.fakeups, args.fakeupsctl]:
        if path:
            rows.append({"what": f"{os.path.basename(path)} (amd64)",
                         "bytes": stripped_size(path, "strip"), "binary": True})
    for path in args.arm64:
        rows.append({"what": f"{os.path.basename(path)} (arm64)",
                     "bytes": stripped_size(path, "aarch64-linux-gnu-strip"), "binary": True})
    if not args.arm64:
        rows.append({"what": "arm64 binaries", "note": args.arm64_note, "binary": True})
    if args.deb:
        rows.append({"what": os.path.basename(args.deb), "bytes": os.path.getsize(args.deb),
                     "binary": False})
    else:
        rows.append({"what": ".deb", "note": args.deb_note, "binary": False})
    return rows


# ------------------------------------------------------------------ 5. loss

ROUND_DONE = re.compile(r"DEBUG: round done in [\d.]+ ms: (\d+)/(\d+) sentinel")


def log_counts(text):
    """What a stretch of the daemon's log says: rounds, silent rounds,
    transitions."""
    rounds = [m for m in ROUND_DONE.finditer(text)]
    return {"rounds": len(rounds),
            "silent_rounds": sum(m.group(1) != "0" for m in rounds),
            "power_lost": text.count("Power lost - switching to OB"),
            "battery_low": text.count("Battery critically low - switching to OB LB"),
            "restored": text.count("INFO: Power restored")}


def wait_online(watch, timeout):
    """Waits until the data file says OL; False after `timeout`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if watch.changes and watch.changes[-1][1] == "OL":
            return True
        pause(0.05)
    return False


def loss_run(binary, label, index, p, base, rng):
    """One daemon and its sentinel through every loss level: a soak with the
    sentinel up, then real cuts, each timed from the link going down to OB
    in the data file."""
    d = workdir(base, f"loss-{label}")
    ns = NetNs(index)
    cfg = fakeups_config(d, [ns.peer_ip], interval=f"{LOSS_INTERVAL:g}s",
                         timeout=f"{int(LOSS_TIMEOUT * 1000)}ms",
                         on_battery_after=f"{LOSS_ON_BATTERY_AFTER:g}s",
                         online_after=f"{LOSS_ONLINE_AFTER:g}s",
                         runtime=LOSS_RUNTIME, low_runtime=LOSS_LOW_RUNTIME, level="debug")
    logfile = f"{d}/log/fakeups.log"
    daemon, notify = start_fakeups(binary, d, cfg)
    watch = FileWatch(f"{d}/lib/fakeups.dev")
    out = []

    def log_size():
        return os.path.getsize(logfile)

    def log_since(offset):
        with open(logfile, errors="replace") as f:
            f.seek(offset)
            return f.read()

    try:
        for level in p["loss_levels"]:
            if not wait_online(watch, 60):
                raise RuntimeError(f"{label}: not OL before the soak at {level:.0%}")
            ns.drop_randomly(level)
            log(f"loss {label} {level:.0%}: soak of {p['loss_minutes']:g} min")
            at, t0 = log_size(), time.monotonic()
            pause(p["loss_minutes"] * 60)
            soak = log_counts(log_since(at))
            soak["seconds"] = time.monotonic() - t0
            cuts, waits = [], []
            while len(cuts) < p["loss_cuts"]:
                # A cut is timed from OL: after a false OB (or the last
                # restore), wait for the sentinel to be seen back.
                w0 = time.monotonic()
                if not wait_online(watch, 600):
                    raise RuntimeError(f"{label}: not OL within 10 min at {level:.0%}")
                waits.append(time.monotonic() - w0)
                pause(rng.uniform(0.5, 1.5))
                if watch.changes[-1][1] != "OL":
                    continue  # a false OB came first: not a cut from OL
                t = time.monotonic()
                ns.link_down()
                seen = watch.first(("OB", "OB LB"), t, LOSS_ON_BATTERY_AFTER + 30)
                ns.link_up()
                if seen is None:
                    raise RuntimeError(f"{label}: no OB within 30 s of cut {len(cuts) + 1} "
                                       f"at {level:.0%}; changes: {watch.changes[-5:]}")
                cuts.append(seen - t)
            ns.stop_dropping(level)
            log(f"loss {label} {level:.0%}: {soak['power_lost']} false OB, "
                f"{soak['silent_rounds']}/{soak['rounds']} silent rounds; cuts "
                f"{', '.join(f'{c:.2f} s' for c in cuts)}")
            out.append({"loss": level, "soak": soak, "cuts": cuts, "waits_for_ol": waits})
        return {"binary": binary, "levels": out}
    finally:
        watch.stop()
        kill(daemon)
        notify.close()
        ns.delete()


def stage_loss(args, p, base):
    runs = [("after", args.fakeups, 221)]
    if args.before:
        runs.insert(0, ("before", args.before, 220))
    log(f"loss: {', '.join(f'{x:.0%}' for x in p['loss_levels'])} for "
        f"{p['loss_minutes']:g} min each, then {p['loss_cuts']} cut(s); "
        f"{' and '.join(r[0] for r in runs)} at once")
    pool = concurrent.futures.ThreadPoolExecutor(len(runs))
    try:
        futures = {label: pool.submit(loss_run, binary, label, index, p, base,
                                      random.Random(args.seed + index))
                   for label, binary, index in runs}
        return {label: f.result() for label, f in futures.items()}
    except BaseException:
        STOP.set()
        raise
    finally:
        pool.shutdown(wait=True)


# ------------------------------------------------------------------ report

def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    osname = platform.platform()
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            m = re.search(r'PRETTY_NAME="([^"]*)"', f.read())
            osname = m.group(1) if m else osname
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    nut = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "nut-server"],
                         capture_output=True, text=True).stdout or "?"
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        ping_groups = " ".join(f.read().split())
    rev = subprocess.run(["git", "-C", HERE, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "os": osname,
            "memory_mib": mem, "nut": nut, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"), "fakeups": rev,
            "ping_group_range": ping_groups}


def pct(values, q):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def s2(x):
    return f"{x:.2f} s"


def ms(x):
    return f"{x * 1000:.1f} ms"


def mib(x):
    return f"{x / MIB:.2f} MiB"


def ok(flag):
    return "met" if flag else "**missed**"


def report(r, args, p):
    m = r["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mib']} MiB, "
             f"kernel {m['kernel']}, {m['os']}; NUT {m['nut']}, Python {m['python']}; "
             f"net.ipv4.ping_group_range {m['ping_group_range']}; fakeups {m['fakeups']}; "
             f"{m['date']}{' (smoke run)' if args.smoke else ''}.", ""]
    targets = []

    lat = r.get("latency")
    if lat:
        f, b = lat["fakeups"], lat["baseline"]
        lines += [f"### 1. Detection latency ({p['trials']} trials each, real ICMP, read back from upsd)", "",
                  f"fakeups: interval {INTERVAL:g} s, timeout {TIMEOUT * 1000:.0f} ms, on-battery-after "
                  f"{ON_BATTERY_AFTER:g} s, online-after {ONLINE_AFTER:g} s; dummy-ups "
                  f"`mode = dummy-loop`, `pollinterval = 1`. Baseline: interval {INTERVAL:g} s (not "
                  f"its original 5 s), OB after {BASELINE_OB_AFTER} silent rounds, OL at the first "
                  f"answer; upsrw into dummy-ups `mode = dummy-once`. Times from the cut (ICMP "
                  f"dropped in the sentinel's namespace) or the restore to the first `GET VAR` "
                  f"(every 50 ms) that shows the new status.", "",
                  "The window is read two ways. Strictly, it is on-battery-after (OL: online-after). "
                  "fakeups only ever says OB after a silence it observed for at least "
                  "on-battery-after: from the send of the first ping left unanswered to the send of "
                  "one still unanswered when it times out, so the decision itself lands between "
                  "on-battery-after and on-battery-after + interval + timeout after the cut (OL: "
                  "online-after + interval after the restore). The detection window is that "
                  "upper bound; dummy-ups adds up to its 1 s poll.", "",
                  "| | window | min | median | max | every trial ≤ window + 1.2 s | "
                  "≤ detection window + 1.2 s |",
                  "|---|---|---|---|---|---|---|"]
        f["ob_nut"] = [a - b for a, b in zip(f["ob"], f["ob_file"])]
        f["ol_nut"] = [a - b for a, b in zip(f["ol"], f["ol_file"])]
        ob_detect = ON_BATTERY_AFTER + INTERVAL + TIMEOUT
        ol_detect = ONLINE_AFTER + INTERVAL
        for name, data, key, window, detect, target in (
                ("fakeups OB", f, "ob", ON_BATTERY_AFTER, ob_detect, True),
                ("• cut → data file (fakeups)", f, "ob_file", ON_BATTERY_AFTER, ob_detect, False),
                ("• data file → upsd (dummy-ups)", f, "ob_nut", None, None, False),
                ("fakeups OL", f, "ol", ONLINE_AFTER, ol_detect, True),
                ("• restore → data file (fakeups)", f, "ol_file", ONLINE_AFTER, ol_detect, False),
                ("• data file → upsd (dummy-ups)", f, "ol_nut", None, None, False),
                ("baseline OB", b, "ob", BASELINE_OB_AFTER * INTERVAL, None, False),
                ("baseline OL", b, "ol", INTERVAL, None, False)):
            v = data[key]
            if window is None:
                lines.append(f"| {name} | | {s2(min(v))} | {s2(statistics.median(v))} "
                             f"| {s2(max(v))} | | |")
                continue
            within = sum(x <= window + LATENCY_SLACK for x in v)
            verdict = f"{within}/{len(v)}: {ok(within == len(v))}" if target else \
                f"({within}/{len(v)})"
            second = ""
            if detect is not None:
                d_within = sum(x <= detect + LATENCY_SLACK for x in v)
                second = (f"{d_within}/{len(v)} (≤ {detect + LATENCY_SLACK:g} s): "
                          f"{ok(d_within == len(v))}" if target else f"({d_within}/{len(v)})")
                if target:
                    targets.append((f"latency {name}: every trial ≤ detection window + 1.2 s "
                                    f"= {detect + LATENCY_SLACK:g} s", d_within == len(v),
                                    f"max {s2(max(v))}"))
            lines.append(f"| {name} | {window:g} s | {s2(min(v))} | {s2(statistics.median(v))} "
                         f"| {s2(max(v))} | {verdict} | {second} |")
            if target:
                targets.append((f"latency {name}: every trial ≤ window + 1.2 s = "
                                f"{window + LATENCY_SLACK:g} s (strict reading)",
                                within == len(v), f"max {s2(max(v))}"))
        lines += ["", f"Baseline median / fakeups median: OB "
                  f"{statistics.median(b['ob']) / statistics.median(f['ob']):.2f}×, OL "
                  f"{statistics.median(b['ol']) / statistics.median(f['ol']):.2f}×.", ""]

    fp = r.get("footprint")
    if fp:
        f, b = fp["fakeups"], fp["baseline"]
        secs = fp["seconds"]
        ratio = lambda a, c: f"{a / c:.3f}" if c else "-"
        lines += [f"### 2. Footprint (3 sentinels, all answering, interval {INTERVAL:g} s, "
                  f"{secs} s each, one after the other)", "",
                  "| | fakeups | baseline | fakeups / baseline | target |",
                  "|---|---|---|---|---|",
                  f"| peak RSS of the process tree | {mib(f['peak_tree'])} | {mib(b['peak_tree'])} | "
                  f"{ratio(f['peak_tree'], b['peak_tree'])} | fakeups ≤ 3 MiB: "
                  f"{ok(f['peak_tree'] <= RSS_TARGET)} |",
                  f"| of which, at the end: private (RssAnon) / file pages (RssFile) | "
                  f"{mib(f['rss_anon'])} / {mib(f['rss_file'])} | "
                  f"{mib(b['rss_anon'])} / {mib(b['rss_file'])} (python alone) | | |",
                  f"| CPU, user + sys of the tree, children included | {f['cpu'] * 1000:.0f} ms | "
                  f"{b['cpu'] * 1000:.0f} ms | {ratio(f['cpu'], b['cpu'])} | ≤ 0.1: "
                  f"{ok(f['cpu'] <= CPU_RATIO_TARGET * b['cpu'])} |",
                  f"| CPU per second | {f['cpu'] / f['wall'] * 1000:.2f} ms | "
                  f"{b['cpu'] / b['wall'] * 1000:.2f} ms | | |",
                  f"| wake-ups (voluntary context switches of the tree) | {f['vcsw']} "
                  f"({f['vcsw'] / f['wall']:.1f}/s) | {b['vcsw']} ({b['vcsw'] / b['wall']:.1f}/s) | "
                  f"{ratio(f['vcsw'], b['vcsw'])} | |",
                  f"| NUT beside it (3 dummy-ups + upsd), CPU | {f['nut_cpu'] * 1000:.0f} ms "
                  f"(dummy-loop, file read every 1 s) | {b['nut_cpu'] * 1000:.0f} ms (dummy-once) | "
                  f"{ratio(f['nut_cpu'], b['nut_cpu'])} | |", "",
                  f"fakeups used a {f['icmp_socket']} ICMP socket. "
                  f"Peak RSS: fakeups is one process, its VmHWM. The baseline's tree is python "
                  f"({mib(b['hwm'])}) plus one child at a time, the largest being "
                  f"{', '.join(f'{k} {mib(v)}' for k, v in b['children_peak'].items())} "
                  f"(each measured alone); the sum over the live tree sampled every 10 ms peaked at "
                  f"{mib(b['peak_tree_sampled'])}. CPU and context switches come from wait4() "
                  f"when each tree ends, so every child it waited for is included. Startup is "
                  f"included for both. Each ran alone: run at the same time, fakeups' raw ICMP "
                  f"socket also wakes up for the baseline's echo replies.", ""]
        targets.append(("footprint: fakeups peak RSS ≤ 3 MiB, Sentry off",
                        f["peak_tree"] <= RSS_TARGET, mib(f["peak_tree"])))
        s_on = fp.get("sentry")
        if s_on:
            lines += [f"With Sentry on (a receiver on 127.0.0.1, an ERROR event every 2 s: "
                      f"{s_on['posts']} envelopes sent in {secs} s): peak RSS "
                      f"{mib(s_on['peak_tree'])}, {ratio(s_on['peak_tree'], f['peak_tree'])} of "
                      f"Sentry off's (private {mib(s_on['rss_anon'])}, file pages "
                      f"{mib(s_on['rss_file'])} at the end); CPU {s_on['cpu'] * 1000:.0f} ms.", ""]
            before = fp.get("before")
            if before:
                lines += [f"The --before binary ({args.before}), "
                          f"same configuration: peak RSS {mib(before['peak_tree'])} (private "
                          f"{mib(before['rss_anon'])}, file pages {mib(before['rss_file'])}); this build with "
                          f"Sentry off is {ratio(f['peak_tree'], before['peak_tree'])} of it, with "
                          f"Sentry on {ratio(s_on['peak_tree'], before['peak_tree'])}.", ""]
            targets.append(("footprint: fakeups peak RSS ≤ 6 MiB, Sentry on",
                            s_on["peak_tree"] <= RSS_SENTRY_TARGET, mib(s_on["peak_tree"])))
        targets.append(("footprint: fakeups CPU ≤ 1/10 of the baseline's",
                        f["cpu"] <= CPU_RATIO_TARGET * b["cpu"],
                        f"{f['cpu'] / b['cpu']:.3f} of it" if b["cpu"] else "-"))

    sc = r.get("scale")
    if sc:
        lines += [f"### 3. Scale (fakeups alone, interval {INTERVAL:g} s, timeout "
                  f"{TIMEOUT * 1000:.0f} ms, {p['scale_s']} s per size)", "",
                  "| sentinels | round p50 | round p99 | round max | all silent: p50 / p99 / max "
                  "| CPU per round | CPU per sentinel | share of one core | peak RSS | fewest answering "
                  "(wrongly silent) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for s in sc:
            a, q = s["answering"], s["silent"]
            ans = "-" if s["min_answering"] is None else \
                f"{s['min_answering']}/{s['sentinels']}"
            lines.append(
                f"| {s['sentinels']} | {ms(pct(a, 50))} | {ms(pct(a, 99))} | {ms(max(a))} | "
                f"{ms(pct(q, 50))} / {ms(pct(q, 99))} / {ms(max(q))} | "
                f"{s['cpu_per_round'] * 1000:.2f} ms | {s['cpu_per_sentinel'] * 1e6:.1f} µs | "
                f"{s['cpu_share'] * 100:.2f} % | {mib(s['hwm'])} | {ans} |")
        lines += ["", "Rounds from the daemon's system calls (perf, raw_syscalls): from the "
                  "wake-up of the round timer to blocking again after the round's last call; "
                  "CPU from /proc/PID/task/*/schedstat over whole rounds without perf "
                  "attached. All silent: ICMP dropped in the namespace (every ping runs to its "
                  "timeout). \"Fewest answering\": the lowest count in the daemon's "
                  "STATUS= while every address did answer.", ""]
        big = sc[-1]
        rounds_ok = max(big["answering"] + big["silent"]) <= TIMEOUT + ROUND_SLACK
        targets.append((f"scale {big['sentinels']}: every round ≤ timeout + 50 ms", rounds_ok,
                        f"max {ms(max(big['answering'] + big['silent']))}"))
        targets.append((f"scale {big['sentinels']}: CPU < 5 % of one core",
                        big["cpu_share"] < CPU_SHARE_TARGET, f"{big['cpu_share'] * 100:.2f} %"))
        by_n = {s["sentinels"]: s for s in sc}
        if 100 in by_n and big["sentinels"] > 100:
            flat = big["cpu_per_sentinel"] / by_n[100]["cpu_per_sentinel"]
            targets.append((f"scale: CPU per sentinel flat from 100 to {big['sentinels']} "
                            f"(≤ {FLAT_TARGET}×)", flat <= FLAT_TARGET, f"{flat:.2f}×"))
        targets.append((f"scale {big['sentinels']}: every sentinel seen answering "
                        f"(not an issue target; correctness)",
                        big["min_answering"] == big["sentinels"],
                        f"fewest {big['min_answering']}/{big['sentinels']}"))

    sz = r.get("size")
    if sz:
        lines += ["### 4. Size", "", "| artefact | size | target |", "|---|---|---|"]
        for row in sz:
            if "bytes" in row:
                limit = SIZE_TARGET.get(row["what"].split()[0], 3 * MIB)
                tgt = f"≤ {limit // MIB} MiB: {ok(row['bytes'] <= limit)}" if row["binary"] else ""
                lines.append(f"| {row['what']} | {mib(row['bytes'])} ({row['bytes']} bytes) | {tgt} |")
                if row["binary"]:
                    targets.append((f"size: {row['what']} ≤ {limit // MIB} MiB",
                                    row["bytes"] <= limit, mib(row["bytes"])))
            else:
                lines.append(f"| {row['what']} | not measured: {row['note']} | |")
        lines.append("")

    lo = r.get("loss")
    if lo:
        labels = [x for x in ("before", "after") if x in lo]
        window = LOSS_ON_BATTERY_AFTER + LOSS_INTERVAL + LOSS_TIMEOUT
        lines += [f"### 5. Packet loss (one sentinel, interval {LOSS_INTERVAL:g} s, timeout "
                  f"{LOSS_TIMEOUT * 1000:.0f} ms, on-battery-after {LOSS_ON_BATTERY_AFTER:g} s, "
                  f"online-after {LOSS_ONLINE_AFTER:g} s, runtime {LOSS_RUNTIME}, low-runtime "
                  f"{LOSS_LOW_RUNTIME}; {p['loss_minutes']:g} min per level"
                  f"{', before and after at once' if len(labels) > 1 else ''})", "",
                  "| loss | binary | soak | false OB | false OB per hour | OB LB | silent rounds "
                  "| OB latency of a real cut (to the data file): median (min-max) |",
                  "|---|---|---|---|---|---|---|---|"]
        by = {x: {lv["loss"]: lv for lv in lo[x]["levels"]} for x in labels}
        for level in p["loss_levels"]:
            for x in labels:
                lv = by[x].get(level)
                if lv is None:
                    continue
                sk, c = lv["soak"], lv["cuts"]
                hours = sk["seconds"] / 3600
                lat = (f"{s2(statistics.median(c))} ({s2(min(c))}-{s2(max(c))}), {len(c)} cut(s)"
                       if c else "-")
                share = sk["silent_rounds"] / sk["rounds"] if sk["rounds"] else 0
                lines.append(f"| {level:.0%} | {x} | {sk['seconds'] / 60:.1f} min | "
                             f"{sk['power_lost']} | {sk['power_lost'] / hours:.1f} | "
                             f"{sk['battery_low']} | {sk['silent_rounds']}/{sk['rounds']} "
                             f"({share:.1%}) | {lat} |")
            if len(labels) > 1 and level in by["before"] and level in by["after"]:
                b, a = by["before"][level], by["after"][level]
                hb = b["soak"]["seconds"] / 3600
                ha = a["soak"]["seconds"] / 3600
                fb, fa = b["soak"]["power_lost"] / hb, a["soak"]["power_lost"] / ha
                ratio_ob = f"{fa / fb:.2f}×" if fb else "-"
                ratio_lat = (f"{statistics.median(a['cuts']) / statistics.median(b['cuts']):.2f}×"
                             if a["cuts"] and b["cuts"] else "-")
                lines.append(f"| {level:.0%} | after / before | | | {ratio_ob} | | | "
                             f"median {ratio_lat} |")
        lines += ["", f"Loss: iptables `statistic --mode random` drops that share of the echo "
                  f"requests reaching the sentinel's namespace. False OB: \"Power lost\" in the "
                  f"daemon's log while the sentinel was up. Silent rounds: rounds that ended with "
                  f"the sentinel silent (the daemon's debug log). A real cut: the sentinel's link "
                  f"goes down a random 0.5-1.5 s after the daemon shows OL, the loss still on; "
                  f"its detection window to the data file is on-battery-after + interval + "
                  f"timeout = {window:g} s. Binaries: "
                  + "; ".join(f"{x} {lo[x]['binary']}" for x in labels) + ".", ""]
        for level in p["loss_levels"]:
            a = by.get("after", {}).get(level)
            if a is None:
                continue
            targets.append((f"loss {level:.0%}: no false OB (after)", a["soak"]["power_lost"] == 0,
                            f"{a['soak']['power_lost']} in {a['soak']['seconds'] / 60:.1f} min"))
            if a["cuts"]:
                targets.append((f"loss {level:.0%}: every cut OB in the data file within the "
                                f"detection window + {LOSS_SLACK:g} s = {window + LOSS_SLACK:g} s "
                                f"(after)", max(a["cuts"]) <= window + LOSS_SLACK,
                                f"max {s2(max(a['cuts']))}"))

    o_lines, o_targets = outlets.report(r)
    lines += o_lines
    targets += o_targets
    more, more_targets = faults.report(r, args)
    lines += more
    targets += more_targets
    lines += ["### Targets", ""]
    for what, met, detail in targets:
        lines.append(f"- {ok(met)}: {what} ({detail})")
    return "\n".join(lines) + "\n", targets


def main():
    args = parse_args()
    p = plan(args.smoke, args)
    stages = (args.only or STAGES).split(",")
    unknown = set(stages) - set(STAGES.split(","))
    if unknown:
        raise SystemExit(f"bench.py: unknown stage(s) {', '.join(sorted(unknown))}; "
                         f"stages: {STAGES}")
    # SIGTERM (run.sh's trap, a CI timeout) unwinds through the cleanup.
    def stop(*_):
        STOP.set()
        sys.exit(143)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    results = {"machine": machine(), "smoke": args.smoke, "plan": p}
    started = time.monotonic()
    try:
        if "latency" in stages:
            results["latency"] = stage_latency(args, p, args.workdir)
        if "footprint" in stages:
            results["footprint"] = stage_footprint(args, p, args.workdir)
        if "scale" in stages:
            results["scale"] = stage_scale(args, p, args.workdir)
        if "size" in stages:
            results["size"] = stage_size(args)
        if "loss" in stages:
            results["loss"] = stage_loss(args, p, args.workdir)
        if outlets.STAGE in stages:
            results[outlets.STAGE] = outlets.stage(args, p, args.workdir)
        for stage in faults.STAGES:
            if stage in stages:
                results[stage] = faults.run(stage, args, args.workdir)
    finally:
        CLEANUP.run_all()
    results["seconds"] = time.monotonic() - started
    text, targets = report(results, args, p)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(results, f, indent=1)
    print(text)
    missed = sum(not met for _, met, _ in targets)
    log(f"done in {results['seconds']:.0f} s: {len(targets) - missed} targets met, "
        f"{missed} missed; report {args.out}")
    return 1 if args.check_targets and missed else 0


if __name__ == "__main__":
    sys.exit(main())
