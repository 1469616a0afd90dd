"""Signed-in sessions that survive a refresh: a random token in an HttpOnly cookie, and
only its SHA-256 digest on the server.

Streamlit forgets everything on a refresh or in a new tab (each is a new script session),
so sign-in is kept in a browser cookie instead. The cookie holds a random token
(secrets.token_urlsafe, 256 bits); the sessions file holds only its SHA-256 digest, so
whoever reads the file (or a backup of it) cannot sign in with what they read. A fast hash
is enough for a random token: there is nothing to guess, unlike a password.

A session ends when it is idle for longer than the idle timeout, when it reaches its
absolute lifetime, on sign-out, and for every session of a user when their password is
changed, or they are disabled or removed (accounts.py calls `revoke_user`). Every script
run looks its token up here, so an ended session is refused at the user's next click.

The file is JSON beside the users file (or SI_SESSIONS_FILE), never committed, written
whole to a temporary file with mode 0600 and renamed over, under an exclusive lock so
that two server processes do not lose each other's changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from service_insights import settings

COOKIE = "si_session"
"""The cookie's name (HttpOnly, SameSite=Strict; Secure when served over HTTPS)."""
_TOUCH_EVERY_S = 60
"""Idle time is recorded at most once a minute, so that a busy page is not a write per
click; the idle timeout is therefore exact to within a minute."""


class SessionsFileError(ValueError):
    pass


@dataclass(frozen=True)
class Session:
    username: str
    method: str
    created: float
    seen: float


def digest(token: str) -> str:
    """What is stored for a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def sessions_path(users_file: Path | None = None) -> Path:
    """SI_SESSIONS_FILE, or beside the users file the sessions belong to."""
    from service_insights.access import accounts

    explicit = os.environ.get("SI_SESSIONS_FILE")
    if explicit:
        return Path(explicit)
    users = Path(users_file or accounts.users_path())
    return users.with_name(f"{users.stem}.sessions.json")


class SessionStore:
    """The sessions file, with the clock and the limits passed in (tests use a fake clock)."""

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time,
                 idle_s: float | None = None, max_s: float | None = None):
        cfg = settings.get()
        self.path = Path(path or sessions_path())
        self.clock = clock
        self.idle_s = cfg.session_idle_minutes * 60 if idle_s is None else idle_s
        self.max_s = cfg.session_max_hours * 3600 if max_s is None else max_s

    # ------------------------------------------------------------ the operations

    def create(self, username: str, method: str = "password") -> str:
        """A new session for `username`; returns the token (shown to the browser only)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._locked() as data:
            data[digest(token)] = {"user": username, "method": method, "created": now,
                                   "seen": now}
        return token

    def lookup(self, token: str | None) -> Session | None:
        """The live session for a token, or None (unknown, ended or expired). Records the
        visit, for the idle timeout."""
        if not token:
            return None
        key = digest(token)
        now = self.clock()
        entry = self._read().get(key)
        if entry is None:
            return None
        if self._expired(entry, now):
            self.revoke(token)
            return None
        if now - entry["seen"] >= _TOUCH_EVERY_S:
            with self._locked() as data:
                if key in data:
                    data[key]["seen"] = now
        return Session(entry["user"], entry.get("method", "password"), entry["created"],
                       now)

    def revoke(self, token: str | None) -> bool:
        """End one session (sign-out); True if it was live."""
        if not token:
            return False
        with self._locked() as data:
            return data.pop(digest(token), None) is not None

    def revoke_user(self, username: str) -> int:
        """End every session of a user (password changed, disabled, removed)."""
        with self._locked() as data:
            keys = [k for k, v in data.items() if v.get("user") == username]
            for k in keys:
                del data[k]
        return len(keys)

    def live(self) -> dict[str, str]:
        """Stored digest to username, for the sessions still live (for tests and admins)."""
        now = self.clock()
        return {k: v["user"] for k, v in self._read().items() if not self._expired(v, now)}

    # ------------------------------------------------------------ the file

    def _expired(self, entry: dict, now: float) -> bool:
        return now - entry["seen"] > self.idle_s or now - entry["created"] > self.max_s

    def _read(self) -> dict:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, json.JSONDecodeError) as exc:
            raise SessionsFileError(f"The sessions file {self.path} could not be read "
                                    f"({exc}); delete it to sign everyone out.") from exc
        if not isinstance(data, dict):
            raise SessionsFileError(f"The sessions file {self.path} is not a JSON object; "
                                    "delete it to sign everyone out.")
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict]:
        """Read, let the caller change, write back whole; expired sessions are dropped."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.path.with_name(f".{self.path.name}.lock"),
                       os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            now = self.clock()
            data = {k: v for k, v in data.items() if not self._expired(v, now)}
            write_private(self.path, json.dumps(data, sort_keys=True))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.close(lock)


def write_private(path: Path, text: str) -> None:
    """Write a whole file readable by its owner only: a temporary file (0600), then a
    rename over the old one, so a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
