#!/usr/bin/python3
"""The baseline: the Python loop that fakeups replaces, rewritten from its
description (issue 5) for the benchmark.

Every INTERVAL it runs `ping -c 1 -W 1 HOST` for each sentinel in turn and
stops at the first that answers. It counts the consecutive rounds in which
none answered: OB from --ob-after rounds, OB LB from --lb-after rounds, OL as
soon as one answers. On each change it runs `upsrw -s ups.status=...` once per
UPS name against upsd.

Rounds start every INTERVAL (a round that overruns is followed at once by the
next one), the charitable reading of "every 5 s". The first round always
publishes its status, so upsd starts from what the loop believes.

    baseline.py --interval 5 --ups fakeups,qnapups,ups --upsd 127.0.0.1:3493 \
        --user admin --password 123456 192.168.1.1 192.168.1.2
"""

import argparse
import signal
import subprocess
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interval", type=float, default=5.0, help="seconds between round starts (5)")
    p.add_argument("--ob-after", type=int, default=6, help="silent rounds before OB (6)")
    p.add_argument("--lb-after", type=int, default=20, help="silent rounds before OB LB (20)")
    p.add_argument("--ups", default="fakeups,qnapups,ups", help="comma-separated UPS names")
    p.add_argument("--upsd", default="127.0.0.1:3493", help="upsd as host:port")
    p.add_argument("--user", default="admin", help="upsd user with `actions = SET`")
    p.add_argument("--password", default="123456")
    p.add_argument("sentinels", nargs="+", help="hosts to ping, in order")
    return p.parse_args()


def answers(host):
    """One `ping -c 1 -W 1 HOST`: whether it answered."""
    done = subprocess.run(["ping", "-c", "1", "-W", "1", host],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    return done.returncode == 0


def publish(status, args):
    """`upsrw -s ups.status=STATUS` once per UPS name."""
    for name in args.ups.split(","):
        subprocess.run(["upsrw", "-s", f"ups.status={status}", "-u", args.user,
                        "-p", args.password, f"{name}@{args.upsd}"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def main():
    args = parse_args()
    # SIGTERM ends the loop like Ctrl-C; a running ping or upsrw is reaped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    silent_rounds = 0
    current = None
    next_round = time.monotonic()
    while True:
        # any() stops at the first sentinel that answers.
        if any(answers(host) for host in args.sentinels):
            silent_rounds = 0
        else:
            silent_rounds += 1
        if silent_rounds >= args.lb_after:
            status = "OB LB"
        elif silent_rounds >= args.ob_after:
            status = "OB"
        else:
            status = "OL"
        if status != current:
            publish(status, args)
            current = status
        next_round += args.interval
        now = time.monotonic()
        if next_round > now:
            time.sleep(next_round - now)
        else:
            next_round = now


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
