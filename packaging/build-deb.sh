#!/bin/bash
# Builds the fakeups .deb for amd64 and for Raspberry Pi OS (arm64, armhf),
# installing what that needs: rustup targets, Debian's cross gcc, qemu-user
# (to check the ARM binaries run) and cargo-deb.
#
#   packaging/build-deb.sh                 all three architectures
#   packaging/build-deb.sh --host          only this machine's architecture
#   packaging/build-deb.sh --host --install   ... and apt install it here
#
# The packages land in target/debian/. lintian checks each one.
set -euo pipefail
cd "$(dirname "$0")/.."

host_only=no
install=no
for arg in "$@"; do
    case "$arg" in
        --host) host_only=yes ;;
        --install) install=yes ;;
        *) echo "usage: $0 [--host] [--install]" >&2; exit 2 ;;
    esac
done

packaging/install-deps.sh build
if ! command -v cargo >/dev/null 2>&1; then export PATH="$HOME/.cargo/bin:$PATH"; fi

# shellcheck source=packaging/apt.sh
. packaging/apt.sh

host_arch=$(dpkg --print-architecture)
case "$host_arch" in
    amd64) host_target=x86_64-unknown-linux-gnu ;;
    arm64) host_target=aarch64-unknown-linux-gnu ;;
    armhf) host_target=armv7-unknown-linux-gnueabihf ;;
    *) echo "unsupported build machine: $host_arch" >&2; exit 1 ;;
esac

if [ "$host_only" = yes ]; then
    targets=("$host_target")
else
    targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
fi

# cargo-deb puts its generated snippets (user, unit) wherever the token
# #DEBHELPER# stands, comments included: once per script, on its own line.
for script in debian/postinst debian/postrm debian/prerm; do
    if [ "$(grep -c 'DEBHELPER' "$script")" != 1 ] || ! grep -qx '#DEBHELPER#' "$script"; then
        echo "$script: #DEBHELPER# must stand once, alone on its line" >&2
        exit 1
    fi
done

apt_install lintian
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "== installing cargo-deb"
    cargo install cargo-deb --locked --version '^3'
fi

# The assets every package shares: compressed man pages and the bash
# completion generated from the clap definition (by the host binary).
echo "== assets"
cargo build --release --locked --bin fakeupsctl
mkdir -p target/assets
for page in fakeups.8 fakeupsctl.8 fakeups.toml.5; do
    gzip -9n -c "man/$page" >"target/assets/$page.gz"
done
target/release/fakeupsctl completions bash >target/assets/fakeupsctl.bash

debs=()
host_deb=""
for target in "${targets[@]}"; do
    echo "== $target"
    cross_args=()
    if [ "$target" != "$host_target" ]; then
        case "$target" in
            aarch64-unknown-linux-gnu) apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static ;;
            armv7-unknown-linux-gnueabihf) apt_install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user-static ;;
            x86_64-unknown-linux-gnu)
                apt_install gcc-x86-64-linux-gnu libc6-dev-amd64-cross qemu-user-static
                # Not in .cargo/config.toml: there it would apply to native
                # amd64 builds too.
                export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc
                ;;
        esac
        rustup target list --installed | grep -qx "$target" || rustup target add "$target"
        cross_args=(--target "$target")
    fi
    deb=$(cargo deb --locked "${cross_args[@]}" | tail -n 1)
    debs+=("$deb")
    [ "$target" = "$host_target" ] && host_deb=$deb
    bin_dir=target/release
    [ "$target" != "$host_target" ] && bin_dir=target/$target/release
    # The binaries run (under qemu-user for ARM) and say who they are.
    runner=()
    if [ "$target" != "$host_target" ]; then
        case "$target" in
            aarch64-unknown-linux-gnu) runner=(qemu-aarch64-static -L /usr/aarch64-linux-gnu) ;;
            armv7-unknown-linux-gnueabihf) runner=(qemu-arm-static -L /usr/arm-linux-gnueabihf) ;;
            x86_64-unknown-linux-gnu) runner=(qemu-x86_64-static -L /usr/x86_64-linux-gnu) ;;
        esac
    fi
    for bin in fakeups fakeupsctl; do
        echo "   $bin --version: $("${runner[@]}" "$bin_dir/$bin" --version)"
    done
    echo "   $(basename "$deb"): $(stat -c %s "$deb") bytes; binaries $(stat -c %s "$bin_dir/fakeups") and $(stat -c %s "$bin_dir/fakeupsctl") bytes"
    echo "   lintian:"
    # Errors fail the build; every warning left is justified in
    # debian/fakeups.lintian-overrides or README.md.
    # (pipefail: lintian's own status fails the build.)
    lintian --fail-on error "$deb" 2>&1 | sed 's/^/     /' | { grep -v "running with root privileges" || true; }
done

if [ "$install" = yes ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$(realpath "$host_deb")"
    systemctl status fakeups --no-pager || true
fi
echo "== built: ${debs[*]}"
