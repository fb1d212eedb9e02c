# shellcheck shell=bash
# Plumbing for end-to-end tests in a *booted* systemd Debian container.
# Source it (needs root, debootstrap, systemd-container, iproute2):
#
#   . tests/e2e/lib.sh
#   trap e2e_shutdown EXIT
#   e2e_netns_auto              # sets E2E_NETNS, E2E_INDEX (10.231.I.0/24)
#   e2e_boot trixie "$E2E_NETNS"
#   e2e_exec systemctl is-system-running
#   e2e_exec apt-get install -y "$(e2e_copy_in fakeups.deb)"
#
# One container per shell: e2e_boot keeps its state in E2E_* variables, so
# call it in the script's own shell, never in $(...) (the container is tied to
# the shell that booted it and halts when that shell dies). Containers in
# different shells may run at once (own netns index, cgroup, scratch dir).
# Environment:
#   E2E_ARCH            the architecture to boot (arm64, armhf; default this
#                       machine's), under qemu-user: see foreign.sh
#   FAKEUPS_E2E_CACHE   where pristine rootfs trees live (/var/cache/fakeups-e2e)
#   FAKEUPS_E2E_MIRROR  Debian mirror; default: read from this machine's apt config
#   FAKEUPS_E2E_EXTRA_PACKAGES  more packages to preinstall (space separated)
#   FAKEUPS_E2E_COPY    overlay (default) | reflink | ephemeral: how a boot gets
#                       its throwaway copy of the rootfs
#   FAKEUPS_E2E_BOOT_TIMEOUT  seconds to wait for the container's systemd (120)
#   FAKEUPS_E2E_CGROUP  unified (default, like real Debian) | hybrid (like this host)
#   FAKEUPS_E2E_CONSOLE read-only (default: boot messages reach the log) | pipe
#                       (no /dev/console in the container: the log stays empty)
#   FAKEUPS_E2E_LOG_DIR keep the console log there (console-RELEASE.log); else
#                       it is removed with the container
#
# Network safety: the container only ever lives in a namespace of our own with
# one veth pair on 10.231.I.0/24; forwarding is switched off on the host side
# of the veth and IPv6 is off on it, so nothing it sends can leave that link.
# Only the rootfs build (debootstrap, apt-get) talks to the distro mirror, from
# the host's network, as apt on the host does.

E2E_LIB_VERSION=6
E2E_BASE_INCLUDE="systemd,systemd-sysv,dbus"
# shellcheck source=foreign.sh
. "$(dirname "${BASH_SOURCE[0]}")/foreign.sh"
# curl: the event hook of run.sh reaches upsd with it, as a notification would.
E2E_PACKAGES="iproute2 procps iputils-ping nut-server nut-client logrotate curl"

# Prints a message on stderr.
e2e_log() { printf 'e2e: %s\n' "$*" >&2; }

# Prints an error on stderr and returns 1.
e2e_die() { printf 'e2e: ERROR: %s\n' "$*" >&2; return 1; }

# Prints seconds since the epoch with milliseconds.
e2e_now() { date +%s.%3N; }

# Prints B - A (two e2e_now values) in seconds, one decimal.
e2e_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# Prints the cache directory for pristine rootfs trees.
e2e_cache_dir() { printf '%s\n' "${FAKEUPS_E2E_CACHE:-/var/cache/fakeups-e2e}"; }

# Prints the Debian archive URI this machine's apt uses (first enabled "deb"
# source with a plain release suite), or FAKEUPS_E2E_MIRROR when set.
e2e_mirror() {
    local uri=""
    if [[ -n ${FAKEUPS_E2E_MIRROR:-} ]]; then
        printf '%s\n' "$FAKEUPS_E2E_MIRROR"
        return 0
    fi
    shopt -s nullglob
    local sources=(/etc/apt/sources.list.d/*.sources) lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
    shopt -u nullglob
    if ((${#sources[@]})); then
        # deb822 stanzas: Types has deb, Suites has a suite without "-", not disabled.
        uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; suites = ""; uris = ""; enabled = "yes"
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^[ \t]*#/) continue
                    split($i, kv, ":"); key = tolower(kv[1]); val = substr($i, length(kv[1]) + 2)
                    if (key == "types") types = val
                    else if (key == "suites") suites = val
                    else if (key == "uris") uris = val
                    else if (key == "enabled") enabled = val
                }
                if (enabled ~ /no/ || (" " types " ") !~ /[ \t]deb[ \t]/) next
                if ((" " suites " ") !~ /[ \t][a-z]+[ \t]/) next
                split(uris, u, " "); if (u[1] != "") { print u[1]; exit }
            }' "${sources[@]}")
    fi
    if [[ -z $uri ]]; then
        uri=$(cat "${lists[@]}" 2>/dev/null | awk '
            $1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                          if ($(i + 1) ~ /^[a-z]+$/) { print $i; exit } }')
    fi
    [[ -n $uri ]] || { e2e_die "no Debian mirror found in /etc/apt (set FAKEUPS_E2E_MIRROR)"; return 1; }
    printf '%s\n' "${uri%/}"
}

# Prints the packages preinstalled into the rootfs with apt-get.
e2e_packages() { printf '%s\n' "$E2E_PACKAGES ${FAKEUPS_E2E_EXTRA_PACKAGES:-}" | xargs; }

# Prints the architecture to boot.
e2e_arch() { printf '%s\n' "${E2E_ARCH:-$(e2e_host_arch)}"; }

# Prints the cache key of RELEASE for the architecture to boot: the release
# for this machine's, RELEASE-ARCH for another.
e2e_key() {
    if e2e_foreign; then printf '%s-%s\n' "$1" "$(e2e_arch)"; else printf '%s\n' "$1"; fi
}

# Prints the stamp that identifies how a rootfs for RELEASE was built.
e2e_stamp() {
    printf 'lib=%s release=%s arch=%s variant=minbase include=%s packages=%s\n' \
        "$E2E_LIB_VERSION" "$1" "$(e2e_arch)" "$E2E_BASE_INCLUDE" "$(e2e_packages)"
}

# Unmounts everything mounted below DIR, deepest first (leftovers of a killed build).
e2e_umount_below() {
    local dir mp
    dir=$(realpath -m "$1")
    awk -v d="$dir/" 'index($5 "/", d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r mp; do umount -l "$mp" 2>/dev/null || true; done
}

# Removes DIR (a build or boot scratch directory) without crossing mounts.
e2e_remove_tree() {
    [[ -n $1 && -e $1 ]] || return 0
    e2e_umount_below "$1"
    rm -rf --one-file-system -- "$1"
}

# Prints the mount points of the cgroup2 and name=systemd hierarchies.
e2e_cgroup_roots() {
    awk '{ split($0, a, " - "); split(a[2], b, " ")
           if (b[1] == "cgroup2" || (b[1] == "cgroup" && b[3] ~ /name=systemd/)) print $5 }' /proc/self/mountinfo
}

# Moves this process into a fresh cgroup NAME when the host has no systemd,
# then execs CMD...; call it in a subshell or with &. nspawn then puts its
# payload/ and supervisor/ cgroups under NAME instead of the shared root, so
# containers do not collide and e2e_cgroup_remove can clean up after them.
e2e_cgroup_exec() {
    local name=$1 root
    shift
    if [[ ! -d /run/systemd/system ]]; then
        for root in $(e2e_cgroup_roots); do
            mkdir -p "$root/$name"
            echo "$BASHPID" >"$root/$name/cgroup.procs"
        done
    fi
    exec "$@"
}

# Removes cgroup NAME (made by e2e_cgroup_exec) and its empty children.
e2e_cgroup_remove() {
    local root
    [[ -n $1 ]] || return 0
    for root in $(e2e_cgroup_roots); do
        [[ -d $root/$1 ]] && find "$root/$1" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}

# Prints the path of the pristine rootfs for RELEASE (bookworm|trixie),
# building it on first use, or when the package list changed, under a lock.
e2e_rootfs() {
    local release=$1 cache dir want lock rc=0 key
    case $release in bookworm | trixie) ;; *) e2e_die "unknown release '$release'" || return ;; esac
    cache=$(e2e_cache_dir)
    key=$(e2e_key "$release")
    dir=$cache/$key
    want=$(e2e_stamp "$release")
    if [[ -f $dir/stamp && $(<"$dir/stamp") == "$want" ]]; then
        printf '%s\n' "$dir/rootfs"
        return 0
    fi
    mkdir -p "$cache"
    exec {lock}>"$cache/.$key.lock"
    flock "$lock"
    if ! [[ -f $dir/stamp && $(<"$dir/stamp") == "$want" ]]; then
        e2e_build_rootfs "$release" "$cache" "$want" || rc=$?
    fi
    exec {lock}>&-
    ((rc == 0)) || return "$rc"
    printf '%s\n' "$dir/rootfs"
}

# Builds CACHE/RELEASE atomically: debootstrap + apt-get into a scratch
# directory, then rename. Call with the release lock held. Logs to CACHE/RELEASE.log.
e2e_build_rootfs() {
    local release=$1 cache=$2 stamp=$3 mirror tmp old log t0 pkgs cg key arch foreign=""
    local -a packages
    mirror=$(e2e_mirror) || return
    key=$(e2e_key "$release")
    arch=$(e2e_arch)
    e2e_foreign && foreign=yes
    log=$cache/$key.log
    # Scratch trees of a build that was killed: we hold the lock, so they are dead.
    for old in "$cache"/.build-"$key".* "$cache"/.old-"$key".*; do
        [[ -e $old ]] && { e2e_log "removing stale $old"; e2e_remove_tree "$old"; }
    done
    tmp=$(mktemp -d "$cache/.build-$key.XXXXXX")
    pkgs=$(e2e_packages)
    read -r -a packages <<<"$pkgs"
    e2e_log "building $release $arch rootfs from $mirror (log: $log)"
    t0=$(e2e_now)
    if ! (
        set -euo pipefail
        trap 'exit 130' INT TERM HUP
        cg=fakeups-e2e-build.$BASHPID
        trap 'rc=$?; e2e_cgroup_remove "$cg"; ((rc == 0)) || e2e_remove_tree "$tmp"' EXIT
        # Another architecture runs through binfmt_misc (registered by the
        # caller with e2e_binfmt_register), so one stage is enough.
        debootstrap --arch="$arch" --variant=minbase --include="$E2E_BASE_INCLUDE" --components=main \
            "$release" "$tmp/rootfs" "$mirror"
        [[ -z $foreign ]] || e2e_qemu_dropins "$tmp/rootfs" "$release"
        echo "fakeups-$release" >"$tmp/rootfs/etc/hostname"
        printf '127.0.0.1\tlocalhost\n127.0.1.1\tfakeups-%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
            "$release" >"$tmp/rootfs/etc/hosts"
        # Host network, for apt only: the booted containers never get it.
        (e2e_cgroup_exec "$cg" \
            systemd-nspawn -D "$tmp/rootfs" --register=no --keep-unit -q \
            --setenv=DEBIAN_FRONTEND=noninteractive sh -euc '
                apt-get update -q
                apt-get install -y -q --no-install-recommends "$@"
                apt-get clean
                rm -rf /var/lib/apt/lists/*' sh "${packages[@]}")
        # The containers are offline: no resolver, no periodic apt runs.
        rm -f "$tmp/rootfs/etc/resolv.conf"
        echo "# offline fakeups e2e container: no DNS" >"$tmp/rootfs/etc/resolv.conf"
        ln -sf /dev/null "$tmp/rootfs/etc/systemd/system/apt-daily.timer"
        ln -sf /dev/null "$tmp/rootfs/etc/systemd/system/apt-daily-upgrade.timer"
        printf '%s\n' "$stamp" >"$tmp/stamp"
    ) >"$log" 2>&1; then
        e2e_remove_tree "$tmp"
        tail -n 20 "$log" >&2
        e2e_die "building the $release rootfs failed (log: $log)"
        return 1
    fi
    if [[ -e $cache/$key ]]; then
        old=$(mktemp -u "$cache/.old-$key.XXXXXX")
        mv -T "$cache/$key" "$old"
    fi
    mv -T "$tmp" "$cache/$key"
    [[ -z ${old:-} ]] || e2e_remove_tree "$old"
    E2E_BUILD_SECONDS=$(e2e_elapsed "$t0" "$(e2e_now)")
    export E2E_BUILD_SECONDS
    e2e_log "built $release $arch rootfs in ${E2E_BUILD_SECONDS}s"
}

# ------------------------------------------------------------------ an older package

# Prints the path of this machine's .deb as commit REV of the repository at
# REPO built it: that commit's tree (git archive), built by its own
# packaging/build-deb.sh --host. Built on first use under a lock and cached
# in CACHE/debs/COMMIT-ARCH, outside the repository, as the rootfs trees
# are; the build's log is CACHE/debs/COMMIT-ARCH.log. Fails when REPO does
# not hold the commit (a shallow clone).
e2e_old_deb() {
    local repo=$1 rev=$2 commit arch cache dir lock rc=0
    commit=$(git -C "$repo" rev-parse -q --verify "$rev^{commit}") ||
        { e2e_die "$repo holds no commit $rev (a shallow clone?)"; return 1; }
    arch=$(e2e_host_arch)
    cache=$(e2e_cache_dir)/debs
    dir=$cache/$commit-$arch
    if ! compgen -G "$dir/*_$arch.deb" >/dev/null; then
        mkdir -p "$cache"
        exec {lock}>"$cache/.$commit-$arch.lock"
        flock "$lock"
        compgen -G "$dir/*_$arch.deb" >/dev/null || e2e_build_old_deb "$repo" "$commit" "$arch" "$dir" || rc=$?
        exec {lock}>&-
        ((rc == 0)) || return "$rc"
    fi
    compgen -G "$dir/*_$arch.deb"
}

# Builds the .deb of COMMIT for ARCH into DIR; call with its lock held.
e2e_build_old_deb() {
    local repo=$1 commit=$2 arch=$3 dir=$4 tmp log t0 deb
    log=$dir.log
    for tmp in "$dir".build.*; do [[ -e $tmp ]] && e2e_remove_tree "$tmp"; done
    tmp=$(mktemp -d "$dir.build.XXXXXX")
    e2e_log "building the $arch package of ${commit:0:7} (log: $log)"
    t0=$(e2e_now)
    # Its own target directory: the caller's CARGO_TARGET_DIR holds this
    # tree's build, which the older one must not reuse or overwrite.
    if ! (
        set -euo pipefail
        mkdir "$tmp/src"
        git -C "$repo" archive --format=tar "$commit" | tar -x -C "$tmp/src"
        cd "$tmp/src"
        env -u CARGO_TARGET_DIR packaging/build-deb.sh --host
    ) >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        e2e_remove_tree "$tmp"
        e2e_die "building the package of ${commit:0:7} failed (log: $log)"
        return 1
    fi
    deb=$(compgen -G "$tmp/src/target/debian/*_$arch.deb") || { e2e_die "no .deb in $tmp/src/target/debian"; return 1; }
    mkdir -p "$dir.new"
    cp "$deb" "$dir.new/"
    rm -rf "$dir"
    mv -T "$dir.new" "$dir"
    e2e_remove_tree "$tmp"
    e2e_log "built $(basename "$deb") from ${commit:0:7} in $(e2e_elapsed "$t0" "$(e2e_now)")s"
}

# ------------------------------------------------------------------ netns

# Creates netns NAME with veth NAME-h (host, 10.231.INDEX.1/24) and NAME-n
# (namespace, 10.231.INDEX.2/24, default route via .1) and the host guard
# route "blackhole 10.231.INDEX.0/24 metric 4000". Fails if NAME exists.
e2e_netns_create() {
    local ns=$1 i=$2 h="$1-h" n="$1-n"
    [[ ${#ns} -le 13 ]] || { e2e_die "netns name '$ns' too long (max 13)" || return; }
    if ! [[ $i =~ ^[0-9]+$ ]] || ((i > 255)); then e2e_die "bad index '$i'" || return; fi
    [[ -z $(ip route show "10.231.$i.0/24") ]] || { e2e_die "10.231.$i.0/24 is in use on the host" || return; }
    ip netns add "$ns" || return
    if ! {
        ip link add "$h" type veth peer name "$n" netns "$ns" &&
            echo 0 >"/proc/sys/net/ipv4/conf/$h/forwarding" &&
            echo 1 >"/proc/sys/net/ipv6/conf/$h/disable_ipv6" &&
            ip addr add "10.231.$i.1/24" brd + dev "$h" &&
            ip link set "$h" up &&
            ip -n "$ns" addr add "10.231.$i.2/24" brd + dev "$n" &&
            ip -n "$ns" link set "$n" up &&
            ip -n "$ns" link set lo up &&
            ip -n "$ns" route add default via "10.231.$i.1" &&
            ip route add blackhole "10.231.$i.0/24" metric 4000
    }; then
        e2e_netns_delete "$ns"
        e2e_die "setting up netns $ns failed"
        return 1
    fi
}

# Deletes netns NAME, its veth pair and its guard route; quiet if already gone.
e2e_netns_delete() {
    local ns=$1 net
    net=$(ip -n "$ns" -4 -o addr show dev "$ns-n" 2>/dev/null | awk '{ print $4 }')
    [[ -n $net ]] || net=$(ip -4 -o addr show dev "$ns-h" 2>/dev/null | awk '{ print $4 }')
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$ns-h" 2>/dev/null || true
    if [[ -n $net ]]; then
        net=$(awk -F'[./]' '{ printf "%s.%s.%s.0/24", $1, $2, $3 }' <<<"$net")
        ip route del blackhole "$net" metric 4000 2>/dev/null || true
    fi
}

# Creates a netns named fue2e<I> on the first free INDEX in 251..254 (the Rust
# tests use 1..199, the benchmark 200..249), after clearing leftovers of
# killed runs; sets E2E_NETNS and E2E_INDEX.
e2e_netns_auto() {
    local i
    e2e_remove_stale_boots
    for i in 251 252 253 254; do
        # A guard route without its namespace is left from a run killed
        # while deleting it: not in use, so it goes.
        if [[ ! -e /run/netns/fue2e$i ]]; then
            ip route del blackhole "10.231.$i.0/24" metric 4000 2>/dev/null || true
        fi
        [[ -z $(ip route show "10.231.$i.0/24") ]] || continue
        if e2e_netns_create "fue2e$i" "$i" 2>/dev/null; then
            export E2E_NETNS=fue2e$i E2E_INDEX=$i
            return 0
        fi
    done
    e2e_die "no free netns index in 251..254"
}

# Cuts the link of NAME (namespace side down): the gateway stops answering.
e2e_netns_cut() { ip -n "$1" link set "$1-n" down; }

# Restores the link of NAME and its default route (which went with the link).
e2e_netns_restore() {
    local gw
    ip -n "$1" link set "$1-n" up
    gw=$(ip -4 -o addr show dev "$1-h" | awk '{ split($4, a, "/"); print a[1] }')
    ip -n "$1" route replace default via "$gw"
}

# ------------------------------------------------------------------ container

# Prints the PID (host view) of the container init below nspawn PID, if any.
e2e_find_init() {
    local p c
    for p in $(ps -o pid= --ppid "$1") ; do
        for c in "$p" $(ps -o pid= --ppid "$p"); do
            if awk '$1 == "NSpid:" && $NF == 1 && NF > 2 { f = 1 } END { exit !f }' \
                "/proc/$c/status" 2>/dev/null; then
                printf '%s\n' "$c"
                return 0
            fi
        done
    done
    return 1
}

# Prints the start time (clock ticks since boot) of PID, to tell it from a reused PID.
e2e_pid_start() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }

# True while PID is alive and still the process that started at START.
e2e_pid_is() { [[ -n $1 && -n $2 && $(e2e_pid_start "$1") == "$2" ]]; }

# Removes boot scratch directories whose nspawn is gone (a run that was SIGKILLed).
e2e_remove_stale_boots() {
    local d pid start r c
    for d in "$(e2e_cache_dir)"/.boot-*; do
        [[ -d $d ]] || continue
        read -r pid start <"$d/nspawn.pid" 2>/dev/null || { pid="" start=""; }
        # No pid file yet: maybe a boot in progress elsewhere; leave it for an hour.
        if [[ -z $pid ]] && [[ -z $(find "$d" -maxdepth 0 -mmin +60) ]]; then continue; fi
        e2e_pid_is "$pid" "$start" && continue
        e2e_log "removing stale $d"
        [[ ! -s $d/netns ]] || e2e_netns_delete "$(<"$d/netns")"
        e2e_remove_tree "$d"
        e2e_cgroup_remove "fakeups-e2e.${d##*.}"
    done
    # Cgroups left by a boot whose scratch directory is gone, or by a dead build.
    for r in $(e2e_cgroup_roots); do
        for c in "$r"/fakeups-e2e.* "$r"/fakeups-e2e-build.*; do
            [[ -d $c ]] || continue
            case ${c##*/} in
            fakeups-e2e.*) compgen -G "$(e2e_cache_dir)/.boot-*.${c##*.}" >/dev/null && continue ;;
            *) kill -0 "${c##*.}" 2>/dev/null && continue ;;
            esac
            e2e_cgroup_remove "${c##*/}"
        done
    done
}

# Boots a throwaway copy of the RELEASE rootfs in netns NETNS in the
# background and waits for its systemd to be running or degraded. Sets
# E2E_NSPAWN_PID, E2E_PID (container's PID 1), E2E_WORK, E2E_CONSOLE_LOG,
# E2E_BOOT_SECONDS.
e2e_boot() {
    local release=$1 netns=$2 rootfs mode=${FAKEUPS_E2E_COPY:-overlay} t0 deadline state root
    [[ -z ${E2E_NSPAWN_PID:-} ]] || { e2e_die "a container is already running (pid $E2E_NSPAWN_PID)" || return; }
    [[ -e /run/netns/$netns ]] || { e2e_die "no netns $netns" || return; }
    rootfs=$(e2e_rootfs "$release") || return
    e2e_remove_stale_boots
    t0=$(e2e_now)
    E2E_NETNS=$netns
    E2E_WORK=$(mktemp -d "$(e2e_cache_dir)/.boot-$release.XXXXXX")
    E2E_CONSOLE_LOG=$E2E_WORK/console.log
    E2E_CGROUP=fakeups-e2e.${E2E_WORK##*.}
    echo "$netns" >"$E2E_WORK/netns"
    if [[ -n ${FAKEUPS_E2E_LOG_DIR:-} ]]; then
        mkdir -p "$FAKEUPS_E2E_LOG_DIR"
        E2E_CONSOLE_LOG=$FAKEUPS_E2E_LOG_DIR/console-$release.log
    fi
    local -a copy=()
    case $mode in
    overlay)
        mkdir "$E2E_WORK"/{upper,work,root}
        mount -t overlay overlay \
            -o "lowerdir=$rootfs,upperdir=$E2E_WORK/upper,workdir=$E2E_WORK/work" "$E2E_WORK/root"
        root=$E2E_WORK/root ;;
    reflink)
        cp -a --reflink=auto "$rootfs" "$E2E_WORK/root"
        root=$E2E_WORK/root ;;
    ephemeral)
        root=$rootfs copy=(--ephemeral) ;;
    *) e2e_die "FAKEUPS_E2E_COPY must be overlay, reflink or ephemeral" || return ;;
    esac
    # Real bookworm/trixie systems run the unified cgroup v2 hierarchy; without
    # this, nspawn copies this host's hybrid v1 setup (trixie: "tainted: cgroupsv1").
    [[ ${FAKEUPS_E2E_CGROUP:-unified} == hybrid ]] || export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
    # If this shell dies (even SIGKILL), nspawn gets SIGTERM and halts the
    # container; the next e2e_boot then removes the leftovers.
    e2e_cgroup_exec "$E2E_CGROUP" setpriv --pdeathsig TERM \
        systemd-nspawn -D "$root" "${copy[@]}" -b --register=no --keep-unit \
        --console="${FAKEUPS_E2E_CONSOLE:-read-only}" --machine="fakeups-$release" \
        --network-namespace-path="/run/netns/$netns" --resolv-conf=off --link-journal=no \
        </dev/null >"$E2E_CONSOLE_LOG" 2>&1 &
    E2E_NSPAWN_PID=$!
    E2E_NSPAWN_START=$(e2e_pid_start "$E2E_NSPAWN_PID")
    echo "$E2E_NSPAWN_PID $E2E_NSPAWN_START" >"$E2E_WORK/nspawn.pid"
    deadline=$((SECONDS + ${FAKEUPS_E2E_BOOT_TIMEOUT:-120}))
    E2E_PID=""
    while [[ -z $E2E_PID ]]; do
        E2E_PID=$(e2e_find_init "$E2E_NSPAWN_PID") && break
        if ! e2e_pid_is "$E2E_NSPAWN_PID" "$E2E_NSPAWN_START" || ((SECONDS >= deadline)); then
            e2e_boot_failed "nspawn did not start a container"
            return 1
        fi
        sleep 0.1
    done
    E2E_PID_START=$(e2e_pid_start "$E2E_PID")
    # Under qemu-user "degraded" can also mean that no unit could start at
    # all: there the journal's daemon must be running too (the first unit
    # that fails when qemu-user cannot give systemd what it needs).
    local basics=""
    while :; do
        state=$(nsenter -t "$E2E_PID" -a systemctl is-system-running 2>/dev/null) || true
        if [[ $state == running || $state == degraded ]]; then
            e2e_foreign || break
            basics=$(nsenter -t "$E2E_PID" -a systemctl is-active systemd-journald.service 2>/dev/null) || true
            [[ $basics == active ]] && break
        fi
        e2e_pid_is "$E2E_PID" "$E2E_PID_START" ||
            { e2e_boot_failed "the container's systemd died (state '$state')"; return 1; }
        ((SECONDS < deadline)) ||
            { e2e_boot_failed "the container's systemd is '$state' after ${FAKEUPS_E2E_BOOT_TIMEOUT:-120}s"; return 1; }
        sleep 0.2
    done
    E2E_BOOT_SECONDS=$(e2e_elapsed "$t0" "$(e2e_now)")
    e2e_log "$release booted in ${E2E_BOOT_SECONDS}s ($state; mode $mode; pid $E2E_PID; console $E2E_CONSOLE_LOG)"
}

# Reports a failed boot with the end of the console log, then cleans up.
e2e_boot_failed() {
    e2e_log "boot failed: $1; console log:"
    tail -n 30 "$E2E_CONSOLE_LOG" >&2 || true
    e2e_shutdown
    return 1
}

# Runs CMD... inside the booted container (all its namespaces), with a clean
# environment; returns its exit code.
e2e_exec() {
    [[ -n ${E2E_PID:-} ]] || { e2e_die "no container booted" || return; }
    nsenter -t "$E2E_PID" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 TERM=dumb HOME=/root "$@"
}

# Copies FILE into the container's /var/tmp and prints its path there.
e2e_copy_in() {
    local dest
    [[ -n ${E2E_PID:-} ]] || { e2e_die "no container booted" || return; }
    dest=/var/tmp/$(basename "$1")
    cp -- "$1" "/proc/$E2E_PID/root$dest"
    printf '%s\n' "$dest"
}

# Kills (SIGKILL) every process in cgroup NAME and below: only what we started.
e2e_cgroup_kill() {
    local root f pid
    [[ -n $1 ]] || return 0
    for root in $(e2e_cgroup_roots); do
        [[ -d $root/$1 ]] || continue
        if [[ -e $root/$1/cgroup.kill ]]; then
            echo 1 >"$root/$1/cgroup.kill" 2>/dev/null && continue
        fi
        while read -r f; do
            while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$f"
        done < <(find "$root/$1" -name cgroup.procs)
    done
}

# True while the container's nspawn or its init is still alive.
e2e_alive() {
    e2e_pid_is "${E2E_NSPAWN_PID:-}" "${E2E_NSPAWN_START:-}" || e2e_pid_is "${E2E_PID:-}" "${E2E_PID_START:-}"
}

# Waits up to SECONDS for the container to be gone; false if it is still alive.
e2e_wait_gone() {
    local deadline=$((SECONDS + $1))
    while e2e_alive && ((SECONDS < deadline)); do sleep 0.1; done
    ! e2e_alive
}

# Stops the container (poweroff, then SIGKILL after 20 s), removes its copy and
# deletes its netns. Safe to call twice and from a trap. Sets E2E_SHUTDOWN_SECONDS.
e2e_shutdown() {
    local t0
    t0=$(e2e_now)
    if [[ -n ${E2E_NSPAWN_PID:-} ]]; then
        if [[ -z ${E2E_PID:-} ]] && E2E_PID=$(e2e_find_init "$E2E_NSPAWN_PID"); then
            E2E_PID_START=$(e2e_pid_start "$E2E_PID")
        fi
        if e2e_pid_is "${E2E_PID:-}" "${E2E_PID_START:-}"; then
            # A clean poweroff; SIGRTMIN+4 where systemctl cannot (qemu-user
            # shifts real-time signals, so not as the first choice).
            nsenter -t "$E2E_PID" -a systemctl poweroff --no-block >/dev/null 2>&1 ||
                kill -s RTMIN+4 "$E2E_PID" 2>/dev/null || true
        else
            kill -TERM "$E2E_NSPAWN_PID" 2>/dev/null || true
        fi
        if ! e2e_wait_gone 20; then
            e2e_log "container did not stop in 20s: killing it"
            if e2e_pid_is "${E2E_PID:-}" "${E2E_PID_START:-}"; then kill -KILL "$E2E_PID" 2>/dev/null; fi
            e2e_cgroup_kill "${E2E_CGROUP:-}"
            if e2e_pid_is "$E2E_NSPAWN_PID" "$E2E_NSPAWN_START"; then kill -KILL "$E2E_NSPAWN_PID" 2>/dev/null; fi
            if ! e2e_wait_gone 5; then
                e2e_log "ERROR: container still alive (nspawn $E2E_NSPAWN_PID, init ${E2E_PID:-?}); keeping ${E2E_WORK:-}"
                return 1
            fi
        fi
        wait "$E2E_NSPAWN_PID" 2>/dev/null || true
        E2E_SHUTDOWN_SECONDS=$(e2e_elapsed "$t0" "$(e2e_now)")
        e2e_log "container stopped in ${E2E_SHUTDOWN_SECONDS}s"
    fi
    E2E_NSPAWN_PID="" E2E_PID="" E2E_NSPAWN_START="" E2E_PID_START=""
    e2e_cgroup_remove "${E2E_CGROUP:-}"
    E2E_CGROUP=""
    if [[ -n ${E2E_NETNS:-} ]]; then
        e2e_netns_delete "$E2E_NETNS"
        E2E_NETNS=""
    fi
    if [[ -n ${E2E_WORK:-} ]]; then
        e2e_remove_tree "$E2E_WORK"
        E2E_WORK=""
    fi
    return 0
}
