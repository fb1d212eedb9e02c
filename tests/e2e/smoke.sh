#!/bin/bash
# Smoke test of the e2e plumbing: boots RELEASE (bookworm|trixie) in a fresh
# network namespace, checks systemd, the veth gateway (and an outage of it) and
# the preinstalled NUT, prints facts the e2e test relies on, and shuts down.
# Usage (root): tests/e2e/smoke.sh bookworm|trixie
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

release=${1:-}
case $release in bookworm | trixie) ;; *) echo "usage: $0 bookworm|trixie" >&2; exit 2 ;; esac

# Prints a failure and exits non-zero (the EXIT trap cleans up).
fail() { echo "smoke[$release]: FAIL: $*" >&2; exit 1; }

# Prints a passed check.
ok() { echo "smoke[$release]: ok: $*"; }

# Prints a fact (not a check).
info() { echo "smoke[$release]: info: $*"; }

# True when the container reaches GW with one ping, retried up to 3 times.
ping_gw() {
    local try
    for try in 1 2 3; do
        e2e_exec ping -n -c1 -W1 "$1" >/dev/null 2>&1 && return 0
        [[ $try == 3 ]] || sleep 0.3
    done
    return 1
}

[[ $(id -u) == 0 ]] || fail "needs root"
trap e2e_shutdown EXIT
trap 'exit 130' INT TERM HUP
t_start=$(e2e_now)

E2E_BUILD_SECONDS=""
e2e_rootfs "$release" >/dev/null || fail "no rootfs"
build=${E2E_BUILD_SECONDS:+${E2E_BUILD_SECONDS}s (cold)}
build=${build:-cached}

e2e_netns_auto || fail "no network namespace"
gw=10.231.$E2E_INDEX.1
e2e_boot "$release" "$E2E_NETNS" || fail "boot failed"
t_checks=$(e2e_now)

state=$(e2e_exec systemctl is-system-running) || true
case $state in
running) ok "systemd is running" ;;
degraded) ok "systemd is degraded; failed units: $(e2e_exec systemctl --failed --plain --no-legend | awk '{ print $1 }' | xargs)" ;;
*) fail "systemd is '$state'" ;;
esac

links=$(e2e_exec ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | xargs)
[[ $links == "lo $E2E_NETNS-n" ]] || fail "container sees links '$links', want 'lo $E2E_NETNS-n'"
addrs=$(e2e_exec ip -4 -o addr show dev "$E2E_NETNS-n")
grep -q "10.231.$E2E_INDEX.2/24" <<<"$addrs" || fail "container has no 10.231.$E2E_INDEX.2/24"
route=$(e2e_exec ip route show default)
[[ $route == "default via $gw dev $E2E_NETNS-n"* ]] || fail "default route is '$route'"
ok "container sees only lo and $E2E_NETNS-n, 10.231.$E2E_INDEX.2/24, $route"

[[ $(</proc/sys/net/ipv4/conf/"$E2E_NETNS"-h/forwarding) == 0 ]] || fail "forwarding is on for $E2E_NETNS-h"
ok "host does not forward from $E2E_NETNS-h (the container cannot reach past $gw)"
ping_gw "$gw" || fail "ping $gw from the container failed"
ok "ping $gw answers"
e2e_netns_cut "$E2E_NETNS"
! e2e_exec ping -n -c1 -W1 "$gw" >/dev/null 2>&1 || fail "ping $gw answered with the link cut"
ok "link cut: ping $gw fails"
e2e_netns_restore "$E2E_NETNS"
ping_gw "$gw" || fail "ping $gw failed after restoring the link"
ok "link restored: ping $gw answers"

upsd=$(e2e_exec dpkg -L nut-server | grep '/nut/upsd$') || fail "nut-server ships no upsd"
e2e_exec test -x "$upsd" || fail "$upsd is not executable"
ok "nut-server ships $upsd"
e2e_exec upsc -V >/dev/null 2>&1 || fail "upsc -V failed"
ok "$(e2e_exec upsc -V 2>&1 | head -n1)"
info "nut.conf: $(e2e_exec grep -E '^MODE' /etc/nut/nut.conf)"
for u in nut-server nut-driver.target nut-monitor; do
    info "$u: $(e2e_exec systemctl is-enabled "$u" 2>&1 | head -n1)," \
        "$(e2e_exec systemctl is-active "$u" 2>&1 | head -n1)"
done
# shellcheck disable=SC2016 # dpkg-query format, not shell
info "versions: $(e2e_exec dpkg-query -W -f '${Package}=${Version} ' systemd nut-server nut-client)"
gid=$(e2e_exec getent group nut | cut -d: -f3)
info "nut gid: container $gid, host $(getent group nut | cut -d: -f3 || echo none);" \
    "/etc/nut: $(e2e_exec stat -c '%n %U:%G(%g)' /etc/nut/* | awk '{ sub(".*/", "", $1); printf "%s %s; ", $1, $2 }')"
if e2e_exec journalctl -b --no-pager -n 3 -q >/dev/null 2>&1 &&
    [[ -n $(e2e_exec journalctl -b --no-pager -q -n 1) ]]; then
    info "journalctl works ($(e2e_exec journalctl -b --no-pager -q | wc -l) lines this boot)"
else
    info "journalctl does NOT work"
fi
if sec=$(e2e_exec systemd-analyze security --no-pager dbus.service 2>&1); then
    info "systemd-analyze security works: dbus.service $(tail -n1 <<<"$sec")"
else
    info "systemd-analyze security failed: $(tail -n2 <<<"$sec" | xargs)"
fi
t_down=$(e2e_now)
checks=$(e2e_elapsed "$t_checks" "$t_down")

ns=$E2E_NETNS
e2e_shutdown
[[ ! -e /run/netns/$ns ]] || fail "netns $ns left behind"
! ip link show "$ns-h" >/dev/null 2>&1 || fail "veth $ns-h left behind"
[[ -z $(ip route show "10.231.$E2E_INDEX.0/24") ]] || fail "route to 10.231.$E2E_INDEX.0/24 left behind"
echo "smoke[$release]: PASS: rootfs build ${build}, boot ${E2E_BOOT_SECONDS}s, checks ${checks}s," \
    "shutdown ${E2E_SHUTDOWN_SECONDS}s, total $(e2e_elapsed "$t_start" "$(e2e_now)")s"
