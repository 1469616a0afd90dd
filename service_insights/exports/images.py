"""Static chart images (PNG, SVG, PDF) from one persistent headless Chromium per process.

Starting Chromium costs seconds; a warm Kaleido renders a chart in a fraction of one. So
the process keeps one Kaleido browser on a private event-loop thread, and every export
(any Streamlit session, the CLI, a report pack's batch) queues its figures there.

We drive `kaleido.Kaleido` ourselves rather than `kaleido.start_sync_server()`: the sync
server hands every caller's result back through one shared queue, so two sessions
exporting at once could each receive the other's image (one service's figures in another
viewer's download), and it waits forever when the browser never started. Here each call
gets its own future, a browser that fails to start is a clear error, and a browser that
dies is restarted on the next call.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

FORMATS = ("png", "svg", "pdf")
PAGE_FORMAT = "jpeg"
"""What the report pack embeds: the PDF library takes a JPEG as it is, where a PNG is
decoded, hashed and compressed again (most of the pack's PDF time). Not offered as a
download."""
TABS = 3
"""Tabs of the one browser that render at once: a report pack's 30 charts are drawn in
parallel, not one after another (each tab costs tens of MB)."""
START_TIMEOUT_S = 60.0
RENDER_TIMEOUT_S = 60.0


class ImagesUnavailable(Exception):
    """No image can be made in this process (no Chromium, or it would not start)."""


@dataclass(frozen=True)
class ImageJob:
    figure: go.Figure
    format: str = "png"
    width: int = 1100
    height: int | None = None
    scale: float = 1.0


class ImageServer:
    """One Kaleido (one headless Chromium) on its own event loop, shared by all threads."""

    def __init__(self, browser_path: str | None = None, tabs: int = 1):
        self._browser_path = browser_path
        self._tabs = tabs
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._kaleido = None
        self.failure: str | None = None
        """Why the browser last failed to start, until it starts."""

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Open the browser now (it is otherwise opened by the first render)."""
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> None:
        if self._kaleido is not None and self._alive():
            return
        self._stop_locked()
        import kaleido  # imported here: only exports need it

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="kaleido-images", daemon=True)
        thread.start()
        kwargs = {"path": self._browser_path} if self._browser_path else {}

        async def open_browser():
            k = kaleido.Kaleido(n=self._tabs, timeout=RENDER_TIMEOUT_S, mathjax=False,
                                **kwargs)
            await k.open()
            return k

        try:
            self._kaleido = asyncio.run_coroutine_threadsafe(open_browser(), loop).result(
                START_TIMEOUT_S)
        except Exception as exc:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()
            self.failure = _explain(exc)
            raise ImagesUnavailable(self.failure) from exc
        self._loop, self._thread, self.failure = loop, thread, None

    def _alive(self) -> bool:
        k = self._kaleido
        if self._thread is None or not self._thread.is_alive():
            return False
        proc = getattr(k, "subprocess", None)
        return proc is None or getattr(proc, "poll", lambda: None)() is None

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        loop, k = self._loop, self._kaleido
        self._loop, self._thread, self._kaleido = None, None, None
        if loop is None:
            return
        if k is not None:
            # A browser that already died cannot be closed politely.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(k.close(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)

    # -------------------------------------------------------------- rendering

    def render(self, job: ImageJob) -> bytes:
        """One image; raises ImagesUnavailable or the render's own error."""
        result = self.render_many([job])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def render_many(self, jobs: Sequence[ImageJob]) -> list[bytes | Exception]:
        """A batch in one round trip to the browser; a failed image does not stop the rest.

        Raises ImagesUnavailable when the browser cannot be started at all.
        """
        for job in jobs:
            if job.format not in (*FORMATS, PAGE_FORMAT):
                raise ValueError(f"image format {job.format!r} is not one of "
                                 f"{', '.join(FORMATS)}")
        if not jobs:
            return []
        specs = [_spec(job) for job in jobs]
        with self._lock:
            self._ensure_started()
            loop, k = self._loop, self._kaleido

        async def batch():
            return await asyncio.gather(
                *(k.calc_fig(fig, opts=opts) for fig, opts in specs), return_exceptions=True)

        future = asyncio.run_coroutine_threadsafe(batch(), loop)
        try:
            out = future.result(RENDER_TIMEOUT_S * len(jobs) + 30)
        except Exception as exc:  # the loop itself failed: start afresh next time
            future.cancel()
            self.stop()
            return [ImagesUnavailable(f"the image browser stopped: {exc}") for _ in jobs]
        return [r if isinstance(r, bytes) else _as_error(r) for r in out]


def _spec(job: ImageJob) -> tuple[dict, dict]:
    fig = job.figure.to_dict()
    height = job.height or fig.get("layout", {}).get("height") or 500
    return fig, {"format": job.format, "width": job.width, "height": height,
                 "scale": job.scale}


def _as_error(value: BaseException) -> Exception:
    if isinstance(value, Exception):
        return value
    return RuntimeError(f"image rendering was interrupted ({type(value).__name__})")


def _explain(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "ChromeNotFoundError" or isinstance(exc, FileNotFoundError):
        return ("Image export needs Chromium (on Debian: apt-get install chromium), and none "
                "was found. Data exports (CSV, XLSX) still work.")
    return (f"Image export could not start Chromium ({name}: {exc}). Data exports "
            "(CSV, XLSX) still work.")


_server: ImageServer | None = None
_server_lock = threading.Lock()


def server() -> ImageServer:
    """The process's one image server (its browser opens on first use)."""
    global _server
    with _server_lock:
        if _server is None:
            _server = ImageServer(tabs=TABS)
            atexit.register(_server.stop)
        return _server


def unavailable_reason() -> str | None:
    """Why images cannot be made here, when that is known without starting a browser."""
    if _server is not None and _server.failure:
        return _server.failure
    if os.environ.get("BROWSER_PATH") or any(
            shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome",
                                            "chrome")):
        return None
    return _explain(FileNotFoundError("chromium"))


def render(figure: go.Figure, fmt: str, *, width: int = 1100, scale: float = 1.0) -> bytes:
    return server().render(ImageJob(figure, fmt, width=width, scale=scale))
