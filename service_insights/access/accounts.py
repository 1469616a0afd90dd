"""Users, roles and password sign-in, with failed attempts throttled.

Users live in a YAML file outside the repository (config/users.yaml by default, or the
file SI_USERS_FILE names), with argon2id password hashes: the file can be read by an
operator without revealing a password, and is managed with `service-insights users`.
Organisations with an identity provider use Streamlit's built-in OIDC sign-in instead;
the signed-in e-mail address is then looked up here for the role and services.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service_insights.access import grants, sessions
from service_insights.settings import ROOT

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")
MAX_FAILURES = 5
WINDOW_S = 15 * 60


@dataclass(frozen=True)
class User:
    username: str
    role: str
    services: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    email: str = ""
    password_hash: str = ""
    disabled: bool = False
    """A disabled user cannot sign in, and their open sessions are refused."""


class UsersFileError(ValueError):
    pass


def users_path() -> Path:
    return Path(os.environ.get("SI_USERS_FILE", ROOT / "config" / "users.yaml"))


def load_users(path: Path | None = None) -> dict[str, User]:
    """Every configured user by lower-case username; empty when there is no file."""
    p = path or users_path()
    if not p.exists():
        return {}
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UsersFileError(f"{p} is not valid YAML: {exc}") from exc
    out = {}
    for name, item in (data.get("users") or {}).items():
        if not isinstance(item, dict):
            raise UsersFileError(f"{p}: user '{name}' must be a mapping")
        role = item.get("role")
        if role not in grants.ROLES:
            raise UsersFileError(f"{p}: user '{name}' has role {role!r}; roles are "
                                 f"{', '.join(grants.ROLES)}")
        out[str(name).lower()] = User(
            str(name).lower(), role, tuple(item.get("services") or ()),
            tuple(item.get("areas") or ()), str(item.get("email") or "").lower(),
            str(item.get("password_hash") or ""), bool(item.get("disabled", False)))
    return out


def grant_problem(role: str, services, areas) -> str | None:
    """What is missing for a user of this role to see anything, if anything."""
    if role not in grants.ROLES:
        return f"the role is one of {', '.join(grants.ROLES)}"
    if role == "service_manager" and not services:
        return "a service manager needs at least one service"
    if role == "commissioner" and not areas:
        return "a commissioner needs at least one area"
    return None


def unregistered_problem(services, areas, known_services, known_areas) -> str | None:
    """A grant of a service or area the store does not hold, named with the valid ids.

    A typo (S77 for S07) would otherwise save a user who sees nothing, or who would see a
    service registered later under that id without anyone deciding they should.
    """
    for kind, asked, known in (("service", services, known_services),
                               ("area", areas, known_areas)):
        unknown = [x for x in asked or () if x not in set(known)]
        if unknown:
            valid = ", ".join(sorted(known)) or "none yet"
            return (f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a "
                    f"registered {kind}; the registered {kind} ids are {valid}")
    return None


@contextlib.contextmanager
def _edit(path: Path | None = None) -> Iterator[dict]:
    """The users file's mapping, changed by the caller and written back whole (0600,
    temporary file renamed over), under an exclusive lock so that two administrators do
    not lose each other's changes."""
    p = path or users_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(p.with_name(f".{p.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = {"users": {}}
        if p.exists():
            try:
                data = yaml.safe_load(p.read_text(encoding="utf-8")) or {"users": {}}
            except yaml.YAMLError as exc:
                raise UsersFileError(f"{p} is not valid YAML: {exc}") from exc
            data["users"] = data.get("users") or {}
        yield data["users"]
        sessions.write_private(p, yaml.safe_dump(data, sort_keys=True))
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)


def _check_password(password: str) -> str:
    if len(password) < 12:
        raise ValueError("a password needs at least 12 characters")
    return _hasher.hash(password)


def save_user(user: User, password: str | None, path: Path | None = None) -> None:
    """Add or replace a user; the password is stored only as an argon2id hash.

    A new password ends the user's sessions. Whether a user is disabled is kept as it
    was (enabling and disabling are `set_disabled`, so an edit never re-enables anyone).
    """
    problem = grant_problem(user.role, user.services, user.areas)
    if problem:
        raise ValueError(problem)
    new_hash = _check_password(password) if password else None
    entry = {"role": user.role}
    if user.services:
        entry["services"] = list(user.services)
    if user.areas:
        entry["areas"] = list(user.areas)
    if user.email:
        entry["email"] = user.email
    with _edit(path) as users:
        old = users.get(user.username) or {}
        if new_hash:
            entry["password_hash"] = new_hash
        elif old.get("password_hash"):
            entry["password_hash"] = old["password_hash"]
        if user.disabled or old.get("disabled"):
            entry["disabled"] = True
        users[user.username] = entry
    if new_hash and old:
        _sessions(path).revoke_user(user.username)


def _existing(users: dict, username: str) -> dict:
    entry = users.get(username)
    if entry is None:
        raise ValueError(f"there is no user called {username!r}")
    return entry


def set_password(username: str, password: str, path: Path | None = None) -> int:
    """Change a user's password; ends all their sessions (returns how many)."""
    new_hash = _check_password(password or "")
    with _edit(path) as users:
        _existing(users, username)["password_hash"] = new_hash
    return _sessions(path).revoke_user(username)


def set_disabled(username: str, disabled: bool, path: Path | None = None) -> int:
    """Disable (or enable) a user. Disabling ends all their sessions at once (returns how
    many); the dashboard also refuses a disabled user on every script run."""
    with _edit(path) as users:
        entry = _existing(users, username)
        if disabled:
            entry["disabled"] = True
        else:
            entry.pop("disabled", None)
    return _sessions(path).revoke_user(username) if disabled else 0


def remove_user(username: str, path: Path | None = None) -> int:
    """Delete a user and end their sessions (returns how many)."""
    with _edit(path) as users:
        _existing(users, username)
        del users[username]
    return _sessions(path).revoke_user(username)


def _sessions(path: Path | None):
    """The sessions that belong to this users file."""
    return sessions.SessionStore(sessions.sessions_path(path))


@dataclass
class Throttle:
    """Failed sign-ins per username: after MAX_FAILURES in WINDOW_S, refuse until the
    oldest failure leaves the window. Shared by every session in the process."""

    max_failures: int = MAX_FAILURES
    window_s: float = WINDOW_S
    clock: callable = time.monotonic
    _failures: dict[str, deque] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, key: str) -> float:
        """Seconds until `key` may try again (0 when it may try now)."""
        with self._lock:
            q = self._prune(key)
            if len(q) < self.max_failures:
                return 0.0
            return max(0.0, q[0] + self.window_s - self.clock())

    def failed(self, key: str) -> None:
        with self._lock:
            self._prune(key).append(self.clock())

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, key: str) -> deque:
        q = self._failures.setdefault(key, deque())
        now = self.clock()
        while q and q[0] + self.window_s <= now:
            q.popleft()
        return q


THROTTLE = Throttle()


DISABLED = "This account is disabled. Ask an administrator if you need it again."


@dataclass(frozen=True)
class SignIn:
    user: User | None
    message: str
    wait_s: float = 0.0


def authenticate(username: str, password: str, users: dict[str, User] | None = None,
                 throttle: Throttle | None = None) -> SignIn:
    """Check a password; the same message for an unknown user and a wrong password."""
    throttle = throttle or THROTTLE
    key = (username or "").strip().lower()
    users = load_users() if users is None else users
    wait = throttle.wait_s(key)
    if wait > 0:
        return SignIn(None, f"Too many failed sign-ins for this username. Try again in "
                            f"{int(wait // 60) + 1} minutes.", wait)
    user = users.get(key)
    try:
        # Verify against a dummy hash for unknown users too, so timing does not reveal
        # which usernames exist.
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH,
                       password or "")
        ok = user is not None and bool(user.password_hash)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        throttle.failed(key)
        return SignIn(None, "The username or password is not right.")
    throttle.succeeded(key)
    if user.disabled:
        return SignIn(None, DISABLED)
    return SignIn(user, "Signed in.")


def user_for_email(email: str, users: dict[str, User] | None = None) -> User | None:
    """The configured user for an identity provider's e-mail address, if any."""
    users = load_users() if users is None else users
    email = (email or "").lower()
    return next((u for u in users.values() if u.email and u.email == email), None)
