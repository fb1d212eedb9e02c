#!/bin/bash
# The whole test suite, as CI runs it:
#   1. cargo fmt --check and cargo clippy -D warnings
#   2. cargo test: unit tests, and integration tests that run the real
#      binaries against real ICMP in network namespaces and a real upsd
#      (and check the man pages against --help)
#   3. the .deb for amd64, arm64 and armhf, each checked by lintian, the
#      armhf binaries checked to be ARMv6 without Thumb-2
#      (packaging/build-deb.sh); then the integration tests against the ARM
#      packages' binaries under qemu-user (-cpu cortex-a53, -cpu arm1176)
#   4. the end-to-end test: each .deb installed into booted bookworm and
#      trixie containers (tests/e2e/run.sh): amd64 on both, arm64 on both and
#      armhf on trixie under qemu-user
#   5. a smoke run of the benchmark (tests/bench/run.sh --smoke), so it
#      cannot rot
# Needs root (namespaces, raw ICMP, containers); installs its own
# dependencies with apt. Under CI=true a test that cannot run fails instead
# of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

skip_or_fail() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL: $1 cannot run under CI=true: $2" >&2
        exit 1
    fi
    echo "SKIPPED $1: $2"
}

packaging/install-deps.sh test
if ! command -v cargo >/dev/null 2>&1; then export PATH="$HOME/.cargo/bin:$PATH"; fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked

echo "== packages (packaging/build-deb.sh)"
packaging/build-deb.sh

# A panic must reach Sentry before the process aborts: the release profile
# has panic = "abort", which the debug binaries of cargo test do not.
echo "== integration test: a panic of this machine's release binary reaches Sentry"
FAKEUPS_TEST_BIN_DIR="$PWD/target/release" \
    cargo test --locked --test it sentry::a_panic_reaches_sentry_before_the_process_dies

# The integration tests again, against the release binaries that went into
# the ARM packages, each under qemu-user on the oldest CPU of its package.
run_it_under() {
    local triple=$1 runner=$2
    echo "== integration tests: $triple binaries under $runner"
    FAKEUPS_TEST_BIN_DIR="$PWD/target/$triple/release" FAKEUPS_TEST_RUNNER="$runner" \
        cargo test --locked --test it
}
run_it_under aarch64-unknown-linux-gnu "qemu-aarch64-static -cpu cortex-a53 -L /usr/aarch64-linux-gnu"
run_it_under arm-unknown-linux-musleabihf "qemu-arm-static -cpu arm1176"
version=$(cargo pkgid | sed -E 's/.*[#@]//')
deb() { echo "target/debian/fakeups_${version}-1_$1.deb"; }

if [ "$(id -u)" -ne 0 ]; then
    skip_or_fail "end-to-end test" "needs root to boot containers"
else
    # This machine's package on both bases of Raspberry Pi OS; the ARM ones
    # booted under qemu-user (tests/e2e/foreign.sh): arm64 on both (64-bit
    # Raspberry Pi OS), armhf on trixie.
    host=$(dpkg --print-architecture)
    for run in "bookworm $host" "trixie $host" "bookworm arm64" "trixie arm64" "trixie armhf"; do
        read -r release arch <<<"$run"
        [ "$host" = amd64 ] || [ "$arch" = "$host" ] || continue
        echo "== end-to-end test on $release $arch"
        started=$SECONDS
        tests/e2e/run.sh "$release" "$(deb "$arch")"
        echo "== end-to-end test on $release $arch: $((SECONDS - started)) s"
    done
fi

if [ "$(id -u)" -ne 0 ]; then
    skip_or_fail "benchmark smoke run" "needs root for namespaces"
else
    echo "== benchmark smoke run (tests/bench/run.sh --smoke)"
    tests/bench/run.sh --smoke
fi
echo "== all tests passed"
