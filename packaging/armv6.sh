# The armhf build, sourced by packaging/build-deb.sh.
# shellcheck shell=bash
#
# Raspberry Pi OS 32-bit is an ARMv6 + VFPv2 userland (ARM1176JZF-S: Pi 1,
# Zero, Zero W), unlike Debian's own armhf, which is ARMv7. Binaries built for
# Debian's armhf (armv7-unknown-linux-gnueabihf, Debian's cross gcc) contain
# ARMv7 and Thumb-2 code and die with SIGILL on those boards; even -march=armv6
# output links in Debian's ARMv7 start-up files and libgcc, and no ARMv6
# hard-float glibc exists in Debian to link against.
#
# So the armhf package carries static binaries for arm-unknown-linux-musleabihf
# (ARMv6, VFPv2, no Thumb-2, no NEON):
#   - rustup serves no std for that target: std is built from the rust-src
#     component (-Zbuild-std; RUSTC_BOOTSTRAP=1 lets the stable compiler take
#     that flag, so the toolchain stays the one CI uses for everything else);
#   - zig (PyPI package ziglang) links, against its own musl built for the
#     target CPU, through cargo-zigbuild (crates.io).
# What a static musl build gives up: host names are resolved from
# /etc/hosts and DNS (/etc/resolv.conf) without NSS, so no mDNS `.local`
# names and no nss modules; users and groups come from /etc/passwd and
# /etc/group only (no LDAP or sssd for the caller's name in the logs).

ZIG_VERSION=0.15.2
CARGO_ZIGBUILD_VERSION=0.24.1
ARMV6_TARGET=arm-unknown-linux-musleabihf

# zig in a venv of its own (Debian's pip refuses system-wide installs),
# cargo-zigbuild, rust-src, and readelf and qemu for the checks.
armv6_tools() {
    apt_install python3 python3-venv binutils qemu-user-static
    grep -q '^rust-src' <<<"$(rustup component list --installed)" || rustup component add rust-src
    local dir="${FAKEUPS_TOOLS_DIR:-$HOME/.cache/fakeups-tools}/zig-$ZIG_VERSION"
    if [ ! -x "$dir/bin/zig" ]; then
        echo "== installing zig $ZIG_VERSION (PyPI ziglang) into $dir"
        rm -rf "$dir"
        python3 -m venv "$dir/venv"
        "$dir/venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIG_VERSION"
        mkdir -p "$dir/bin"
        ln -s "$("$dir/venv/bin/python3" -c \
            'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')" \
            "$dir/bin/zig"
    fi
    export PATH="$dir/bin:$PATH"
    if ! grep -qxF "cargo-zigbuild $CARGO_ZIGBUILD_VERSION" <<<"$(cargo-zigbuild --version 2>/dev/null)"; then
        echo "== installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION"
        cargo install cargo-zigbuild --locked --version "$CARGO_ZIGBUILD_VERSION"
    fi
}

# Builds target/arm-unknown-linux-musleabihf/release/{fakeups,fakeupsctl}.
armv6_build() {
    armv6_tools
    echo "== cargo zigbuild --target $ARMV6_TARGET (std from source)"
    # link-self-contained=no: zig brings the C runtime and musl; rustc has
    # none for this target.
    RUSTFLAGS="-C link-self-contained=no" RUSTC_BOOTSTRAP=1 \
        cargo zigbuild --release --locked --target "$ARMV6_TARGET" -Zbuild-std=std,panic_abort
}

# Fails unless each binary is static and, by its ELF attributes, ARMv6 with
# VFPv2 at most: no Thumb-2, no NEON.
armv6_check() {
    local bin attrs
    for bin in "$@"; do
        attrs=$(readelf -A "$bin")
        if ! grep -Eq '^ *Tag_CPU_arch: v6(K|KZ)?$' <<<"$attrs" ||
            grep -q 'Thumb-2' <<<"$attrs" ||
            grep -q 'Tag_Advanced_SIMD_arch' <<<"$attrs" ||
            ! grep -Eq '^ *Tag_FP_arch: VFPv2$' <<<"$attrs"; then
            echo "$bin is not an ARMv6 + VFPv2 binary without Thumb-2:" >&2
            echo "$attrs" >&2
            return 1
        fi
        if grep -q 'INTERP' <<<"$(readelf -l "$bin")"; then
            echo "$bin is not static: it would load the system's ARMv7 libc" >&2
            return 1
        fi
        echo "   $(basename "$bin"): $(grep -E 'Tag_CPU_arch:|Tag_THUMB_ISA_use:|Tag_FP_arch:' <<<"$attrs" | tr -s ' ' | tr '\n' ';')static"
    done
}
