"""Load test: N sessions at once, each switching pages and filters, against one dashboard
process and against N processes behind nginx (`service-insights run --workers N`).

    python benchmarks/load.py                              # 50k sample, 20 sessions, 5 min
    python benchmarks/load.py --cases 1M --duration 300    # the 1M store of benchmarks/run.py
    python benchmarks/load.py --modes 1 --sessions 5 --duration 60   # one process only

Prints, per mode: server-side script-run p50/p95 and CPU per run (from SI_RUN_LOG, which
every dashboard process appends to: service_insights/ui/run_timing.py), end-to-end p50/p95
(from a client's message to the end of the run it caused, queueing included), errors
(exceptions and error boxes the server sent, refused connections, timeouts), and the
server's memory over time (RSS of every process in its tree: workers, nginx, and Kaleido's
Chromium if an export started one).

The load generator is light on purpose: the issue's first attempt ran 20 Chromiums on
this 2-core machine and measured mostly the browsers. Each session here is a small asyncio
client speaking Streamlit's own browser protocol (protobuf BackMsg/ForwardMsg over the
/_stcore/stream WebSocket, with Streamlit's `streamlit.proto` classes): it asks for a run,
reads the widgets the run drew, and asks for the next run with a changed widget or page,
as the browser does. It draws nothing, so its CPU is a few per cent of the server's.

Nothing here is a test: the targets (zero errors, server-side p95 under 1 s, memory flat
after warm-up) are printed beside the figures. tests/test_load.py runs a short version.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service_insights.ui import run_timing  # noqa: E402

FINISHED_EARLY_FOR_RERUN = 2
# The pages a user of the dashboard moves between (analysts' pages, the pack and the
# workbench are left out: they are not what twenty people click through at once).
PAGES = ("Home", "Overview", "Children and families", "Marac", "Risk and outcomes",
         "Complex needs", "Equality and access", "Findings: where to adapt", "Compare services")
TARGET_P95_S = 1.0


# ---------------------------------------------------------------- one session


@dataclass
class Widget:
    id: str
    kind: str
    label: str
    options: list[str]


@dataclass
class Stats:
    e2e_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    actions: int = 0


class Session:
    """One browser session, without the browser."""

    def __init__(self, base_url: str, stats: Stats, rng: random.Random,
                 timeout_s: float = 120):
        self.base_url = base_url.rstrip("/")
        self.stats = stats
        self.rng = rng
        self.timeout_s = timeout_s
        self.widgets: dict[str, Widget] = {}
        self.states: dict[str, WidgetState] = {}
        self.pages: dict[str, str] = {}   # page name -> page script hash
        self.page_hash = ""
        self.ws = None
        self.cookie = ""
        self.query_string = ""
        """The address's query the server last wrote (filters.py mirrors the sidebar's
        choice there), so a caller can see that a changed filter was taken."""
        self.last_page = ""
        """The page the last run drew (its page_info or navigation)."""

    async def connect(self) -> None:
        # The page first, as a browser loads it: behind nginx it sets the si_route cookie
        # that pins this session to one process.
        def fetch():
            with urllib.request.urlopen(self.base_url + "/", timeout=30) as r:
                return r.headers.get_all("Set-Cookie") or []
        cookies = await asyncio.to_thread(fetch)
        self.cookie = "; ".join(c.split(";", 1)[0] for c in cookies)
        ws_url = self.base_url.replace("http://", "ws://") + "/_stcore/stream"
        headers = {"Origin": self.base_url}
        if self.cookie:
            headers["Cookie"] = self.cookie
        self.ws = await websockets.connect(ws_url, subprotocols=["streamlit"],
                                           additional_headers=headers, max_size=2**26,
                                           open_timeout=30, ping_interval=None)
        await self.run()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def run(self, page_hash: str | None = None) -> float:
        """Ask for a script run with the current widget states; wait for it to finish.
        Returns the seconds from asking to the run's end (what a user waits)."""
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query_string
        cs.page_script_hash = page_hash if page_hash is not None else self.page_hash
        for state in self.states.values():
            cs.widget_states.widgets.append(state)
        seen: dict[str, Widget] = {}
        t0 = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        deadline = t0 + self.timeout_s
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no end of run within {self.timeout_s:g} s")
            fwd = ForwardMsg()
            fwd.ParseFromString(await asyncio.wait_for(self.ws.recv(), left))
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                ns = fwd.new_session
                self.pages = {p.page_name: p.page_script_hash for p in ns.app_pages}
                self.page_hash = ns.page_script_hash
            elif kind == "navigation":
                self.pages = {p.page_name: p.page_script_hash
                              for p in fwd.navigation.app_pages}
                self.page_hash = fwd.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query_string = fwd.page_info_changed.query_string
            elif kind == "delta":
                self._read_delta(fwd.delta, seen)
            elif kind == "script_finished":
                if fwd.script_finished == FINISHED_EARLY_FOR_RERUN:
                    continue
                elapsed = time.perf_counter() - t0
                self.widgets = seen
                # The browser sends the state of every widget the last run drew.
                self.states = {k: v for k, v in self.states.items() if k in seen}
                return elapsed

    def _read_delta(self, delta, seen: dict[str, Widget]) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        kind = el.WhichOneof("type")
        if kind == "exception":
            where = " | ".join(line.strip() for line in el.exception.stack_trace[-3:])
            self.stats.errors.append(f"exception: {el.exception.type}: "
                                     f"{el.exception.message[:200]} ({self.query_string}; "
                                     f"at {where})")
        elif kind == "alert" and el.alert.format == 1:  # Alert.ERROR
            self.stats.errors.append(f"error box: {el.alert.body[:200]}")
        elif kind in ("multiselect", "selectbox", "radio"):
            w = getattr(el, kind)
            seen[w.id] = Widget(w.id, kind, w.label, list(w.options))

    def widget(self, label: str) -> Widget | None:
        return next((w for w in self.widgets.values() if w.label == label), None)

    def _set(self, w: Widget, value) -> None:
        state = WidgetState(id=w.id)
        if w.kind == "multiselect":
            state.string_array_value.data.extend(value)
        else:
            state.string_value = value
        self.states[w.id] = state

    def next_action(self) -> str | None:
        """Change one thing, as a user would: a page, the year, the area, the comparator,
        the demo role or the service."""
        choice = self.rng.random()
        if choice < 0.35 and self.pages:
            name = self.rng.choice([p for p in PAGES if p in self.pages] or list(self.pages))
            self.page_hash = self.pages[name]
            return f"page {name}"
        if choice < 0.6 and (w := self.widget("Financial year (April to March)")):
            self._set(w, self.rng.choice(w.options))
            return "year"
        if choice < 0.68 and (w := self.widget("Area")):
            self._set(w, self.rng.sample(w.options, k=self.rng.choice([0, 1])))
            return "area"
        if choice < 0.72 and (w := self.widget("Compare with")):
            self._set(w, self.rng.choice(w.options))
            return "comparator"
        if choice < 0.8 and (w := self.widget("View the demo as")):
            self._set(w, self.rng.choice(w.options))  # demo mode: another role's view
            return "role"
        if w := self.widget("Service"):
            self._set(w, self.rng.sample(w.options, k=min(len(w.options),
                                                           self.rng.choice([0, 1, 1, 2]))))
            return "service"
        return None


async def _one_session(base_url: str, stats: Stats, seed: int, until: float,
                       think_s: tuple[float, float]) -> None:
    rng = random.Random(seed)
    s = Session(base_url, stats, rng)
    try:
        await asyncio.sleep(rng.uniform(0, 2))  # people do not all arrive in one instant
        await s.connect()
        while time.monotonic() < until:
            await asyncio.sleep(rng.uniform(*think_s))
            if s.next_action() is None:
                continue
            stats.e2e_s.append(await s.run())
            stats.actions += 1
    except Exception as exc:  # a refused connection, a dropped socket or a timeout
        stats.errors.append(f"session {seed}: {type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            await s.close()


def drive(base_url: str, sessions: int, duration_s: float,
          think_s: tuple[float, float] = (1.0, 3.0), seed: int = 1) -> Stats:
    """N sessions against base_url for duration_s; every run they caused, timed."""
    stats = Stats()
    until = time.monotonic() + duration_s

    async def main():
        await asyncio.gather(*(_one_session(base_url, stats, seed * 1000 + i, until, think_s)
                               for i in range(sessions)))

    asyncio.run(main())
    return stats


# ---------------------------------------------------------------- the server under test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(root: int) -> list[int]:
    """The pid and every descendant (workers, nginx, Kaleido's Chromium)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of these processes so far (every thread: DuckDB's too)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / tick


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Served:
    """`service-insights run` (one process, or --workers N behind nginx) on a store, in
    its own process group; started, polled until it answers, stopped as a whole."""

    def __init__(self, db_path: Path, workers: int, work: Path, port: int | None = None):
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.run_log = self.work / f"runs-{workers}.jsonl"
        self.run_log.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "service_insights.cli", "run", "--port", str(self.port),
               "--address", "127.0.0.1", "--headless"]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        self.cmd = cmd
        self.env = {**os.environ, "SI_DB_PATH": str(db_path), "SI_RUN_LOG": str(self.run_log),
                    "SI_USERS_FILE": str(self.work / "no-users.yaml"),
                    "SI_AUDIT_LOG": str(self.work / "audit.log"),
                    "PYTHONPATH": str(ROOT)}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180) -> Served:
        log = (self.work / f"server-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: "
                                   f"{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the server did not answer within {timeout_s:g} s: {self.log()}")

    def log(self) -> str:
        path = self.work / f"server-{self.port}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid) if self.proc else []

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class MemorySampler(threading.Thread):
    """RSS of the whole server tree every `every_s` seconds: [(seconds, MB)]."""

    def __init__(self, served: Served, every_s: float = 5.0):
        super().__init__(daemon=True)
        self.served, self.every_s = served, every_s
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.monotonic() - self._t0, rss_mb(self.served.pids())))
            self._halt.wait(self.every_s)

    def stop(self) -> list[tuple[float, float]]:
        self._halt.set()
        self.join(5)
        return self.samples


# ---------------------------------------------------------------- one measured round


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class Round:
    mode: str
    cases: str
    sessions: int
    duration_s: float
    actions: int
    e2e_p50: float
    e2e_p95: float
    runs: int
    server_p50: float
    server_p95: float
    cpu_per_run: float
    """The script thread's own CPU per run (run_timing: DuckDB's threads not counted)."""
    server_cpu_per_run: float
    """All CPU of every server process (every thread, nginx too) over the round / runs."""
    errors: list[str]
    memory: list[tuple[float, float]]
    load_avg: tuple[float, float, float]

    def memory_line(self) -> str:
        return " ".join(f"{t:.0f}s:{mb:.0f}" for t, mb in self.memory)


def measure(db_path: Path, workers: int, sessions: int, duration_s: float, cases: str,
            work: Path, think_s: tuple[float, float] = (1.0, 3.0)) -> Round:
    with Served(db_path, workers, work) as served:
        # One throwaway session first: a server's first session pays for its first
        # queries and figures, which is start-up, not load.
        drive(served.url, 1, 3, think_s=(0.5, 1.0), seed=999)
        served.run_log.unlink(missing_ok=True)
        sampler = MemorySampler(served, every_s=max(2.0, duration_s / 20))
        sampler.start()
        cpu0 = cpu_seconds(served.pids())
        stats = drive(served.url, sessions, duration_s, think_s=think_s)
        server_cpu = cpu_seconds(served.pids()) - cpu0
        memory = sampler.stop()
        records = [r for r in run_timing.read(str(served.run_log))
                   if r.get("outcome") == "finished"]
        errors = list(stats.errors)
        crashed = [r for r in run_timing.read(str(served.run_log))
                   if r.get("outcome") not in ("finished", "rerun", "stopped")]
        errors += [f"server run ended by {r['outcome']} on {r.get('page')}" for r in crashed]
    wall = [r["wall_s"] for r in records]
    cpu = [r["cpu_s"] for r in records]
    return Round(
        mode="1 process" if workers == 1 else f"{workers} workers + nginx", cases=cases,
        sessions=sessions, duration_s=duration_s, actions=stats.actions,
        e2e_p50=pct(stats.e2e_s, 50), e2e_p95=pct(stats.e2e_s, 95), runs=len(records),
        server_p50=pct(wall, 50), server_p95=pct(wall, 95),
        cpu_per_run=statistics.fmean(cpu) if cpu else float("nan"),
        server_cpu_per_run=server_cpu / len(records) if records else float("nan"),
        errors=errors,
        memory=memory, load_avg=os.getloadavg())


def print_rounds(rounds: list[Round]) -> None:
    head = (f"{'mode':<22} {'cases':>6} {'sess':>4} {'actions':>7} {'e2e p50':>8} "
            f"{'e2e p95':>8} {'runs':>5} {'srv p50':>8} {'srv p95':>8} {'cpu/run':>8} "
            f"{'all cpu':>8} {'errors':>6} {'RSS MB first/last/max':>22} {'load avg':>15}")
    print(head)
    print("-" * len(head))
    for r in rounds:
        mem = [mb for _, mb in r.memory] or [float("nan")]
        print(f"{r.mode:<22} {r.cases:>6} {r.sessions:>4} {r.actions:>7} {r.e2e_p50:>7.2f}s "
              f"{r.e2e_p95:>7.2f}s {r.runs:>5} {r.server_p50:>7.2f}s {r.server_p95:>7.2f}s "
              f"{r.cpu_per_run:>7.3f}s {r.server_cpu_per_run:>7.3f}s {len(r.errors):>6} "
              f"{mem[0]:>6.0f}/{mem[-1]:>6.0f}/{max(mem):>6.0f} "
              f"{' '.join(f'{x:.2f}' for x in r.load_avg):>15}")
    print("\ncpu/run: the script thread's CPU per run; all cpu: every server process's CPU "
          "(DuckDB's threads, nginx) over the round, per run.")
    print(f"targets: zero errors; server-side p95 under {TARGET_P95_S:g} s; memory flat "
          "after warm-up. Machine: "
          f"{os.cpu_count()} cores (load average is the last 1/5/15 minutes, all users).")
    for r in rounds:
        print(f"memory over time, {r.mode} (seconds:MB): {r.memory_line()}")
        for e in r.errors[:10]:
            print(f"  error ({r.mode}): {e}")


def _store(cases: str, work: Path) -> Path:
    """The 50k sample (built here) or a benchmarks/run.py store (built there if missing)."""
    n = {"50k": 50_000, "1M": 1_000_000}.get(cases) or int(cases)
    if n >= 1_000_000:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import run as bench  # benchmarks/run.py: its store, built and checked the same way

        path = bench.store_path(n)
        if not bench.store_matches(path, n):
            bench.section_generate(bench.Context([n], 1, True, {}, []))
        return path
    from service_insights.store import synth

    path = work / f"sample-{n}.duckdb"
    if not path.exists():
        synth.write_sample(path, n, 20240401)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="50k", help="50k (the sample), 1M, or a number")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--duration", type=float, default=300, help="seconds per mode")
    parser.add_argument("--modes", default="1,4",
                        help="comma-separated process counts (1 = one process; N>1 = N "
                        "workers behind nginx), default 1,4")
    parser.add_argument("--think", default="1,3", help="seconds between a session's clicks")
    parser.add_argument("--work", type=Path, default=None, help="folder for logs and stores")
    parser.add_argument("--store", type=Path, default=None,
                        help="an existing store to serve instead of building one "
                        "(--cases then only labels the table)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="si-load-"))
    db_path = args.store or _store(args.cases, work)
    think = tuple(float(x) for x in args.think.split(","))
    rounds = []
    for workers in (int(m) for m in args.modes.split(",")):
        print(f"... {workers} process(es), {args.sessions} sessions, {args.duration:g} s",
              flush=True)
        rounds.append(measure(db_path, workers, args.sessions, args.duration, args.cases,
                              work, think))
    print_rounds(rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
