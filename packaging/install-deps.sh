#!/bin/bash
# Installs what building and testing fakeups need on Debian or Raspberry Pi OS.
#   packaging/install-deps.sh build   Rust toolchain (rustup), clippy, rustfmt
#   packaging/install-deps.sh test    the above, plus what tests/run-all.sh
#                                     needs: NUT, iproute2, iptables, faketime
#                                     (the integration tests), strace (the
#                                     fault tests), mandoc (man pages),
#                                     debootstrap and systemd-container (the
#                                     end-to-end test), python3 (benchmark);
#                                     packaging/build-deb.sh adds its own
# Runs apt-get as root (directly or through sudo).
set -euo pipefail

mode="${1:-build}"
case "$mode" in build|test) ;; *) echo "usage: $0 build|test" >&2; exit 2 ;; esac

# shellcheck source=packaging/apt.sh
. "$(dirname "$0")/apt.sh"

apt_install ca-certificates curl gcc libc6-dev

# Rust from rustup: Debian's own rustc is older than the 1.85 that
# edition 2024 needs.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: installing Rust with rustup (https://rustup.rs)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v rustup >/dev/null 2>&1; then
    for c in clippy rustfmt; do
        grep -q "^$c" <<<"$(rustup component list --installed 2>/dev/null)" || rustup component add "$c"
    done
fi

if [ "$mode" = test ]; then
    apt_install nut-server nut-client iproute2 iptables util-linux procps \
        faketime mandoc debootstrap systemd-container python3 strace
fi
