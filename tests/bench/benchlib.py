"""Fixtures of the fakeups benchmark: network namespaces with veth pairs,
a real upsd with dummy-ups, the measured processes and the watchers.

Network safety: every address used here is in 10.231.0.0/16 on veth pairs
inside namespaces fub200..fub249 that this module creates, each guarded by a
blackhole route (metric 4000), or on 127.0.0.1. Everything created is also
written, as a shell command that undoes it, to the ledger file named by
$BENCH_LEDGER, so that run.sh can clean up even after a hard kill.
"""

import collections
import ipaddress
import os
import re
import signal
import socket
import subprocess
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------ cleanup

class Cleanup:
    """Undo actions, run in reverse order; each is also in the ledger.
    Stages run in threads (the latency stage measures fakeups and the
    baseline at once), so the stack is only touched under a lock: an index
    handed out by push() always names the caller's own action."""

    def __init__(self):
        self.stack = []
        self.lock = threading.Lock()
        self.ledger = os.environ.get("BENCH_LEDGER")

    def push(self, shell, action=None):
        """`shell` undoes it from run.sh; `action` (default: run `shell`) from here."""
        with self.lock:
            self.stack.append((shell, action))
            if self.ledger:
                with open(self.ledger, "a") as f:
                    f.write(shell + "\n")
            return len(self.stack) - 1

    def run(self, index):
        """Runs one undo action now (e.g. a stage is done with its namespace)."""
        with self.lock:
            shell, action = self.stack[index]
            self.stack[index] = (None, None)
        self._do(shell, action)

    def run_all(self):
        while True:
            with self.lock:
                if not self.stack:
                    break
                shell, action = self.stack.pop()
            self._do(shell, action)
        if self.ledger:
            open(self.ledger, "w").close()

    @staticmethod
    def _do(shell, action):
        if shell is None:
            return
        try:
            if action:
                action()
            else:
                subprocess.run(["sh", "-c", shell], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        except Exception as e:  # cleanup goes on whatever failed
            print(f"cleanup: {shell}: {e}")


CLEANUP = Cleanup()

# Set on SIGTERM/SIGINT: threads still measuring give up at their next step.
STOP = threading.Event()


def pause(seconds):
    """time.sleep that ends early, with an exception, once STOP is set."""
    if STOP.wait(seconds):
        raise RuntimeError("benchmark stopped")


def sh(*args, input=None):
    """Runs a command, fails with its stderr."""
    done = subprocess.run(args, input=input, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def quiet(*args):
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ------------------------------------------------------------------ netns

class NetNs:
    """Namespace fub<I> and a veth pair: host side fub<I>h 10.231.I.1/24,
    namespace side fub<I>n 10.231.I.2/24; blackhole 10.231.I.0/24 metric
    4000 on the host, added first, so a downed link never leaks traffic."""

    def __init__(self, index):
        if not 200 <= index <= 249:
            raise ValueError("benchmark namespaces use indexes 200-249")
        self.name, self.host_if, self.peer_if = f"fub{index}", f"fub{index}h", f"fub{index}n"
        self.host_ip, self.peer_ip = f"10.231.{index}.1", f"10.231.{index}.2"
        self.subnet = f"10.231.{index}.0/24"
        self.routed = []
        undo = (f"ip netns del {self.name}; ip link del {self.host_if}; "
                f"ip route del blackhole {self.subnet} metric 4000")
        quiet("sh", "-c", undo)  # a leftover of an interrupted run
        self.undo = CLEANUP.push(undo, self._delete)
        sh("ip", "route", "add", "blackhole", self.subnet, "metric", "4000")
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if)
        sh("ip", "link", "set", self.peer_if, "netns", self.name)
        sh("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        self.ns("ip", "addr", "add", f"{self.peer_ip}/24", "dev", self.peer_if)
        self.ns("ip", "link", "set", self.peer_if, "up")
        self.ns("ip", "link", "set", "lo", "up")
        self.ns("ip", "route", "add", "default", "via", self.host_ip)

    def ns(self, *args):
        return sh("ip", "netns", "exec", self.name, *args)

    def add_routed(self, net, count):
        """`count` more addresses of `net` (inside 10.231.0.0/16) as /32s on
        the namespace side, routed from the host via the namespace's .2, so
        that the host keeps one neighbour entry whatever the count (the
        host-wide ARP table holds 1024 by default). Guarded by a blackhole
        route for `net` too. Returns the addresses."""
        net = ipaddress.ip_network(net)
        assert net.subnet_of(ipaddress.ip_network("10.231.0.0/16"))
        self.routed.append(str(net))
        quiet("ip", "route", "del", "blackhole", str(net), "metric", "4000")
        # For run.sh's ledger after a kill; _delete() removes it otherwise.
        CLEANUP.push(f"ip route del blackhole {net} metric 4000", lambda: None)
        sh("ip", "route", "add", "blackhole", str(net), "metric", "4000")
        sh("ip", "route", "add", str(net), "via", self.peer_ip, "dev", self.host_if)
        addrs = [str(a) for a in list(net.hosts())[:count]]
        batch = "".join(f"addr add {a}/32 dev {self.peer_if}\n" for a in addrs)
        sh("ip", "-n", self.name, "-batch", "-", input=batch)
        return addrs

    def cut(self):
        """The outage: the namespace drops every ICMP packet it receives,
        so each echo request goes unanswered until its timeout. (A downed
        link instead ends some rounds early with "host unreachable" errors
        once the host's neighbour entry fails, which blurs round timings.)"""
        self.ns("iptables", "-I", "INPUT", "-p", "icmp", "-j", "DROP")

    def restore(self):
        self.ns("iptables", "-D", "INPUT", "-p", "icmp", "-j", "DROP")

    def link_down(self):
        """The outage as a dead router: the namespace side of the link goes
        down (the host side loses its carrier)."""
        self.ns("ip", "link", "set", self.peer_if, "down")

    def link_up(self):
        self.ns("ip", "link", "set", self.peer_if, "up")
        # The default route went with the link; put it back.
        self.ns("ip", "route", "replace", "default", "via", self.host_ip)

    def loss_rule(self, probability):
        """The iptables rule (without -A/-D) that drops each echo request
        reaching the namespace with `probability`."""
        return ["INPUT", "-p", "icmp", "--icmp-type", "echo-request", "-m", "statistic",
                "--mode", "random", "--probability", f"{probability:g}", "-j", "DROP"]

    def drop_randomly(self, probability):
        self.ns("iptables", "-A", *self.loss_rule(probability))

    def stop_dropping(self, probability):
        self.ns("iptables", "-D", *self.loss_rule(probability))

    def _delete(self):
        quiet("ip", "netns", "del", self.name)
        quiet("ip", "link", "del", self.host_if)
        for net in [self.subnet] + self.routed:
            quiet("ip", "route", "del", "blackhole", net, "metric", "4000")

    def delete(self):
        CLEANUP.run(self.undo)


# ------------------------------------------------------------------ processes

def spawn(argv, log=None, env=None):
    """Starts a process (stdout and stderr to `log`); killed at cleanup."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                         env=env)
    if log:
        out.close()
    # From the ledger, only this very process is killed: same PID and the
    # same start time (field 22 of /proc/PID/stat), never a later one that
    # reused the PID.
    start = start_time(p.pid)
    CLEANUP.push(f"[ \"$(sed 's/.*) //' /proc/{p.pid}/stat 2>/dev/null | cut -d' ' -f20)\" "
                 f"= {start} ] && kill {p.pid}", lambda: kill(p))
    return p


def start_time(pid):
    """The start time of a process, in clock ticks since boot."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def kill(p, timeout=5.0):
    """SIGTERM, then SIGKILL after `timeout`, and reap."""
    if p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def descendants(pid):
    """pid and every process below it (needs /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def status_field(pid, key):
    """A `kB` field of /proc/PID/status (VmHWM, VmRSS), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def icmp_socket_kind(pid):
    """'raw' or 'datagram': the kind of ICMP socket a process holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        m = re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
        if m:
            inodes.add(m.group(1))
    kinds = []
    for table, kind in (("raw", "raw"), ("raw6", "raw"), ("icmp", "datagram"),
                        ("icmp6", "datagram")):
        with open(f"/proc/net/{table}") as f:
            if any(line.split()[9] in inodes for line in list(f)[1:] if len(line.split()) > 9):
                kinds.append(kind)
    return "/".join(sorted(set(kinds))) or "none"


def cpu_ns(pid):
    """CPU time of all threads of a process, nanoseconds (schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


class Tree:
    """A measured process tree. CPU, context switches and the largest single
    RSS come from wait4() when it ends: that rusage covers the process, all
    its threads and every child it waited for. The RSS of the tree as a
    whole (the sum over live processes) is sampled every `period`."""

    def __init__(self, argv, log, env=None, period=0.01):
        self.proc = spawn(argv, log, env)
        self.pid = self.proc.pid
        self.started = time.monotonic()
        self.peak_tree = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, args=(period,), daemon=True)
        self._sampler.start()

    def _sample(self, period):
        # A child between fork and exec still runs the parent's image and
        # shares (vfork) or copies its pages: not counted twice.
        image = exe(self.pid)
        while not self._stop.wait(period):
            total = sum(rss_bytes(p) for p in descendants(self.pid)
                        if p == self.pid or exe(p) != image)
            self.peak_tree = max(self.peak_tree, total)

    def stop(self, timeout=10.0):
        """SIGTERM, wait, and the figures of the whole run."""
        hwm = status_field(self.pid, "VmHWM")
        # What the RSS is made of at the end: private memory, and pages of
        # files (the binary, libc: shared, clean, reclaimable).
        anon, file = status_field(self.pid, "RssAnon"), status_field(self.pid, "RssFile")
        try:
            icmp = icmp_socket_kind(self.pid)
        except OSError:
            icmp = "?"
        self._stop.set()
        self._sampler.join()
        self.proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > end:
                self.proc.kill()
                end += 60
            time.sleep(0.01)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return {
            "wall": time.monotonic() - self.started,
            "cpu": ru.ru_utime + ru.ru_stime,
            "user": ru.ru_utime,
            "sys": ru.ru_stime,
            "vcsw": ru.ru_nvcsw,
            "ivcsw": ru.ru_nivcsw,
            "maxrss": ru.ru_maxrss * 1024,
            "hwm": hwm,
            "rss_anon": anon,
            "rss_file": file,
            "peak_tree_sampled": self.peak_tree,
            "exit": self.proc.returncode,
            "icmp_socket": icmp,
        }


# ------------------------------------------------------------------ NUT

def nut_bin():
    """Where this distribution keeps dummy-ups and upsd (2.8.0: /lib/nut)."""
    for d in ("/lib/nut", "/usr/lib/nut"):
        if os.path.exists(f"{d}/dummy-ups") and os.path.exists(f"{d}/upsd"):
            return d
    raise RuntimeError("no dummy-ups/upsd (apt-get install nut-server)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nut:
    """A real upsd on 127.0.0.1 with one dummy-ups driver per UPS name, all
    reading `port_file`. `mode`: dummy-loop with pollinterval 1 (what fakeups
    ships: the file is read again every second) or dummy-once (the file is
    read once, so values set with upsrw stick: what the baseline needs).
    User admin/123456 may SET (for upsrw)."""

    USER, PASSWORD = "admin", "123456"

    def __init__(self, workdir, names, port_file, mode):
        self.bin = nut_bin()
        etc, state = f"{workdir}/etc", f"{workdir}/state"
        os.makedirs(etc, exist_ok=True)
        os.makedirs(state, exist_ok=True)
        os.chmod(workdir, 0o755)
        os.chmod(state, 0o770)
        self.port = free_port()
        poll = "  pollinterval = 1\n" if mode == "dummy-loop" else ""
        with open(f"{etc}/ups.conf", "w") as f:
            for n in names:
                f.write(f"[{n}]\n  driver = dummy-ups\n  port = {port_file}\n"
                        f"  mode = {mode}\n{poll}  desc = \"benchmark\"\n")
        with open(f"{etc}/upsd.conf", "w") as f:
            f.write(f"LISTEN 127.0.0.1 {self.port}\n")
        with open(f"{etc}/upsd.users", "w") as f:
            f.write(f"[{self.USER}]\n  password = {self.PASSWORD}\n  actions = SET\n")
        os.chmod(f"{etc}/upsd.users", 0o600)
        with open(f"{etc}/nut.conf", "w") as f:
            f.write("MODE=standalone\n")
        self.env = dict(os.environ, NUT_CONFPATH=etc, NUT_STATEPATH=state,
                        NUT_ALTPIDPATH=state)
        self.procs = []
        for n in names:
            self.procs.append(spawn([f"{self.bin}/dummy-ups", "-a", n, "-u", "root", "-F"],
                                    f"{workdir}/driver-{n}.log", self.env))
            wait_for(lambda: os.path.exists(f"{state}/dummy-ups-{n}"), 5,
                     f"dummy-ups {n} socket")
        self.procs.append(spawn([f"{self.bin}/upsd", "-u", "root", "-F"],
                                f"{workdir}/upsd.log", self.env))
        wait_for(lambda: upsd_get(self.port, names[0]) not in (None, "WAIT"), 10,
                 f"upsd serving {names[0]}")

    def addr(self):
        return f"127.0.0.1:{self.port}"

    def cpu_ns(self):
        """CPU of the drivers and upsd so far."""
        return sum(cpu_ns(p.pid) for p in self.procs)

    def stop(self):
        for p in reversed(self.procs):
            kill(p)


def upsd_get(port, name):
    """`GET VAR NAME ups.status` over a fresh connection: the value or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET VAR {name} ups.status\n".encode())
            line = s.makefile().readline()
    except OSError:
        return None
    m = re.match(r'VAR \S+ \S+ "(.*)"', line)
    return m.group(1) if m else None


def wait_for(check, timeout, what):
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


# ------------------------------------------------------------------ watchers

class Watch:
    """Polls a value every `period` in a thread and remembers each change
    with the monotonic time of the poll that first saw it."""

    def __init__(self, read, period):
        self.read, self.period = read, period
        self.changes = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        last = object()
        while not self._stop.is_set():
            t = time.monotonic()
            v = self.read()
            if v != last:
                with self._lock:
                    self.changes.append((t, v))
                last = v
            self._stop.wait(self.period)

    def first(self, value, since, timeout):
        """Time of the first change to `value` (or to any of a tuple of
        values) seen at or after `since`."""
        wanted = value if isinstance(value, tuple) else (value,)
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                for t, v in self.changes:
                    if t >= since and v in wanted:
                        return t
            if time.monotonic() > end:
                return None
            pause(0.01)

    def stop(self):
        self._stop.set()
        self._thread.join()


class UpsdWatch(Watch):
    """ups.status of one UPS at upsd, over one persistent TCP connection
    (`GET VAR` every 50 ms: cheaper and steadier than spawning upsc)."""

    def __init__(self, port, name, period=0.05):
        self.port, self.name, self.sock, self.file = port, name, None, None
        super().__init__(self._get, period)

    def _get(self):
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                self.file = self.sock.makefile("r")
            self.sock.sendall(f"GET VAR {self.name} ups.status\n".encode())
            line = self.file.readline()
        except OSError as e:
            self.sock = None
            return f"error: {e}"
        m = re.match(r'VAR \S+ \S+ "(.*)"', line)
        return m.group(1) if m else line.strip()

    def stop(self):
        super().stop()
        if self.sock:
            self.sock.close()


class FileWatch(Watch):
    """ups.status in fakeups' data file, every 10 ms."""

    def __init__(self, path, period=0.01):
        super().__init__(lambda: read_status(path), period)


def read_status(path):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("ups.status: "):
                    return line[12:].strip()
    except OSError:
        pass
    return None


# ------------------------------------------------------------------ fakeups

class NotifySocket:
    """A NOTIFY_SOCKET of our own: keeps what the daemon sends."""

    def __init__(self, path):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
            except (socket.timeout, OSError):
                pass

    def statuses(self):
        return [l[7:] for _, m in list(self.messages) for l in m.splitlines()
                if l.startswith("STATUS=")]

    def wait_ready(self, timeout=15):
        wait_for(lambda: any("READY=1" in m for _, m in list(self.messages)), timeout,
                 "READY=1 from fakeups")

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


def fakeups_config(workdir, sentinels, interval="1s", timeout="500ms",
                   on_battery_after="5s", online_after="3s", runtime="1h",
                   low_runtime="1m", ups=("fakeups", "qnapups", "ups"), level="info",
                   extra=""):
    """A configuration with everything under `workdir`; returns its path."""
    q = lambda items: ", ".join(f'"{i}"' for i in items)
    text = (
        f"sentinels = [{q(sentinels)}]\n"
        f'state-directory = "{workdir}/state"\n'
        f"[detection]\n"
        f'interval = "{interval}"\ntimeout = "{timeout}"\nquorum = "all"\n'
        f'on-battery-after = "{on_battery_after}"\nonline-after = "{online_after}"\n'
        f"[battery]\n"
        f'runtime = "{runtime}"\nlow-runtime = "{low_runtime}"\nrecharge-time = "1h"\n'
        f"[nut]\n"
        f'data-file = "{workdir}/lib/fakeups.dev"\nupsd = ""\nups = [{q(ups)}]\n'
        f"[log]\n"
        f'file = "{workdir}/log/fakeups.log"\nlevel = "{level}"\n'
        f"[control]\n"
        f'socket = "{workdir}/run/control.sock"\n'
        f"{extra}"
    )
    for d in ("state", "lib", "log", "run"):
        os.makedirs(f"{workdir}/{d}", exist_ok=True)
    os.chmod(workdir, 0o755)
    os.chmod(f"{workdir}/lib", 0o755)
    path = f"{workdir}/fakeups.toml"
    with open(path, "w") as f:
        f.write(text)
    return path


def start_fakeups(binary, workdir, config, measured=False):
    """Starts the daemon with our NOTIFY_SOCKET and waits for READY=1.
    Returns (process or Tree, NotifySocket)."""
    notify = NotifySocket(f"{workdir}/notify.sock")
    CLEANUP.push(f"true  # notify socket {workdir}", notify.close)
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)
    env.pop("JOURNAL_STREAM", None)
    argv = [binary, "--config", config]
    log = f"{workdir}/stderr.log"
    proc = Tree(argv, log, env) if measured else spawn(argv, log, env)
    notify.wait_ready()
    return proc, notify


# ------------------------------------------------------------------ perf

# System call numbers the round analysis needs (x86_64, aarch64).
SYSCALLS = {
    # wait: epoll_wait, epoll_pwait, epoll_pwait2; read: recvfrom, recvmsg, getsockname
    "x86_64": {"sendto": 44, "wait": (232, 281, 441), "read": (45, 47, 51)},
    "aarch64": {"sendto": 206, "wait": (22, 441), "read": (207, 212, 204)},
}


def perf_rounds(pid, seconds, out, interval):
    """Round durations of the daemon `pid` from its system calls over
    `seconds` (perf, raw_syscalls tracepoints; the daemon is one thread).

    A round starts when epoll_wait returns for the round timer: the last
    return before the round's first echo request. It ends when the daemon
    blocks after the last system call that finishes the round (today:
    getpid() for the control socket's status report, sd_notify, a data or
    state file written): the first epoll_wait entered after that call.
    Not counted as such a call: sends and reads on the ICMP socket (a raw
    ICMP socket also receives the host's other ICMP traffic, at any time),
    and wake-ups with nothing done (tokio's timer wheel wakes an idle
    runtime early, and it goes back to sleep). A daemon that made no system
    call at the end of a round would show its rounds as ending at the last
    send. (The daemon also logs each round's duration at level debug.)
    Returns [(seconds, sends)] for every complete round."""
    nr = SYSCALLS[os.uname().machine]
    waits = " || ".join(f"id == {n}" for n in nr["wait"])
    sh("perf", "record", "-q", "-e", "raw_syscalls:sys_enter",
       "-e", "raw_syscalls:sys_exit", "--filter", waits,
       "-p", str(pid), "-o", out, "--", "sleep", str(seconds))
    text = sh("perf", "script", "-i", out, "-F", "time,event,trace")
    calls = []  # (time, enter or exit, number, first argument)
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+):\s+raw_syscalls:sys_(enter|exit): NR (\d+)(?: \((\w+))?", line)
        if m:
            calls.append((float(m.group(1)), m.group(2), int(m.group(3)), m.group(4)))
    # The ICMP socket is the descriptor with the most sendto calls; other
    # sends (sd_notify's) are work like any other call.
    fds = collections.Counter(fd for _, kind, n, fd in calls if kind == "enter" and n == nr["sendto"])
    icmp_fd = fds.most_common(1)[0][0] if fds else None
    marks = []  # (time, kind): send, work, enter (a wait), exit (from a wait)
    for t, kind, n, fd in calls:
        if n in nr["wait"]:
            marks.append((t, kind))
        elif kind == "enter" and n == nr["sendto"] and fd == icmp_fd:
            marks.append((t, "send"))
        elif kind == "enter" and not (n in nr["read"] and fd == icmp_fd):
            marks.append((t, "work"))
    marks.sort()
    # The sends of a round come together; half an interval separates rounds.
    rounds, last_send = [], None
    for i, (t, kind) in enumerate(marks):
        if kind == "send":
            if last_send is None or t - last_send > interval / 2:
                rounds.append({"first": i, "sends": 0})
            rounds[-1]["sends"] += 1
            last_send = t
    for r in rounds:
        exits = [k for k in range(r["first"]) if marks[k][1] == "exit"]
        r["start"] = exits[-1] if exits else None
    result = []
    for r, nxt in zip(rounds, rounds[1:]):
        if r["start"] is None or nxt["start"] is None:
            continue
        span = range(r["first"], nxt["start"])
        last_work = max(k for k in span if marks[k][1] in ("send", "work"))
        end = next((k for k in range(last_work, nxt["start"]) if marks[k][1] == "enter"), None)
        if end is not None:
            result.append((marks[end][0] - marks[r["start"]][0], r["sends"]))
    return result


# ------------------------------------------------------------------ Sentry's stand-in

class SentryReceiver:
    """An HTTP server on 127.0.0.1 standing in for sentry.io: it answers 200
    to every envelope posted and counts them."""

    def __init__(self):
        import http.server
        receiver = self
        self.posts = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                self.rfile.read(n)
                receiver.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://0123456789abcdef@127.0.0.1:{self.server.server_address[1]}/1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        CLEANUP.push("true  # Sentry receiver", self.stop)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def errors_while(pid, config, seconds, every):
    """ERROR lines from the daemon `pid` every `every` seconds for `seconds`:
    a reload of a configuration it refuses ("reload refused"), which goes to
    Sentry as an event. The good configuration is put back at the end."""
    with open(config) as f:
        good = f.read()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with open(config, "w") as f:
            f.write(good + "[detection]\n")
        os.kill(pid, signal.SIGHUP)
        time.sleep(min(every, max(0.0, end - time.monotonic())))
    with open(config, "w") as f:
        f.write(good)
