# shellcheck shell=bash
# Booting a Debian of another architecture (arm64, armhf) here: qemu-user
# through binfmt_misc, and what a booted systemd under qemu-user cannot have.
# Sourced by lib.sh; E2E_ARCH names the architecture (default: this machine's).
#
# What was measured here (qemu-user on an x86_64 bookworm host, nspawn -b):
#   - Debian bookworm's qemu 7.2 cannot run trixie's systemd 257: clone3 is
#     ENOSYS and clone(CLONE_PIDFD) EINVAL, so no unit starts ("Failed to
#     spawn executor: Invalid argument"). trixie's qemu-user 10.0 can; it is
#     taken from trixie's own archive (apt-get download inside the amd64
#     trixie rootfs) and used unpacked, for every foreign boot.
#   - qemu's clone() refuses namespace flags (EINVAL): systemd can set up no
#     credentials and no IPC namespace for a unit.
#   - qemu's statx() reports a mount id of 0, so systemd 257 (trixie) takes
#     a unit's new mount namespace for the old root, skips pivot_root and
#     fails every mount-namespacing directive with 226/NAMESPACE. systemd 252
#     (bookworm) is not affected.
#   - qemu refuses seccomp filters (prctl EINVAL, seccomp ENOSYS): systemd
#     then skips SystemCallFilter= and its kin silently, on every release.
# e2e_qemu_dropins writes the drop-ins that lift exactly those directives,
# and says which; the shipped unit is not changed.

E2E_QEMU_SUITE=trixie

# Prints the architecture of this machine, as dpkg names it.
e2e_host_arch() { dpkg --print-architecture; }

# True when E2E_ARCH is not this machine's architecture.
e2e_foreign() { [[ ${E2E_ARCH:-$(e2e_host_arch)} != "$(e2e_host_arch)" ]]; }

# Prints qemu's name of a dpkg architecture.
e2e_qemu_name() {
    case $1 in
    arm64) echo aarch64 ;;
    armhf) echo arm ;;
    *) e2e_die "no qemu-user for architecture '$1'" ;;
    esac
}

# Prints the directory holding trixie's qemu-user unpacked, fetching it on
# first use with apt-get download inside a throwaway copy of the host-arch
# trixie rootfs (the host's own apt configuration is not touched).
e2e_qemu_dir() {
    local cache dir rootfs out lock rc=0
    cache=$(e2e_cache_dir)
    dir=$cache/qemu-user-$E2E_QEMU_SUITE
    if [[ -x $dir/usr/libexec/qemu-binfmt/aarch64-binfmt-P ]]; then
        printf '%s\n' "$dir"
        return 0
    fi
    rootfs=$(E2E_ARCH=$(e2e_host_arch) e2e_rootfs "$E2E_QEMU_SUITE") || return
    mkdir -p "$cache"
    exec {lock}>"$cache/.qemu-user.lock"
    flock "$lock"
    if [[ ! -x $dir/usr/libexec/qemu-binfmt/aarch64-binfmt-P ]]; then
        out=$(mktemp -d "$cache/.qemu-user.XXXXXX")
        e2e_log "fetching qemu-user from $E2E_QEMU_SUITE"
        # (nspawn --ephemeral says it "can't allow" removing its propagation
        # directory as it exits: that is its own clean-up, kept in the log.)
        if systemd-nspawn -D "$rootfs" --ephemeral --register=no --keep-unit -q \
            --bind="$out:/out" --setenv=DEBIAN_FRONTEND=noninteractive sh -euc '
                apt-get update -q
                cd /out && apt-get download -q -o APT::Sandbox::User=root qemu-user' \
            >"$cache/qemu-user.log" 2>&1 &&
            dpkg-deb -x "$out"/qemu-user_*.deb "$out/x"; then
            rm -rf "$dir"
            mv -T "$out/x" "$dir"
            basename "$out"/qemu-user_*.deb >"$dir/PACKAGE"
        else
            rc=1
        fi
        rm -rf "$out"
    fi
    exec {lock}>&-
    ((rc == 0)) || { e2e_die "cannot fetch qemu-user from $E2E_QEMU_SUITE (log: $cache/qemu-user.log)" || return; }
    printf '%s\n' "$dir"
}

E2E_BINFMT=/proc/sys/fs/binfmt_misc
E2E_BINFMT_MOUNTED=""
E2E_BINFMT_REGISTERED=()

# The ELF magic and mask of an architecture, as Debian's qemu-user registers them.
e2e_binfmt_magic() {
    case $1 in
    arm64) echo '\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff' ;;
    armhf) echo '\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff' ;;
    esac
}

# Registers trixie's qemu-user for ARCH with binfmt_misc, under a name of
# our own (fakeups-e2e-ARCH), flags O (qemu gets the binary open), P (keep
# argv[0]) and F (the interpreter
# is opened now, so it works inside the container's root). A newer entry
# wins over older ones for the same magic. Mounts binfmt_misc when it is
# not. e2e_binfmt_remove undoes exactly this.
e2e_binfmt_register() {
    local arch=$1 qemu name
    qemu=$(e2e_qemu_dir) || return
    name=fakeups-e2e-$arch
    if [[ ! -e $E2E_BINFMT/register ]]; then
        mount -t binfmt_misc binfmt_misc "$E2E_BINFMT" || { e2e_die "cannot mount binfmt_misc" || return; }
        E2E_BINFMT_MOUNTED=yes
    fi
    [[ -e $E2E_BINFMT/$name ]] && echo -1 >"$E2E_BINFMT/$name"
    printf ':%s:M::%s:%s:OPF\n' "$name" "$(e2e_binfmt_magic "$arch")" \
        "$qemu/usr/libexec/qemu-binfmt/$(e2e_qemu_name "$arch")-binfmt-P" >"$E2E_BINFMT/register" ||
        { e2e_die "cannot register $name with binfmt_misc" || return; }
    E2E_BINFMT_REGISTERED+=("$name")
    e2e_log "binfmt_misc: $name -> qemu-user from $(<"$qemu/PACKAGE")"
}

# Removes the entries e2e_binfmt_register made, and unmounts binfmt_misc if
# it mounted it. Safe to call twice and from a trap.
e2e_binfmt_remove() {
    local name
    for name in "${E2E_BINFMT_REGISTERED[@]}"; do
        [[ -e $E2E_BINFMT/$name ]] && echo -1 >"$E2E_BINFMT/$name"
    done
    E2E_BINFMT_REGISTERED=()
    if [[ -n $E2E_BINFMT_MOUNTED ]]; then
        umount "$E2E_BINFMT" 2>/dev/null || true
        E2E_BINFMT_MOUNTED=""
    fi
}

# Writes into ROOTFS of RELEASE the drop-ins that booting it under qemu-user
# needs (see the top of this file), each naming why.
e2e_qemu_dropins() {
    local root=$1 release=$2 d
    d=$root/etc/systemd/system/service.d
    mkdir -p "$d" "$root/etc/systemd/system/fakeups.service.d"
    cat >"$d/zz-qemu-user.conf" <<'CONF'
# Only for booting this test rootfs under qemu-user (fakeups' e2e test):
# qemu's clone() refuses namespace flags, so systemd can set up no
# credentials for a unit (sysusers, tmpfiles, journald failed with
# 243/CREDENTIALS).
[Service]
LoadCredential=
ImportCredential=
CONF
    # (A name of its own: a drop-in of the same name in service.d would be
    # masked by this one.)
    cat >"$root/etc/systemd/system/fakeups.service.d/zz-qemu-user-ipc.conf" <<'CONF'
# Only under qemu-user (fakeups' e2e test): qemu's clone() refuses
# CLONE_NEWIPC ("Failed to set up IPC namespacing: Input/output error").
[Service]
PrivateIPC=no
CONF
    if [[ $release != bookworm ]]; then
        cat >>"$d/zz-qemu-user.conf" <<'CONF'
# systemd 257 under qemu-user: qemu's statx() gives mount id 0, so systemd
# skips pivot_root into a unit's new mount namespace and fails it with
# 226/NAMESPACE. Every directive that needs a mount namespace is lifted.
ProtectSystem=no
ProtectHome=no
PrivateTmp=no
PrivateDevices=no
ProtectKernelTunables=no
ProtectKernelModules=no
ProtectKernelLogs=no
ProtectControlGroups=no
ProtectProc=default
PrivateIPC=no
PrivateMounts=no
ReadWritePaths=
ReadOnlyPaths=
InaccessiblePaths=
ExecPaths=
NoExecPaths=
BindPaths=
BindReadOnlyPaths=
TemporaryFileSystem=
CONF
    fi
}
