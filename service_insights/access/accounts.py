"""Users, roles and password sign-in, with failed attempts throttled.

Users live in a YAML file outside the repository (config/users.yaml by default, or the
file SI_USERS_FILE names), with argon2id password hashes: the file can be read by an
operator without revealing a password, and is managed with `service-insights users`.
Organisations with an identity provider use Streamlit's built-in OIDC sign-in instead;
the signed-in e-mail address is then looked up here for the role and services.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service_insights.access import grants
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
            str(item.get("password_hash") or ""))
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


def save_user(user: User, password: str | None, path: Path | None = None) -> None:
    """Add or replace a user; the password is stored only as an argon2id hash."""
    problem = grant_problem(user.role, user.services, user.areas)
    if problem:
        raise ValueError(problem)
    p = path or users_path()
    data = {"users": {}}
    if p.exists():
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {"users": {}}
        data.setdefault("users", {})
    entry = {"role": user.role}
    if user.services:
        entry["services"] = list(user.services)
    if user.areas:
        entry["areas"] = list(user.areas)
    if user.email:
        entry["email"] = user.email
    old = data["users"].get(user.username) or {}
    if password:
        if len(password) < 12:
            raise ValueError("a password needs at least 12 characters")
        entry["password_hash"] = _hasher.hash(password)
    elif old.get("password_hash"):
        entry["password_hash"] = old["password_hash"]
    data["users"][user.username] = entry
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=True)
    os.replace(tmp, p)


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
    return SignIn(user, "Signed in.")


def user_for_email(email: str, users: dict[str, User] | None = None) -> User | None:
    """The configured user for an identity provider's e-mail address, if any."""
    users = load_users() if users is None else users
    email = (email or "").lower()
    return next((u for u in users.values() if u.email and u.email == email), None)
