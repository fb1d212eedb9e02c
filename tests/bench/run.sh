#!/bin/bash
# The fakeups benchmark (issue 5): fakeups against the Python loop it
# replaces (tests/bench/baseline.py), on real ICMP in network namespaces
# and a real upsd. Prints one markdown report; see "Performance" in README.md.
#
#   sudo tests/bench/run.sh                  full run, about 66 minutes (loss: 42; faults: 11, 22 with --before)
#   sudo tests/bench/run.sh --smoke          2 trials, 10 sentinels, short stages (CI)
#   sudo tests/bench/run.sh --only scale     some stages: latency,footprint,scale,size,loss,crash,control,disk,outlets
#   sudo tests/bench/run.sh --only loss --before OLD/fakeups [--loss-minutes 20]
#                                            packet loss (issue 11), OLD beside this build
#   sudo tests/bench/run.sh --only crash,control,disk --before OLD/fakeups   issue 11, OLD beside this build
#   sudo tests/bench/run.sh --check-targets  exit 1 when a target is missed
#
# Needs root (namespaces, raw ICMP, perf). Installs what is missing with
# apt-get (iputils-ping, nut-server, nut-client, iproute2, iptables,
# linux-perf, python3, binutils, strace), builds the release binaries (honours
# CARGO_TARGET_DIR) and, for the size stage, this machine's .deb and, when
# the cross toolchain is there and this is not a smoke run, the arm64 ones.
# Traffic stays on 127.0.0.1 and on veth pairs in namespaces fub200..fub249
# (10.231.0.0/16, blackhole-guarded).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: needs root (network namespaces, raw ICMP, perf): sudo $0 $*" >&2
    exit 1
fi
smoke=false
only=
prev=
for a in "$@"; do
    case "$a" in
        --smoke) smoke=true ;;
        --only=*) only=${a#--only=} ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    esac
    if [ "$prev" = --only ]; then only=$a; fi
    prev=$a
done
# The .deb and the arm64 build are for the size stage only.
size=true
case ",${only:-size}," in *,size,*) ;; *) size=false ;; esac

# ---------------------------------------------------------------- tools
# shellcheck source=packaging/apt.sh
. packaging/apt.sh
apt_install iputils-ping nut-server nut-client iproute2 iptables linux-perf python3 binutils strace
if ! command -v cargo >/dev/null 2>&1; then export PATH="$HOME/.cargo/bin:$PATH"; fi

# Only one benchmark at a time: the namespace names are fixed.
exec 9>/run/lock/fakeups-bench.lock
flock -n 9 || { echo "run.sh: another benchmark is running" >&2; exit 1; }

# ---------------------------------------------------------------- build
target="${CARGO_TARGET_DIR:-$PWD/target}"
echo "== cargo build --release (target dir $target)"
cargo build --release --bins
bins=(--fakeups "$target/release/fakeups" --fakeupsctl "$target/release/fakeupsctl")

arm64_triple=aarch64-unknown-linux-gnu
if ! $size; then
    bins+=(--arm64-note "not built: no size stage")
elif $smoke; then
    bins+=(--arm64-note "not built in a smoke run")
elif command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 &&
        grep -qx "$arm64_triple" <<<"$(rustup target list --installed 2>/dev/null)"; then
    echo "== cargo build --release --target $arm64_triple"
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        cargo build --release --bins --target "$arm64_triple"
    bins+=(--arm64 "$target/$arm64_triple/release/fakeups" "$target/$arm64_triple/release/fakeupsctl")
else
    bins+=(--arm64-note "no cross toolchain (rustup target add $arm64_triple; apt-get install gcc-aarch64-linux-gnu)")
fi

# The package as users get it (man pages, completion and all): this
# machine's architecture, from the script that builds the releases.
if $size; then
    echo "== packaging/build-deb.sh --host"
    # (Not tee /dev/stderr: reopening stderr truncates a log file it points to.)
    out=$(packaging/build-deb.sh --host)
    printf '%s\n' "$out"
    built=$(sed -n 's/^== built: //p' <<<"$out")
    bins+=(--deb "$built")
else
    bins+=(--deb-note "not built: no size stage")
fi

# ---------------------------------------------------------------- run
# Everything the benchmark creates is also written, as the command that
# undoes it, to the ledger: replayed here after the run, whatever happened.
work="$(mktemp -d /tmp/fakeups-bench.XXXXXX)"
chmod 755 "$work"
export BENCH_LEDGER="$work/ledger"
: >"$BENCH_LEDGER"
cleanup() {
    if [ -s "$BENCH_LEDGER" ]; then
        tac "$BENCH_LEDGER" | while read -r line; do sh -c "$line" >/dev/null 2>&1 || true; done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

out="$target/bench/results$($smoke && echo -smoke || true).md"
started=$(date +%s)
/usr/bin/python3 tests/bench/bench.py "${bins[@]}" --workdir "$work" --out "$out" "$@" &
bench=$!
# Non-interactive bash ignores SIGINT in background jobs: pass signals on.
trap 'kill -TERM "$bench" 2>/dev/null || true' INT TERM
rc=0
while :; do
    if wait "$bench"; then rc=0; else rc=$?; fi
    kill -0 "$bench" 2>/dev/null || break
done
echo "benchmark finished in $(( $(date +%s) - started )) s (exit $rc); report: $out"
exit "$rc"
