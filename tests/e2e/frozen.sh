#!/bin/bash
# The end-to-end test of issue 11, item 1: a stopped fakeups must not leave
# NUT serving a frozen status for ever. Boots a fresh RELEASE container
# (amd64 only: run.sh calls it after its own test), installs fakeups 0.1.0
# (built from git commit OLD_COMMIT by that commit's packaging scripts,
# cached outside the repository), points a real upsmon at the three UPS
# names, and measures:
#   before: 0.1.0 stopped, NUT still serves OL and upsmon never complains;
#   the upgrade to DEB: no gap in what upsd answers, no COMMBAD, the
#     ups.conf lines follow the new path (or, edited by hand, are printed),
#     the old path becomes a link;
#   after: COMMBAD within 30 s of `systemctl stop`, of a final failure (exit
#     78, exit 77, systemd's start limit) and of `apt remove`; NUT serving
#     again within 10 s of a start; no gap and no COMMBAD across `systemctl
#     restart` and `kill -9` of the daemon; purge gives NUT its files back.
# The two releases take different paths through the upgrade and fail in
# different ways (see below), so that each path is taken once.
#
# Usage (root): tests/e2e/frozen.sh bookworm|trixie path/to/fakeups_VERSION_amd64.deb
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

# The last commit of fakeups 0.1.0, which kept the data file in /var/lib.
OLD_COMMIT=02ef41c
OLD_DATA_FILE=/var/lib/fakeups/fakeups.dev
NEW_DATA_FILE=/run/fakeups/fakeups.dev
NAMES="fakeups qnapups ups"
# What the issue allows: NUT stops serving within 30 s of a stop or a final
# failure, and serves again within 10 s of a start.
COMMBAD_WITHIN=30
SERVE_WITHIN=10
# How long 0.1.0 is watched after its stop (longer than COMMBAD_WITHIN and
# a few upsmon polls).
BEFORE_WATCH=45

release=${1:-}
deb=${2:-}
case $release in bookworm | trixie) ;; *) echo "usage: $0 bookworm|trixie DEB" >&2; exit 2 ;; esac
[[ -f $deb ]] || { echo "usage: $0 bookworm|trixie DEB (no file '$deb')" >&2; exit 2; }
E2E_ARCH=$(dpkg-deb -f "$deb" Architecture)
export E2E_ARCH

# bookworm: the "before" figure; the admin had edited fakeups.toml, so dpkg
#   keeps it and it still names the old data file (read as the new one);
#   the admin had edited ups.conf too, so it is left alone and the lines to
#   change are printed; the final failure is exit 78.
# trixie (the base of today's Raspberry Pi OS): fakeups.toml is replaced by
#   the new one; ups.conf is as fakeups 0.1.0 wrote it, so its port lines
#   follow the data file and purge gives NUT its originals back; the final
#   failures are exit 77 and systemd's start limit.
case $release in
bookworm) BEFORE=yes CONFIG_KEPT=yes UPS_CONF_EDITED=yes FAILURES="78" ;;
trixie) BEFORE=no CONFIG_KEPT=no UPS_CONF_EDITED=no FAILURES="77 start-limit" ;;
esac

t0=$(e2e_now)
ok() { echo "e2e-frozen[$release] $(e2e_elapsed "$t0" "$(e2e_now)")s ok: $*"; }
info() { echo "e2e-frozen[$release] info: $*"; }
# A figure for the issue's "before and after".
figure() { echo "e2e-frozen[$release] FIGURE: $*"; }
fail() {
    echo "e2e-frozen[$release] FAIL: $*" >&2
    if [[ -n ${E2E_PID:-} ]]; then
        echo "--- journalctl -u fakeups -u nut-monitor -u 'nut-driver@*' (last 40 lines):" >&2
        e2e_exec journalctl -u fakeups -u nut-monitor -u 'nut-driver@*' --no-pager -n 40 >&2 2>&1 || true
    fi
    exit 1
}
# Skips with a reason, or fails under CI=true.
skip() {
    if [[ ${CI:-} == true ]]; then fail "cannot run under CI=true: $*"; fi
    echo "SKIPPED e2e-frozen[$release]: $*"
    exit 0
}
in_ct() {
    local out
    out=$(e2e_exec "$@" 2>&1) || fail "'$*' failed: $out"
    printf '%s\n' "$out"
}
# Seconds (one decimal) since the epoch time $1.
since() { e2e_elapsed "$1" "$(e2e_now)"; }

# What upsd answers for ups.status of NAME ("Error: ..." when it serves none).
ups_status() {
    local out
    out=$(e2e_exec upsc "$1@localhost" ups.status 2>&1) || true
    grep -v '^Init SSL' <<<"$out" || true
}
# The answers for the three names on one line.
all_status() {
    local n line=""
    for n in $NAMES; do line+="$(ups_status "$n")|"; done
    printf '%s\n' "$line"
}
# Waits up to SECONDS for all three names to be served OL; prints the time taken.
wait_served() {
    local seconds=$1 start deadline got
    start=$(e2e_now)
    deadline=$((SECONDS + seconds + 1))
    while ((SECONDS <= deadline)); do
        got=$(all_status)
        if [[ $got == "OL|OL|OL|" ]]; then
            since "$start"
            return 0
        fi
        sleep 0.1
    done
    echo "waited ${seconds}s for OL from all three names; upsd says '$got'" >&2
    return 1
}
# Waits up to SECONDS (from epoch time START) for upsd to serve no status
# for any of the three names; prints the time since START.
wait_not_served() {
    local start=$1 seconds=$2 got n
    while :; do
        got=$(all_status)
        n=$(grep -o 'Error: ' <<<"$got" | wc -l)
        if ((n == 3)); then
            since "$start"
            return 0
        fi
        awk -v s="$(since "$start")" -v m="$seconds" 'BEGIN { exit !(s > m) }' && break
        sleep 0.1
    done
    echo "upsd still answers '$got' ${seconds}s on" >&2
    return 1
}

# upsmon's journal since the epoch time $1.
upsmon_log() { e2e_exec journalctl -u nut-monitor --no-pager -q -o cat --since "@${1%.*}" 2>&1 || true; }
# How many of the three names upsmon said WORD for (lost: COMMBAD,
# established: COMMOK) since epoch time $1 (the journal is read first and
# grepped after: never a pipe into a quiet grep under pipefail).
upsmon_count() {
    local log n count=0
    log=$(upsmon_log "$1")
    for n in $NAMES; do
        grep -q "Communications with UPS $n@localhost $2" <<<"$log" && count=$((count + 1))
    done
    echo "$count"
}
# Waits until upsmon logged COMMBAD for all three names, at most
# COMMBAD_WITHIN s after epoch time START (journal lines are stamped to the
# second: the mark is taken one second early); prints the time since START.
wait_commbad() {
    local start=$1 mark
    mark=$(awk -v s="$start" 'BEGIN { printf "%d", s - 1 }')
    while :; do
        if [[ $(upsmon_count "$mark" lost) == 3 ]]; then
            since "$start"
            return 0
        fi
        awk -v s="$(since "$start")" -v m="$COMMBAD_WITHIN" 'BEGIN { exit !(s > m) }' && break
        sleep 0.3
    done
    echo "upsmon did not log COMMBAD for all three names within ${COMMBAD_WITHIN}s:" >&2
    upsmon_log "$mark" >&2
    return 1
}
# Waits up to 15 s for upsmon to talk to all three again (COMMOK since epoch
# time $1), so that the next loss is logged again.
wait_commok() {
    local mark deadline=$((SECONDS + 15))
    mark=$(awk -v s="$1" 'BEGIN { printf "%d", s - 1 }')
    until [[ $(upsmon_count "$mark" established) == 3 ]]; do
        ((SECONDS < deadline)) || { upsmon_log "$mark" >&2; return 1; }
        sleep 0.3
    done
}
# No COMMBAD since epoch time $1.
assert_no_commbad() {
    local log
    log=$(upsmon_log "$(awk -v s="$1" 'BEGIN { printf "%d", s - 1 }')")
    if grep -q "Communications with UPS .* lost" <<<"$log"; then
        fail "upsmon lost the UPS during $2: $log"
    fi
}

# The sampler: inside the container, upsc for each of the three names, then
# 0.1 s of sleep, over and over (each name is asked about every 0.13 s);
# each answer that is not OL is written down with its time.
SAMPLER_PID=""
sampler_start() {
    SAMPLER_T0=$(e2e_now)
    e2e_exec rm -f /var/tmp/samples.stop
    e2e_exec sh /var/tmp/sample-ups.sh /var/tmp/samples.log /var/tmp/samples.stop &
    SAMPLER_PID=$!
    sleep 0.5
}
# Stops the sampler (in this shell, which started it); fails naming WHAT
# when any answer was not OL; sets ANSWERS to the number of answers and
# EVERY to the mean time between two answers for one name.
sampler_check() {
    local what=$1 log
    e2e_exec touch /var/tmp/samples.stop
    wait "$SAMPLER_PID" || true
    SAMPLER_PID=""
    log=$(in_ct cat /var/tmp/samples.log)
    grep -q '^answers ' <<<"$log" || fail "the sampler did not finish: $log"
    if grep -qv '^answers ' <<<"$log"; then
        fail "upsd did not answer OL all through $what: $(head -n 20 <<<"$log")"
    fi
    ANSWERS=$(sed -n 's/^answers //p' <<<"$log")
    EVERY=$(awk -v d="$(since "$SAMPLER_T0")" -v n="$ANSWERS" 'BEGIN { printf "%.2f", n ? 3 * d / n : 0 }')
}

main_pid() { e2e_exec systemctl show -p MainPID --value fakeups; }
driver_pids() { e2e_exec systemctl show -p MainPID --value nut-driver@fakeups nut-driver@qnapups nut-driver@ups | xargs; }
nut_sums() { e2e_exec sha256sum /etc/nut/nut.conf /etc/nut/ups.conf /etc/nut/upsd.conf /etc/nut/upsd.users; }
# The unit counts every start towards StartLimitBurst= (5 a minute); this
# test starts it more often than a person would, so the count starts afresh
# before each case (reset-failed resets it).
fresh_start_count() { in_ct systemctl reset-failed fakeups >/dev/null 2>&1 || true; }
# Starts fakeups after a loss and checks NUT serves again within
# SERVE_WITHIN s; sets TOOK to the time taken.
start_again() {
    local start
    fresh_start_count
    start=$(e2e_now)
    in_ct systemctl start fakeups >/dev/null
    TOOK=$(wait_served "$SERVE_WITHIN") || fail "NUT does not serve OL again within ${SERVE_WITHIN}s of $1"
    wait_commok "$start" || fail "upsmon did not talk to the three names again after $1"
}

[[ $(id -u) == 0 ]] || { echo "e2e-frozen: needs root" >&2; exit 1; }
if e2e_foreign; then skip "runs on this machine's architecture only ($(e2e_host_arch), not $E2E_ARCH)"; fi
repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null) || skip "not in a git checkout: cannot build fakeups 0.1.0"
git -C "$repo" rev-parse -q --verify "$OLD_COMMIT^{commit}" >/dev/null ||
    skip "the checkout lacks commit $OLD_COMMIT (a shallow clone?): cannot build fakeups 0.1.0"
old_deb=$(e2e_old_deb "$repo" "$OLD_COMMIT") || fail "cannot build fakeups 0.1.0 from $OLD_COMMIT"
[[ $(dpkg-deb -f "$old_deb" Version) == 0.1.0-1 ]] || fail "$old_deb is not fakeups 0.1.0-1"
new_version=$(dpkg-deb -f "$deb" Version)
dpkg --compare-versions "$new_version" gt 0.1.0-1 || fail "$deb ($new_version) is not newer than 0.1.0-1"

trap 'e2e_shutdown' EXIT
trap 'exit 130' INT TERM HUP
e2e_rootfs "$release" >/dev/null || fail "no rootfs"
e2e_netns_auto || fail "no network namespace"
e2e_boot "$release" "$E2E_NETNS" || fail "boot failed"
ok "booted $release (${E2E_BOOT_SECONDS:-?}s); before: $BEFORE; fakeups.toml kept: $CONFIG_KEPT; ups.conf edited: $UPS_CONF_EDITED; final failures: $FAILURES"

# ---------------------------------------------------------------- fakeups 0.1.0 and upsmon
pristine=$(nut_sums)
in_old=$(e2e_copy_in "$old_deb")
in_new=$(e2e_copy_in "$deb")
out=$(e2e_exec apt-get install -y "$in_old" 2>&1) || fail "installing 0.1.0 failed: $out"
grep -q "fakeups: configured NUT" <<<"$out" || fail "0.1.0 did not configure NUT: $out"
wait_served 20 >/dev/null || fail "0.1.0 does not serve OL"
ok "fakeups 0.1.0 (from $OLD_COMMIT) installed: upsd serves OL for $NAMES from $OLD_DATA_FILE"

cat >"/proc/$E2E_PID/root/var/tmp/sample-ups.sh" <<'EOF'
#!/bin/sh
# sample-ups.sh LOG STOP: asks upsd for ups.status of the three names every
# 0.1 s until the file STOP exists; writes each answer that is not OL.
: >"$1"
n=0
while [ ! -e "$2" ]; do
    for u in fakeups qnapups ups; do
        r=$(upsc "$u@localhost" ups.status 2>&1 | grep -v '^Init SSL')
        n=$((n + 1))
        [ "$r" = OL ] || echo "$(date +%s.%3N) $u: $r" >>"$1"
    done
    sleep 0.1
done
echo "answers $n" >>"$1"
EOF
password=$(in_ct cat /etc/fakeups/nut-password)
# A secondary upsmon as a NAS runs it, one MONITOR per name with that name's
# user; POLLFREQ stays at its default (5 s). It must not shut the container
# down, and tells its events to syslog only.
in_ct sh -c "cat >/etc/nut/upsmon.conf <<EOF
MONITOR fakeups@localhost 1 fakeups $password secondary
MONITOR qnapups@localhost 1 admin 123456 secondary
MONITOR ups@localhost 1 monuser secret secondary
MINSUPPLIES 1
SHUTDOWNCMD \"/bin/echo upsmon would shut down now\"
NOTIFYFLAG COMMBAD SYSLOG
NOTIFYFLAG COMMOK SYSLOG
NOTIFYFLAG NOCOMM SYSLOG
NOTIFYFLAG ONLINE SYSLOG
NOTIFYFLAG ONBATT SYSLOG
NOTIFYFLAG LOWBATT SYSLOG
EOF
chown root:nut /etc/nut/upsmon.conf && chmod 640 /etc/nut/upsmon.conf" >/dev/null
in_ct systemctl restart nut-monitor >/dev/null
# upsmon is logged in to every name (upsd's LIST CLIENT) once it polled.
deadline=$((SECONDS + 20))
logged_in() {
    local n
    for n in $NAMES; do
        [[ $(e2e_exec upsc -c "$n@localhost" 2>/dev/null) =~ ^[0-9a-f.:]+$ ]] || return 1
    done
}
until logged_in; do
    ((SECONDS < deadline)) || fail "upsmon did not log in to the three names: $(upsmon_log 0)"
    sleep 0.3
done
ok "upsmon ($(e2e_exec upsmon -V 2>&1 | grep -o 'upsmon [0-9.]*' | head -n 1)) watches $NAMES as a secondary"

# ---------------------------------------------------------------- before
if [[ $BEFORE == yes ]]; then
    start=$(e2e_now)
    in_ct systemctl stop fakeups >/dev/null
    sampler_start
    sleep "$BEFORE_WATCH"
    sampler_check "the ${BEFORE_WATCH}s after stopping fakeups 0.1.0"
    assert_no_commbad "$start" "the ${BEFORE_WATCH}s after stopping 0.1.0 (unexpected: 0.1.0 froze)"
    figure "before (0.1.0): ${BEFORE_WATCH}s after 'systemctl stop fakeups' upsd still served OL for all three names ($ANSWERS answers, one per name every ${EVERY}s, none missing) and upsmon logged no COMMBAD: frozen"
    ok "0.1.0 stopped: NUT goes on serving OL (${BEFORE_WATCH}s watched), no COMMBAD"
    fresh_start_count
    in_ct systemctl start fakeups >/dev/null
fi

# ---------------------------------------------------------------- the upgrade
apt_opts=()
if [[ $CONFIG_KEPT == yes ]]; then
    # An admin's edit: dpkg keeps the file, which names the old data file.
    in_ct sed -i 's/^on-battery-after = .*/on-battery-after = "40s"/' /etc/fakeups/fakeups.toml >/dev/null
    apt_opts=(-o Dpkg::Options::=--force-confold)
fi
if [[ $UPS_CONF_EDITED == yes ]]; then
    in_ct sh -c 'echo "# checked by the admin" >>/etc/nut/ups.conf' >/dev/null
fi
ups_conf_before=$(in_ct sha256sum /etc/nut/ups.conf)
drivers=$(driver_pids)
start=$(e2e_now)
sampler_start
out=$(e2e_exec apt-get install -y "${apt_opts[@]}" "$in_new" 2>&1) || fail "the upgrade failed: $out"
upgrade_took=$(since "$start")
# Long enough for upsmon to poll each name at least once after the upgrade.
sleep 6
sampler_check "the upgrade"
assert_no_commbad "$start" "the upgrade"
[[ $(driver_pids) == "$drivers" ]] || fail "the upgrade restarted NUT's drivers: $drivers, now $(driver_pids)"
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
[[ $(e2e_exec dpkg-query -W -f '${Version}' fakeups) == "$new_version" ]] || fail "fakeups is not $new_version after the upgrade"
in_ct test -s "$NEW_DATA_FILE" >/dev/null
[[ $(e2e_exec readlink "$OLD_DATA_FILE") == "$NEW_DATA_FILE" ]] ||
    fail "$OLD_DATA_FILE is not a link to $NEW_DATA_FILE: $(e2e_exec ls -l "$OLD_DATA_FILE" 2>&1)"
ports=$(in_ct sh -c 'grep -E "^[[:space:]]*port[[:space:]]*=" /etc/nut/ups.conf')
grep -q "\"data_file\": *\"$NEW_DATA_FILE\"" <<<"$(in_ct fakeupsctl status --json)" ||
    fail "the daemon does not write $NEW_DATA_FILE: $(in_ct fakeupsctl status --json)"
if [[ $CONFIG_KEPT == yes ]]; then
    in_ct grep -q "^data-file = \"$OLD_DATA_FILE\"" /etc/fakeups/fakeups.toml >/dev/null
    in_ct grep -q '^on-battery-after = "40s"' /etc/fakeups/fakeups.toml >/dev/null
    grep -q "fakeups/fakeups.toml sets data-file = \"$OLD_DATA_FILE\"" <<<"$out" ||
        fail "the upgrade did not say the kept configuration names the old path: $out"
    detail="fakeups.toml kept (names $OLD_DATA_FILE, read as $NEW_DATA_FILE)"
else
    in_ct grep -q "^data-file = \"$NEW_DATA_FILE\"" /etc/fakeups/fakeups.toml >/dev/null
    detail="fakeups.toml replaced"
fi
if [[ $UPS_CONF_EDITED == yes ]]; then
    [[ $(in_ct sha256sum /etc/nut/ups.conf) == "$ups_conf_before" ]] || fail "the upgrade changed an edited ups.conf"
    n=$(grep -c "fakeups:   /etc/nut/ups.conf:[0-9]*:  port = $OLD_DATA_FILE" <<<"$out" || true)
    ((n == 3)) || fail "the upgrade did not print the 3 lines to change: $out"
    grep -q "'port = $NEW_DATA_FILE'" <<<"$out" || fail "the upgrade did not say what to write: $out"
    detail+="; edited ups.conf left alone (still $OLD_DATA_FILE, now a link), the 3 lines to change printed"
else
    grep -q "/etc/nut/ups.conf now reads it there" <<<"$out" || fail "the upgrade did not say ups.conf follows: $out"
    [[ $ports == "$(printf '  port = %s\n  port = %s\n  port = %s' "$NEW_DATA_FILE" "$NEW_DATA_FILE" "$NEW_DATA_FILE")" ]] ||
        fail "ups.conf's port lines are not the new path: $ports"
    [[ $(in_ct cat /var/backups/fakeups-nut/ups.conf.sha256) == "$(in_ct sha256sum /etc/nut/ups.conf | cut -d' ' -f1)" ]] ||
        fail "the checksum purge relies on is not ups.conf's"
    # NUT's enumerator was kept from restarting the drivers for the change.
    log=$(e2e_exec journalctl -u nut-driver-enumerator --no-pager -q -o cat --since "@${start%.*}")
    ! grep -q "Dropping old" <<<"$log" || fail "NUT's enumerator dropped drivers for the new port lines: $log"
    detail+="; ups.conf's 3 port lines now $NEW_DATA_FILE, checksum recorded anew"
fi
figure "upgrade 0.1.0 -> $new_version: 0 of $ANSWERS answers missing (one per name every ${EVERY}s, through the ${upgrade_took}s of apt and 6 s after), no COMMBAD, NUT's drivers not restarted"
ok "upgrade to $new_version: no gap, no COMMBAD, drivers kept; $detail"
info "postinst said: $(grep '^fakeups:' <<<"$out" | tr '\n' ' ')"

# ---------------------------------------------------------------- restart, kill -9: no gap
fresh_start_count
pid=$(main_pid)
drivers=$(driver_pids)
start=$(e2e_now)
sampler_start
in_ct systemctl restart fakeups >/dev/null
[[ $(main_pid) != "$pid" ]] || fail "systemctl restart left the same pid"
sleep 6
sampler_check "systemctl restart fakeups"
assert_no_commbad "$start" "systemctl restart"
[[ $(driver_pids) == "$drivers" ]] || fail "systemctl restart fakeups restarted NUT's drivers"
figure "systemctl restart fakeups: 0 of $ANSWERS answers missing (one per name every ${EVERY}s), no COMMBAD, NUT's drivers not restarted"
ok "systemctl restart fakeups: no gap, no COMMBAD"

fresh_start_count
pid=$(main_pid)
drivers=$(driver_pids)
start=$(e2e_now)
sampler_start
in_ct kill -9 "$pid" >/dev/null
deadline=$((SECONDS + 20))
until new=$(main_pid) && [[ $new != "$pid" && $new != 0 && $(e2e_exec systemctl is-active fakeups) == active ]]; do
    ((SECONDS < deadline)) || fail "not running again within 20s of kill -9"
    sleep 0.2
done
back=$(since "$start")
sleep 6
sampler_check "kill -9 of the daemon and its restart"
assert_no_commbad "$start" "kill -9 and Restart=on-failure"
[[ $(driver_pids) == "$drivers" ]] || fail "a kill -9 of the daemon restarted NUT's drivers"
figure "kill -9 of the daemon: running again after ${back}s (RestartSec=5s); 0 of $ANSWERS answers missing (one per name every ${EVERY}s), no COMMBAD, NUT's drivers not restarted"
ok "kill -9: Restart=on-failure after ${back}s, no gap, no COMMBAD"

# ---------------------------------------------------------------- stop, start
start=$(e2e_now)
in_ct systemctl stop fakeups >/dev/null
gone=$(wait_not_served "$start" "$COMMBAD_WITHIN") || fail "NUT still serves after systemctl stop"
commbad=$(wait_commbad "$start") || fail "no COMMBAD within ${COMMBAD_WITHIN}s of systemctl stop"
in_ct test ! -e /run/fakeups >/dev/null
sleep 1
start_again "systemctl start"
figure "after ($new_version): 'systemctl stop fakeups': upsd answers 'Driver not connected' for all three after ${gone}s, upsmon COMMBAD for all three after ${commbad}s; 'systemctl start': OL again after ${TOOK}s"
ok "systemctl stop: not served after ${gone}s, COMMBAD after ${commbad}s; systemctl start: OL after ${TOOK}s"

# ---------------------------------------------------------------- final failures
in_ct cp /etc/fakeups/fakeups.toml /var/tmp/fakeups.toml.good >/dev/null
if [[ " $FAILURES " == *" 78 "* ]]; then
    # Exit 78: a broken configuration, then a restart.
    in_ct sh -c 'printf "[detection]\nquorum = \"most\"\n" >/etc/fakeups/fakeups.toml' >/dev/null
    fresh_start_count
    start=$(e2e_now)
    e2e_exec systemctl restart fakeups >/dev/null 2>&1 && fail "a restart with a broken configuration succeeded"
    [[ $(e2e_exec systemctl show -p ExecMainStatus --value fakeups) == 78 ]] ||
        fail "the daemon did not exit 78: $(e2e_exec systemctl show -p ExecMainStatus,Result fakeups | xargs)"
    commbad=$(wait_commbad "$start") || fail "no COMMBAD within ${COMMBAD_WITHIN}s of exit 78"
    in_ct cp /var/tmp/fakeups.toml.good /etc/fakeups/fakeups.toml >/dev/null
    start_again "a start after exit 78"
    figure "exit 78 (broken configuration, systemctl restart): COMMBAD for all three after ${commbad}s; fixed and started: OL after ${TOOK}s"
    ok "exit 78: COMMBAD after ${commbad}s; started again: OL after ${TOOK}s"
fi

if [[ " $FAILURES " == *" 77 "* ]]; then
    # Exit 77: no ICMP socket, neither raw (the capability is taken away by
    # an admin's drop-in) nor datagram (no group may, in the container's
    # own network namespace).
    in_ct sh -c 'mkdir -p /etc/systemd/system/fakeups.service.d &&
        printf "[Service]\nAmbientCapabilities=\nCapabilityBoundingSet=\n" >/etc/systemd/system/fakeups.service.d/no-net-raw.conf &&
        systemctl daemon-reload' >/dev/null
    range=$(ip netns exec "$E2E_NETNS" sysctl -n net.ipv4.ping_group_range)
    ip netns exec "$E2E_NETNS" sysctl -q -w net.ipv4.ping_group_range="1 0"
    fresh_start_count
    start=$(e2e_now)
    e2e_exec systemctl restart fakeups >/dev/null 2>&1 && fail "a restart without any ICMP socket succeeded"
    [[ $(e2e_exec systemctl show -p ExecMainStatus --value fakeups) == 77 ]] ||
        fail "the daemon did not exit 77: $(e2e_exec systemctl show -p ExecMainStatus,Result fakeups | xargs)"
    commbad=$(wait_commbad "$start") || fail "no COMMBAD within ${COMMBAD_WITHIN}s of exit 77"
    ip netns exec "$E2E_NETNS" sysctl -q -w net.ipv4.ping_group_range="$range"
    in_ct sh -c 'rm /etc/systemd/system/fakeups.service.d/no-net-raw.conf && systemctl daemon-reload' >/dev/null
    start_again "a start after exit 77"
    figure "exit 77 (no ICMP socket): COMMBAD for all three after ${commbad}s; started again: OL after ${TOOK}s"
    ok "exit 77: COMMBAD after ${commbad}s; started again: OL after ${TOOK}s"
fi

if [[ " $FAILURES " == *" start-limit "* ]]; then
    # systemd's start limit: a daemon that fails at every start with a status
    # that allows a restart (73: the control socket cannot be made) keeps
    # its data file while systemd tries again, until 5 starts in a minute.
    in_ct sed -i 's|^socket = .*|socket = "/etc/fakeups/control.sock"|' /etc/fakeups/fakeups.toml >/dev/null
    fresh_start_count
    start=$(e2e_now)
    e2e_exec systemctl restart fakeups >/dev/null 2>&1 && fail "a start that cannot make its control socket succeeded"
    # (Result= stays exit-code; systemd says why in the journal.)
    deadline=$((SECONDS + 60))
    until [[ $(e2e_exec systemctl show -p ActiveState --value fakeups) == failed ]]; do
        ((SECONDS < deadline)) || fail "not failed for good within 60s: $(e2e_exec systemctl show -p Result,NRestarts,ActiveState fakeups | xargs)"
        sleep 0.2
    done
    limit_t=$(e2e_now)
    limit=$(since "$start")
    restarts=$(e2e_exec systemctl show -p NRestarts --value fakeups)
    log=$(e2e_exec journalctl -u fakeups --no-pager -q -o cat --since "@${start%.*}")
    grep -q "Start request repeated too quickly" <<<"$log" || fail "fakeups failed, but not for its start limit: $log"
    commbad=$(wait_commbad "$limit_t") || fail "no COMMBAD within ${COMMBAD_WITHIN}s of the start limit"
    in_ct cp /var/tmp/fakeups.toml.good /etc/fakeups/fakeups.toml >/dev/null
    start_again "a start after the start limit"
    figure "crash loop (exit 73 at every start): start limit hit ${limit}s after the first failure ($restarts restarts), COMMBAD for all three ${commbad}s after that; started again: OL after ${TOOK}s"
    ok "start limit: hit after ${limit}s, COMMBAD ${commbad}s later; started again: OL after ${TOOK}s"
fi

# ---------------------------------------------------------------- remove, install again
start=$(e2e_now)
out=$(e2e_exec apt-get remove -y fakeups 2>&1) || fail "apt remove failed: $out"
commbad=$(wait_commbad "$start") || fail "no COMMBAD within ${COMMBAD_WITHIN}s of apt remove"
start=$(e2e_now)
out=$(e2e_exec apt-get install -y "$in_new" 2>&1) || fail "installing again failed: $out"
wait_served "$SERVE_WITHIN" >/dev/null || fail "NUT does not serve OL within ${SERVE_WITHIN}s of installing again"
TOOK=$(since "$start")
wait_commok "$start" || fail "upsmon did not talk to the three names again after installing again"
figure "apt remove: COMMBAD for all three after ${commbad}s; apt install again: OL after ${TOOK}s (from the start of apt)"
ok "apt remove: COMMBAD after ${commbad}s; installed again: OL after ${TOOK}s"

# ---------------------------------------------------------------- purge
out=$(e2e_exec apt-get purge -y fakeups 2>&1) || fail "apt purge failed: $out"
if [[ $UPS_CONF_EDITED == yes ]]; then
    grep -q "/etc/nut/ups.conf was changed after fakeups set it up" <<<"$out" || fail "purge did not keep the edited ups.conf: $out"
    [[ $(grep -v ups.conf <<<"$(nut_sums)") == "$(grep -v ups.conf <<<"$pristine")" ]] ||
        fail "purge did not restore NUT's other files"
    ok "apt purge: the edited ups.conf kept (original beside it), the other three restored"
else
    [[ $(nut_sums) == "$pristine" ]] || fail "purge did not give NUT its original files back after the migration"
    ok "apt purge: NUT's four files are the originals again (the checksum recorded by the upgrade held)"
fi
left=$(e2e_exec sh -c "ls -d /var/lib/fakeups /run/fakeups 2>/dev/null" || true)
[[ -z $left ]] || fail "purge left: $left"

echo "e2e-frozen[$release] PASS in $(since "$t0")s"
