"""Throughput and latency of the whole gateway, as deployed, against the ceiling of a
do-nothing aiosmtpd on the same load.

    .venv/bin/python bench/throughput.py [--layouts embedded,postgres-1,postgres-2]
        [--scenarios replies,new-cases,size-mix,open-loop,large] [--messages 600] [--connections 4]
        [--cases 200] [--rate 30] [--seconds 20]

Each layout runs the real processes (`dispute-gateway run` on SQLite; `serve-smtp`, one or two
`worker` processes and a `scheduler` on PostgreSQL + Redis, all on 127.0.0.1) against an
aiosmtpd capture sink standing in for the smarthost (in this process). The load generator
sends over persistent SMTP connections; every message carries a token, and a message counts
as relayed when the sink receives the relay holding its token.

Scenarios:
- replies: customers answer in `--cases` open cases (each answer is relayed to the merchant);
- new-cases: every message opens a case (a fresh transaction each; four or more outgoing mails);
- size-mix: replies, 80 % of 4 KB, 18 % of 40 KB, 2 % of 2 MB;
- open-loop: replies at `--rate` messages a second for `--seconds`, latency under a steady load;
- large: `--large-count` replies of about 25 MB (a short text and five photos, base64), one at a
  time, each sent once the one before was relayed: end to end per message, and the peak RSS of
  each gateway process during it (its high-water mark reset first, /proc/PID/clear_refs).

Printed per layout and scenario: relays (or cases) per second from the first send to the last
relay, the ratio to the do-nothing ceiling measured in the same run, end-to-end p50/p95/p99
(send started -> relay at the sink), and CPU milliseconds per message for each gateway process
(utime + stime from /proc), PostgreSQL's server processes together where they run on this machine,
and how busy the machine's CPUs were (/proc/stat). With both PostgreSQL layouts, the last lines
say what the second worker process gave, scenario by scenario, and how busy the CPUs were then.
"""

from __future__ import annotations

import argparse
import os
import random
import smtplib
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness import build_mail, free_port  # noqa: E402

DOMAIN = "disputes.bench"
MERCHANT = "support@shop.bench"
STAFF = "staff@ops.bench"
SECRET = "bench-secret-key-0123456789abcdef"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
FILLER = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 40)


# --- the smarthost sink ---------------------------------------------------------------------------------

class _Capture:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, float] = {}  # token -> first relay time
        self.ack: dict[str, str] = {}  # customer -> her case address (from our acknowledgement)
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        now = time.perf_counter()
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.count += 1
            start = raw.find(b"bench-token-")
            if start >= 0 and b"Auto-Submitted" not in raw[:4000]:
                token = raw[start + 12:start + 12 + 32].decode("ascii", "replace")
                self.seen.setdefault(token, now)
            for rcpt in envelope.rcpt_tos:
                if rcpt.startswith("customer") and b"-c-" in raw[:3000] and rcpt not in self.ack:
                    head = raw[:3000].decode("ascii", "replace")
                    for line in head.splitlines():
                        if line.lower().startswith("from:") and "<case+" in line:
                            self.ack[rcpt] = line.split("<", 1)[1].split(">", 1)[0]
        return "250 OK"


class Sink:
    def __init__(self) -> None:
        self.port = free_port()
        self.capture = _Capture()
        self.controller = Controller(self.capture, hostname="127.0.0.1", port=self.port, decode_data=False,
                                     server_hostname="sink.bench", data_size_limit=64 * 1024 * 1024)
        self.controller.start()

    def wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.capture.lock:
                if predicate(self.capture):
                    return
            time.sleep(0.05)
        raise SystemExit(f"timed out waiting for {what}")

    def stop(self) -> None:
        self.controller.stop()


# --- the processes ----------------------------------------------------------------------------------------

def reset_peak_rss(pid: int) -> None:
    """Start the process's RSS high-water mark afresh (Linux: "5" to clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mib(pid: int) -> float:
    """The process's RSS high-water mark (VmHWM) in MiB, 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(v) for v in fields[11:15]) / ticks  # utime stime cutime cstime


def postgres_cpu_seconds() -> float:
    """CPU of every PostgreSQL server process on this machine so far: the live backends, and the
    postmaster's reaped children (its cutime/cstime) for those that ended."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine so far (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


@dataclass
class Layout:
    name: str
    workers: int = 1  # worker processes (production layouts)
    postgres: bool = False
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dg-throughput-")))
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    smtp_port: int = field(default_factory=free_port)
    database: str = ""

    def config(self, sink_port: int) -> Path:
        if self.postgres:
            name = f"dg_bench_{uuid.uuid4().hex[:8]}"
            subprocess.run(["psql", "-q", PG_ADMIN, "-c", f'CREATE DATABASE "{name}"'], check=True)
            self.database = name
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
            broker = 'url = "redis://127.0.0.1:6379/13"'
        else:
            url = f"sqlite:///{self.folder / 'gateway.db'}"
            broker = 'url = "memory://"'
        path = self.folder / "config.toml"
        path.write_text(textwrap.dedent(f"""
            [gateway]
            domain = "{DOMAIN}"
            secret_keys = ["{SECRET}"]
            staff_addresses = ["{STAFF}"]
            [database]
            url = "{url}"
            [broker]
            {broker}
            [ingress.smtp]
            host = "127.0.0.1"
            port = {self.smtp_port}
            hostname = "gw.bench"
            max_message_bytes = 33554432
            [outbound]
            retry_base_seconds = 1
            retry_max_seconds = 5
            [outbound.smtp]
            host = "127.0.0.1"
            port = {sink_port}
            timeout_seconds = 30
            [workers]
            threads = 8
            lease_seconds = 600
            sweep_interval_seconds = 5
            [hygiene]
            freeze_after_messages = 100000
            [metrics]
            enabled = false
            """))
        return path

    def cli(self, config: Path, *args: str) -> list[str]:
        return [sys.executable, "-m", "gateway.cli", "--config", str(config), *args]

    def start(self, config: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = open(self.folder / "processes.log", "ab")

        def spawn(name: str, *args: str) -> None:
            self.processes[name] = subprocess.Popen(self.cli(config, *args), stdout=log, stderr=log, env=env,
                                                    cwd=self.folder)

        if not self.postgres:
            spawn("run", "run")
        else:
            subprocess.run(self.cli(config, "db", "upgrade"), check=True, capture_output=True)
            for n in range(self.workers):
                spawn(f"worker{n + 1}", "worker")
            spawn("scheduler", "scheduler")
            spawn("serve-smtp", "serve-smtp")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=5) as client:
                    client.noop()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.name}: the gateway did not start; see {self.folder / 'processes.log'}")

    def cpu(self) -> dict[str, float]:
        found = {name: cpu_seconds(p.pid) for name, p in self.processes.items()}
        if self.postgres:
            found["postgresql"] = postgres_cpu_seconds()
        return found

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.database:
            subprocess.run(["psql", "-q", PG_ADMIN, "-c", f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'],
                           capture_output=True)
            subprocess.run(["redis-cli", "-n", "13", "flushdb"], capture_output=True)


# --- load ----------------------------------------------------------------------------------------------------

def message(sender: str, to: str, subject: str, size: int, token: str) -> bytes:
    body = f"bench-token-{token}\n{FILLER * (size // len(FILLER) + 1)}"[:max(200, size - 400)]
    lines = "\r\n".join(textwrap.wrap(body, 76)) + "\r\n"
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{token}@customer.bench>\r\n"
            f"Date: {datetime.now(timezone.utc):%a, %d %b %Y %H:%M:%S +0000}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{lines}").encode()


@dataclass
class Sent:
    token: str
    started: float


def send_all(port: int, jobs: list[tuple[str, str, bytes, str]], connections: int,
             schedule: list[float] | None = None) -> list[Sent]:
    """Send (envelope sender, recipient, raw, token) jobs over `connections` persistent
    connections; with `schedule`, job i is sent at start + schedule[i] (open loop)."""
    sent: list[Sent] = []
    lock = threading.Lock()
    start = time.perf_counter()

    def worker(index: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
            for n in range(index, len(jobs), connections):
                if schedule is not None:
                    delay = start + schedule[n] - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                mail_from, rcpt, raw, token = jobs[n]
                began = time.perf_counter()
                client.sendmail(mail_from, [rcpt], raw)
                with lock:
                    sent.append(Sent(token, began))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


@dataclass
class LargeResult:
    layout: str
    size: int
    seconds: list[float]  # end to end, per message
    peak: dict[str, float]  # process -> highest RSS high-water mark of any message (MiB)
    cpu: dict[str, float]  # process -> CPU seconds per message

    def line(self) -> str:
        peaks = ", ".join(f"{name} {mib:.0f}" for name, mib in self.peak.items())
        cpu = ", ".join(f"{name} {1000 * s:.0f}" for name, s in self.cpu.items())
        ordered = sorted(self.seconds)
        return (f"{self.layout:11} large      {len(self.seconds):5d} x {self.size / 1e6:.1f} MB  end to end median "
                f"{ordered[len(ordered) // 2]:.2f} s (min {ordered[0]:.2f}, max {ordered[-1]:.2f})  "
                f"peak RSS MiB: {peaks}  CPU ms/msg: {cpu}")


def measure_large(layout: Layout, sink: Sink, customers: list[str], count: int) -> LargeResult:
    photos = [(f"photo{n}.jpg", "image/jpeg", os.urandom(18 * 1024 * 1024 // 5)) for n in range(5)]
    seconds, peak, size = [], {}, 0
    cpu_before = layout.cpu()
    for n in range(count):
        customer = customers[n % len(customers)]
        token = uuid.uuid4().hex
        raw = build_mail(sender=customer, to=sink.capture.ack[customer], subject="Re: my case, the photos",
                         body=f"bench-token-{token}\nHere are the photos of the damaged parcel.\n",
                         message_id=f"<{token}@customer.bench>", attachments=photos)
        size = len(raw)
        for process in layout.processes.values():
            reset_peak_rss(process.pid)
        (sent,) = send_all(layout.smtp_port, [(customer, sink.capture.ack[customer], raw, token)], 1)
        del raw
        sink.wait(lambda c: token in c.seen, timeout=300, what="a 25 MB relay")
        with sink.capture.lock:
            seconds.append(sink.capture.seen[token] - sent.started)
        for name, process in layout.processes.items():
            peak[name] = max(peak.get(name, 0.0), peak_rss_mib(process.pid))
    cpu_after = layout.cpu()
    return LargeResult(layout.name, size, seconds, peak,
                       {name: (cpu_after[name] - cpu_before.get(name, 0.0)) / count for name in cpu_after})


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


@dataclass
class Result:
    layout: str
    scenario: str
    count: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float]
    busy: float = 0.0  # share of the machine's CPU time that was busy while it ran

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def line(self, ceiling: float) -> str:
        cpu = ", ".join(f"{name} {1000 * s / self.count:.1f}" for name, s in self.cpu.items())
        return (f"{self.layout:11} {self.scenario:10} {self.count:5d} {self.rate:8.1f}/s {100 * self.rate / ceiling:6.1f}%  "
                f"p50 {1000 * percentile(self.latencies, .5):6.0f} ms  p95 {1000 * percentile(self.latencies, .95):6.0f} "
                f"ms  p99 {1000 * percentile(self.latencies, .99):6.0f} ms  CPU ms/msg: {cpu}  "
                f"machine CPU busy {100 * self.busy:.0f}% of {os.cpu_count()} cores")


def start_profiler(layout: Layout, scenario: str, folder: Path | None) -> subprocess.Popen | None:
    """py-spy on the process that does the work (`run` embedded, the first worker otherwise),
    sampling the thread that holds the GIL (so the shares are CPU, not lock waits) until stopped; writes collapsed stacks that `summarise_profile` reads."""
    if folder is None:
        return None
    target = layout.processes.get("run") or layout.processes["worker1"]
    out = folder / f"{layout.name}-{scenario}.collapsed"
    return subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(target.pid),
                             "--format", "raw", "--rate", "200", "--nonblocking", "--gil", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen | None) -> None:
    if profiler is not None:
        profiler.send_signal(2)  # SIGINT: py-spy writes its output and exits
        profiler.wait(timeout=60)


def summarise_profile(path: Path, top: int = 25) -> str:
    """Inclusive share of samples per function of the gateway's own code (and per library), from
    py-spy's collapsed stacks, biggest first."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        seen = set()
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            where = where.rstrip(")").split(":")[0].split("site-packages/")[-1]
            if where.startswith(("gateway/", "workers/")) or "/gateway/" in where or "/workers/" in where:
                key = f"{name} ({where[where.find('gateway/') if 'gateway/' in where else where.find('workers/'):]})"
            elif "/" in where:
                key = "[" + where.split("/")[0] + "]"
            else:
                key = "[" + where.removesuffix(".py") + "]"
            if key not in seen:
                seen.add(key)
                inclusive[key] = inclusive.get(key, 0) + samples
    rows = sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]
    return "\n".join(f"  {100 * n / max(total, 1):5.1f}%  {key}" for key, n in rows)


def measure(layout: Layout, sink: Sink, scenario: str, jobs, connections: int, schedule=None,
            profile: Path | None = None) -> Result:
    tokens = {job[3] for job in jobs}
    cpu_before = layout.cpu()
    busy_before, total_before = machine_jiffies()
    profiler = start_profiler(layout, scenario, profile)
    sent = send_all(layout.smtp_port, jobs, connections, schedule)
    first = min(s.started for s in sent)
    sink.wait(lambda c: tokens <= c.seen.keys(), timeout=900, what=f"{scenario}: {len(tokens)} relays")
    with sink.capture.lock:
        seen = dict(sink.capture.seen)
    last = max(seen[t] for t in tokens)
    cpu_after = layout.cpu()
    busy_after, total_after = machine_jiffies()
    stop_profiler(profiler)
    latencies = [seen[s.token] - s.started for s in sent]
    return Result(layout.name, scenario, len(jobs), last - first, latencies,
                  {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after},
                  (busy_after - busy_before) / max(1, total_after - total_before))


def prepare(layout: Layout, sink: Sink, config: Path, cases: int, fresh: int) -> tuple[list[str], list[str]]:
    """Import the merchant and `cases + fresh` transactions, open `cases` cases; returns the
    customers of the open cases and the customers whose transactions have none yet."""
    day = (datetime.now(timezone.utc) - timedelta(days=10)).date()
    (layout.folder / "m.csv").write_text(f"merchant_id,name,support_email,locale\nshop,Shop,{MERCHANT},en\n")
    rows = [f"TX-{n:06d},shop,customer{n}@customer.bench,Customer {n},10,EUR,{day}" for n in range(cases + fresh)]
    (layout.folder / "t.csv").write_text(
        "reference,merchant_id,customer_email,customer_name,amount,currency,transaction_date\n" + "\n".join(rows) + "\n")
    subprocess.run(layout.cli(config, "import", "merchants", str(layout.folder / "m.csv")), check=True,
                   capture_output=True)
    subprocess.run(layout.cli(config, "import", "transactions", str(layout.folder / "t.csv")), check=True,
                   capture_output=True)
    jobs = [(f"customer{n}@customer.bench", f"delivery@{DOMAIN}",
             message(f"customer{n}@customer.bench", f"delivery@{DOMAIN}", f"TX-{n:06d} never arrived", 2000,
                     uuid.uuid4().hex), "") for n in range(cases)]
    jobs = [(a, b, raw, raw.split(b"bench-token-")[1][:32].decode()) for a, b, raw, _ in jobs]
    send_all(layout.smtp_port, jobs, 4)
    customers = [f"customer{n}@customer.bench" for n in range(cases)]
    sink.wait(lambda c: all(x in c.ack for x in customers), timeout=600, what=f"{cases} cases opened")
    return customers, [f"customer{n}@customer.bench" for n in range(cases, cases + fresh)]


def replies(sink: Sink, customers: list[str], count: int, sizes) -> list:
    addresses = sink.capture.ack
    jobs = []
    for n in range(count):
        customer = customers[n % len(customers)]
        token = uuid.uuid4().hex
        jobs.append((customer, addresses[customer],
                     message(customer, addresses[customer], "Re: my case", sizes(n), token), token))
    return jobs


def ceiling(jobs, connections: int) -> float:
    """Accepted messages per second of a do-nothing aiosmtpd in its own process, same load."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from aiosmtpd.controller import Controller
        class H:
            async def handle_DATA(self, server, session, envelope):
                return "250 OK"
        c = Controller(H(), hostname="127.0.0.1", port={port}, server_hostname="ceiling", decode_data=False,
                       data_size_limit=64 * 1024 * 1024)
        c.start()
        time.sleep(3600)
        """)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
                    client.noop()
                break
            except OSError:
                time.sleep(0.1)
        start = time.perf_counter()
        send_all(port, jobs, connections)
        return len(jobs) / (time.perf_counter() - start)
    finally:
        server.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layouts", default="embedded,postgres-1,postgres-2")
    parser.add_argument("--scenarios", default="replies,new-cases,size-mix,open-loop,large")
    parser.add_argument("--large-count", type=int, default=3, help="messages of the large scenario")
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--profile", type=Path, default=None,
                        help="folder: sample the working process with py-spy during each scenario and print "
                             "its top stages (pip install py-spy)")
    args = parser.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    scenarios = args.scenarios.split(",")
    mix = random.Random(7)
    sizes = {"replies": lambda n: 4096, "open-loop": lambda n: 4096,
             "size-mix": lambda n: mix.choices([4096, 40960, 2 * 1024 * 1024], [80, 18, 2])[0]}
    results: list[Result] = []
    ceilings: dict[str, float] = {}
    for name in args.layouts.split(","):
        workers = int(name.split("-")[1]) if name.startswith("postgres") else 1
        layout = Layout(name, workers=workers, postgres=name.startswith("postgres"))
        sink = Sink()
        config = layout.config(sink.port)
        try:
            layout.start(config)
            fresh = args.messages if "new-cases" in scenarios else 0
            customers, newcomers = prepare(layout, sink, config, args.cases, fresh)
            for scenario in scenarios:
                if scenario == "large":
                    print(measure_large(layout, sink, customers, args.large_count).line(), flush=True)
                    continue
                if scenario == "new-cases":
                    jobs = []
                    for customer in newcomers:
                        token = uuid.uuid4().hex
                        number = int(customer[len("customer"):].split("@")[0])
                        jobs.append((customer, f"delivery@{DOMAIN}",
                                     message(customer, f"delivery@{DOMAIN}", f"TX-{number:06d} lost", 4096, token),
                                     token))
                    schedule = None
                elif scenario == "open-loop":
                    count = int(args.rate * args.seconds)
                    jobs = replies(sink, customers, count, sizes["open-loop"])
                    schedule = [n / args.rate for n in range(count)]
                else:
                    jobs = replies(sink, customers, args.messages, sizes[scenario])
                    schedule = None
                if scenario not in ceilings and scenario != "open-loop":
                    ceilings[scenario] = ceiling(jobs, args.connections)
                result = measure(layout, sink, scenario, jobs, args.connections if schedule is None else 8, schedule,
                                 args.profile)
                results.append(result)
                print(result.line(ceilings.get(scenario, ceilings.get("replies", 1.0))), flush=True)
                if args.profile:
                    print(summarise_profile(args.profile / f"{layout.name}-{scenario}.collapsed"), flush=True)
        finally:
            layout.stop()
            sink.stop()
    print("\nceiling (a do-nothing aiosmtpd, same load): "
          + ", ".join(f"{k} {v:.0f} msg/s" for k, v in ceilings.items()))
    print_scaling(results)
    return 0


def print_scaling(results: list[Result]) -> None:
    """What a second worker process gave on PostgreSQL, and how busy the CPUs were with each."""
    by = {(r.layout, r.scenario): r for r in results}
    for scenario in dict.fromkeys(r.scenario for r in results):
        one, two = by.get(("postgres-1", scenario)), by.get(("postgres-2", scenario))
        if one and two and scenario != "open-loop":
            print(f"second worker process, {scenario}: {one.rate:.1f} -> {two.rate:.1f}/s "
                  f"(x{two.rate / one.rate:.2f}); machine CPU busy {100 * one.busy:.0f}% -> {100 * two.busy:.0f}%")


if __name__ == "__main__":
    sys.exit(main())
