#!/bin/bash
# tests/bench/leftovers.sh FAKEUPS_BINARY (root): issue 12 item 6, 50 kill -9 of a daemon on battery (rounds every 200 ms write the data file
# and the state), then one clean start: how many temporary files are left.
# Traffic stays on a veth pair in namespace fub243 (10.231.243.0/24, behind
# a blackhole guard route); the sentinel is cut all along.
set -u
bin=${1:?usage: $0 FAKEUPS_BINARY}
ns=fub243; idx=243
w=$(mktemp -d /tmp/fakeups-leftovers.XXXX); chmod 755 "$w"
pid=; st=
cleanup() {
  [ -n "$st" ] && kill "$st" 2>/dev/null
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  ip netns del $ns 2>/dev/null; ip link del ${ns}h 2>/dev/null
  ip route del blackhole 10.231.$idx.0/24 metric 4000 2>/dev/null
  rm -rf "$w"
}
trap cleanup EXIT
ip netns add $ns; ip link add ${ns}h type veth peer name ${ns}n; ip link set ${ns}n netns $ns
ip addr add 10.231.$idx.1/24 dev ${ns}h; ip link set ${ns}h up
ip netns exec $ns sh -c "ip addr add 10.231.$idx.2/24 dev ${ns}n; ip link set ${ns}n up; ip link set lo up"
ip route add blackhole 10.231.$idx.0/24 metric 4000
cat > $w/fakeups.toml <<EOC
sentinels = ["10.231.$idx.2"]
state-directory = "$w/state"
[detection]
interval = "200ms"
timeout = "150ms"
on-battery-after = "1s"
online-after = "1s"
[battery]
runtime = "1h"
low-runtime = "10m"
[nut]
data-file = "$w/lib/fakeups.dev"
upsd = ""
[log]
file = "$w/fakeups.log"
[control]
socket = "$w/run/control.sock"
EOC
ip netns exec $ns ip link set ${ns}n down
start() { $bin --config $w/fakeups.toml 2>/dev/null & pid=$!; }
start; sleep 2
# Each kill lands between a temporary file's creation and its rename:
# strace holds the next rename at its entry, the kill comes meanwhile.
for i in $(seq 50); do
  strace -f -qq -p $pid -o /dev/null -e trace=rename,renameat,renameat2 \
      -e inject=rename,renameat,renameat2:delay_enter=3000000 2>/dev/null & st=$!
  sleep 0.3
  n0=$(find $w -name '.*.tmp*' | wc -l)
  for t in $(seq 100); do
    [ "$(find $w -name '.*.tmp*' | wc -l)" -gt "$n0" ] && break
    sleep 0.02
  done
  kill -9 $pid; wait $pid 2>/dev/null; kill $st 2>/dev/null; wait $st 2>/dev/null
  start; sleep 0.3
done
kill -9 $pid; wait $pid 2>/dev/null
start; sleep 1.5; kill $pid; wait $pid 2>/dev/null
echo "$bin: leftover temporary files after 50 kills and a start: $(find $w -name '.*.tmp*' | wc -l)"
grep -c "Power lost" $w/fakeups.log | sed 's/^/OB transitions logged: /'
pid=; st=
