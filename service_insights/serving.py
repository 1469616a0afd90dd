"""Serving a team: what every dashboard process does before its first session, and
`service-insights run --workers N` (N dashboard processes on one store behind nginx).

Why preload: Streamlit runs each session's script on its own thread. A module imported
for the first time inside a script run is imported on that thread while other sessions'
threads may already be using it half-initialised (the load test of issue 16 saw
`partially initialized module 'pandas' has no attribute 'Series'`). So everything a
script run can import, and Plotly's lazily loaded validators, are loaded here once, on
the main thread, before the server accepts a session.

Why workers: one process runs Python one thread at a time, so twenty sessions changing a
filter together queue behind one another. N processes on the same read-only store share
the CPU cores instead. They share nothing in memory, so each browser session must stay on
one process (its widgets, downloads and media live there): nginx pins a client with a
cookie (`si_route`) that it sets itself and hashes on. Everything else they share goes
through files: the store (each script run checks its build and reopens a replaced one,
so an import through one process is seen by all at their next click), the sign-in
sessions file and the audit log.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

NGINX = os.environ.get("SI_NGINX", "/usr/sbin/nginx")
ROUTE_COOKIE = "si_route"

# Third-party modules a script run may reach (charts, tables, downloads, exports), some
# of which Streamlit or our own code would otherwise import lazily on a session thread.
_THIRD_PARTY = (
    "numpy", "pandas", "pyarrow", "polars", "plotly", "plotly.graph_objects", "plotly.io",
    "plotly.express", "kaleido", "fpdf", "fpdf.fonts", "openpyxl", "openpyxl.styles",
    "yaml", "sqlglot", "textwrap",
    "streamlit.elements.plotly_chart", "streamlit.elements.arrow",
    "streamlit.dataframe_util", "streamlit.elements.lib.column_config_utils",
)


def preload() -> list[str]:
    """Import everything a script run may import, and warm Plotly's validators, on the
    calling (main) thread. Returns the modules that could not be imported (optional
    pieces; the dashboard still runs without them, and says so where they are needed)."""
    missing = []
    # Importing a module with an st.cache_data function before Streamlit's runtime exists
    # logs "No runtime found" per function; the caches themselves are made at first use,
    # in the runtime, so the warning is noise here.
    quiet = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        _import_all(missing)
    finally:
        quiet.setLevel(level)
    _warm_plotly()
    _warm_frames()
    _warm_sqlglot()
    return missing


def _import_all(missing: list[str]) -> None:
    for name in _THIRD_PARTY:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    import service_insights

    for info in pkgutil.walk_packages(service_insights.__path__, "service_insights."):
        if info.name.endswith(".cli"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:
            missing.append(info.name)


# Plotly imports the class of each trace and layout property on first use, one module
# each: all of them for the traces the charts draw (about 540 modules, 0.3 s).
_PLOTLY_PACKAGES = ("plotly.graph_objs.layout", "plotly.graph_objs.bar",
                    "plotly.graph_objs.scatter", "plotly.graph_objs.funnel",
                    "plotly.graph_objs.heatmap", "plotly.graph_objs.table")


def _warm_plotly() -> None:
    """Plotly builds its property validators on first use of each trace and layout
    property: import them, then build and serialise one figure of every kind the charts
    use."""
    import plotly.graph_objects as go
    import plotly.io as pio

    for name in _PLOTLY_PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, name + "."):
            importlib.import_module(info.name)

    fig = go.Figure()
    fig.add_trace(go.Bar(x=["a"], y=[1], error_y={"type": "data", "array": [0.1]},
                         marker={"color": "#1f77b4"}, text=["1"], textposition="outside",
                         hovertemplate="%{y}", customdata=[[1]], orientation="v"))
    fig.add_trace(go.Scatter(x=["a"], y=[1], mode="lines+markers+text", line={"dash": "dot"},
                             marker={"symbol": "triangle-down"}, fill="tonexty"))
    fig.add_trace(go.Heatmap(z=[[1]], x=["a"], y=["b"], colorscale="Blues"))
    fig.add_trace(go.Funnel(x=[1], y=["a"]))
    fig.add_hline(y=1, annotation_text="a")
    fig.add_vline(x=0, annotation_text="b")
    fig.add_shape(type="rect", x0=0, x1=1, y0=0, y1=1)
    fig.add_annotation(text="c", x=0, y=0, showarrow=False)
    fig.update_layout(template="plotly_white", barmode="group",
                      title={"text": "t", "subtitle": {"text": "s"}, "font": {"size": 1},
                             "pad": {"t": 1}},
                      hoverlabel={"font": {"size": 1}}, font={"size": 1},
                      legend={"orientation": "h"}, margin={"t": 10},
                      xaxis={"title": {"text": "x"}, "tickformat": ".0%"},
                      yaxis={"title": {"text": "y"}, "range": [0, 1]})
    # The template (charts use plotly_white) holds a style for every trace type, each
    # its own lazily imported module: load them all now, as a figure drawn later would.
    for name in ("plotly_white", "plotly"):
        go.Figure(layout={"template": pio.templates[name]})
    pio.to_json(fig, validate=False)
    pio.to_json(go.Figure(fig.to_dict()), validate=False)  # what st.plotly_chart does
    pio.to_json(go.Figure(go.Table(header={"values": ["a"]}, cells={"values": [["b"]]})),
                validate=False)


def _warm_frames() -> None:
    """Streamlit turns tables into Arrow through pandas on first use."""
    import pandas as pd
    import polars as pl

    frame = pl.DataFrame({"a": [1], "b": ["x"]})
    frame.to_arrow()
    frame.to_pandas()
    pd.Series([1.0]).describe()


def _warm_sqlglot() -> None:
    """sqlglot loads a dialect's parser and generator on its first use."""
    import sqlglot

    tree = sqlglot.parse_one("select count(*) as n from t where x = $x group by y",
                             dialect="duckdb")
    tree.sql(dialect="duckdb")
    sqlglot.transpile("select 1", read="duckdb", write="duckdb")


# ---------------------------------------------------------------- workers behind nginx


def worker_ports(base: int, workers: int) -> list[int]:
    """The proxy listens on `base`; the workers on base+1..base+N."""
    return [base + i for i in range(1, workers + 1)]


def nginx_config(ports: list[int], listen: str, prefix: Path) -> str:
    """An nginx configuration for N dashboard processes on this machine.

    Sticky sessions without nginx Plus: a client without the `si_route` cookie gets one
    holding nginx's request id, and every request is sent to the worker that value hashes
    to (consistent hashing, so a client keeps its worker while the others come and go).
    The page, its WebSocket (/_stcore/stream, upgraded), its media and downloads, and the
    sign-in routes all carry the cookie, so they all reach the process that holds the
    session. Runs unprivileged, with its own prefix for logs, pid and temporary files;
    put the organisation's TLS proxy in front of `listen` (README)."""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in ports)
    return f"""# Written by service-insights run --workers {len(ports)}.
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    # Which worker served each request ($upstream_addr; two addresses when the first
    # refused and nginx passed the request on), for the operator and the tests.
    log_format si_upstream '$remote_addr [$time_local] "$request" $status '
                           '$body_bytes_sent upstream=$upstream_addr';
    access_log {prefix}/access.log si_upstream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 200m;              # imports

    map $cookie_{ROUTE_COOKIE} $si_route {{
        ""      $request_id;
        default $cookie_{ROUTE_COOKIE};
    }}
    map $cookie_{ROUTE_COOKIE} $si_set_route {{
        ""      "{ROUTE_COOKIE}=$request_id; Path=/; HttpOnly; SameSite=Lax";
        default "";
    }}
    map $http_upgrade $si_connection {{
        default upgrade;
        ""      "";
    }}
    upstream service_insights {{
        hash $si_route consistent;
{servers}
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://service_insights;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;   # the WebSocket and sign-in check it
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;     # Streamlit's WebSocket
            proxy_set_header Connection $si_connection;
            proxy_read_timeout 86400;            # keep idle WebSockets open
            # Stream both ways, never through nginx's temporary files: an import's
            # upload (up to 200 MB of records) is not copied to disk by the proxy, and
            # nginx's unprivileged workers need no writable folder.
            proxy_buffering off;
            proxy_request_buffering off;
            add_header Set-Cookie $si_set_route always;
        }}
    }}
}}
"""


def write_nginx_config(path: Path, ports: list[int], listen: str) -> Path:
    """Write the configuration (and its prefix folders beside it) atomically."""
    path = Path(path).resolve()
    prefix = path.parent / (path.stem + ".d")
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w") as f:
        f.write(nginx_config(ports, listen, prefix))
    os.replace(tmp, path)
    return path


def worker_command(port: int, address: str) -> list[str]:
    """One dashboard process, as `service-insights run` starts it."""
    app = Path(__file__).resolve().parent.parent / "serve.py"
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
            "--server.address", address, "--browser.gatherUsageStats", "false",
            "--server.headless", "true"]


def _wait_healthy(port: int, proc: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                        timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def run_workers(workers: int, port: int, proxy_listen: str | None,
                nginx_conf: Path | None) -> int:
    """Start N dashboard processes on ports port+1..port+N and nginx on `proxy_listen`
    (default 127.0.0.1:port); stop them all on Ctrl-C or SIGTERM. Given `nginx_conf`,
    write the nginx configuration there and start only the workers, for an nginx the
    organisation runs itself (`nginx -p <conf>.d -c <conf>`)."""
    config_only = nginx_conf is not None
    ports = worker_ports(port, workers)
    listen = proxy_listen or f"127.0.0.1:{port}"
    scratch = None
    if nginx_conf is None:  # nginx's own folder, removed again when it stops
        scratch = Path(tempfile.mkdtemp(prefix="si-nginx-"))
        nginx_conf = scratch / "nginx.conf"
    conf = write_nginx_config(nginx_conf, ports, listen)
    print(f"nginx configuration: {conf}", flush=True)
    nginx_path = shutil.which(NGINX) or NGINX
    if not config_only and not Path(nginx_path).exists():
        print(f"run: no nginx at {nginx_path}: install Debian's (apt-get install -y nginx), "
              f"or give --nginx-conf PATH and serve {conf} with your own.",
              file=sys.stderr)
        return 1
    procs: list[subprocess.Popen] = []

    def stop_all(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        # Workers one after another: the first builds the sample if there is no store
        # (the others would wait on its lock in any case).
        for p in ports:
            proc = subprocess.Popen(worker_command(p, "127.0.0.1"))
            procs.append(proc)
            if not _wait_healthy(p, proc, 120):
                print(f"run: the dashboard process on port {p} did not start; stopping.",
                      file=sys.stderr)
                stop_all()
                return 1
        if not config_only:
            prefix = conf.parent / (conf.stem + ".d")
            test = subprocess.run([nginx_path, "-t", "-q", "-p", str(prefix), "-c", str(conf),
                                   "-g", "daemon off;"], capture_output=True, text=True)
            if test.returncode != 0:
                print(f"run: nginx refused {conf}: {test.stderr.strip()}", file=sys.stderr)
                stop_all()
                return 1
            procs.append(subprocess.Popen([nginx_path, "-p", str(prefix), "-c", str(conf),
                                           "-g", "daemon off;"]))
            print(f"Service Insights: {workers} processes behind nginx; open "
                  f"http://{listen}/", flush=True)
        else:
            print(f"Service Insights: {workers} processes on ports {ports[0]}-{ports[-1]}; "
                  f"serve them with {conf}", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        gone = next(p for p in procs if p.poll() is not None)
        print(f"run: a process ({' '.join(gone.args[:4])} ...) stopped with "
              f"{gone.returncode}; stopping the others.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
