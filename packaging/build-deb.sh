#!/bin/bash
# Builds the fakeups .deb for amd64 and for Raspberry Pi OS (arm64, armhf),
# installing what that needs: rustup targets, Debian's cross gcc for arm64,
# zig and cargo-zigbuild for armhf (see packaging/armv6.sh), qemu-user (to
# check the ARM binaries run on the oldest CPU of their package) and
# cargo-deb.
#
# armhf is Raspberry Pi OS 32-bit: ARMv6 with VFPv2 (Pi 1, Zero, Zero W) as
# well as newer boards. Its binaries are static (musl) ARMv6 ones; this
# script fails when readelf shows them ARMv7 or Thumb-2.
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
    armhf) host_target=arm-unknown-linux-musleabihf ;;
    *) echo "unsupported build machine: $host_arch" >&2; exit 1 ;;
esac

if [ "$host_only" = yes ]; then
    targets=("$host_target")
else
    targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu arm-unknown-linux-musleabihf)
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

debs=()
host_deb=""
for target in "${targets[@]}"; do
    echo "== $target"
    cross_args=()
    runner=()
    if [ "$target" = arm-unknown-linux-musleabihf ]; then
        # Not a target rustup serves: std is built from source, linked with
        # zig against its own musl (packaging/armv6.sh says why).
        # shellcheck source=packaging/armv6.sh
        . packaging/armv6.sh
        armv6_build
        cross_args=(--target "$target" --no-build)
        [ "$host_arch" != armhf ] && runner=(qemu-arm-static -cpu arm1176)
    elif [ "$target" != "$host_target" ]; then
        case "$target" in
            aarch64-unknown-linux-gnu)
                apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
                # The Pi 3, Zero 2 W and CM3's core: the oldest arm64 Pi.
                runner=(qemu-aarch64-static -cpu cortex-a53 -L /usr/aarch64-linux-gnu)
                ;;
            x86_64-unknown-linux-gnu)
                apt_install gcc-x86-64-linux-gnu libc6-dev-amd64-cross qemu-user-static
                # Not in .cargo/config.toml: there it would apply to native
                # amd64 builds too.
                export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc
                runner=(qemu-x86_64-static -L /usr/x86_64-linux-gnu)
                ;;
        esac
        grep -qx "$target" <<<"$(rustup target list --installed)" || rustup target add "$target"
        cross_args=(--target "$target")
    fi
    deb=$(cargo deb --locked "${cross_args[@]}" | tail -n 1)
    debs+=("$deb")
    [ "$target" = "$host_target" ] && host_deb=$deb
    bin_dir=target/release
    [ "${#cross_args[@]}" -gt 0 ] && bin_dir=target/$target/release
    if [ "$target" = arm-unknown-linux-musleabihf ]; then
        armv6_check "$bin_dir/fakeups" "$bin_dir/fakeupsctl"
    fi
    # The binaries run (under qemu-user for ARM, on the oldest CPU the
    # package is for) and say who they are.
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
