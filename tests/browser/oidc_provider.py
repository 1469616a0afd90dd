"""A real OpenID Connect provider for the sign-in tests: oidc-provider-mock's own command
(`python -m oidc_provider_mock`, uvicorn) on 127.0.0.1, in its own process group, and the
`[auth]` secrets file that points the dashboard at it.

The provider runs as strictly as it can: clients must register (so the redirect URI and
client secret are checked, as Entra ID checks them) and authorization requests must carry
a nonce. Users are given claims over its HTTP API; in the browser, its authorization page
takes the subject and an "Authorize" click, as a person signs in at their organisation.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from tests.browser.harness import free_port


class Provider:
    """oidc-provider-mock on 127.0.0.1:<free port>, stopped as a whole process group."""

    def __init__(self, log_path: Path):
        self.log_path = Path(log_path)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def start(self, timeout_s: float = 30) -> Provider:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1",
             "--port", str(self.port), "--require-registration", "--require-nonce"],
            env={**os.environ, "NO_COLOR": "1"}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider-mock exited with {self.proc.returncode}:\n"
                                   f"{self.log()}")
            try:
                with urllib.request.urlopen(self.metadata_url, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"oidc-provider-mock did not answer within {timeout_s:g} s:\n"
                           f"{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    def _send(self, method: str, path: str, body: dict) -> tuple[int, bytes]:
        req = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from exc

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """A confidential client allowed only this redirect URI: (client_id, secret)."""
        _, body = self._send("POST", "/oauth2/clients", {"redirect_uris": [redirect_uri]})
        client = json.loads(body)
        return client["client_id"], client["client_secret"]

    def set_user(self, sub: str, **claims) -> None:
        """The claims the provider puts in the ID token for subject `sub`."""
        status, _ = self._send("PUT", f"/users/{quote(sub, safe='')}", claims)
        assert status == 204, status

    def __enter__(self) -> Provider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def write_secrets(path: Path, provider: Provider, app_url: str) -> Path:
    """A secrets.toml whose `[auth]` section signs in through `provider`.

    The dashboard reads it through STREAMLIT_SECRETS_FILES (Streamlit's `secrets.files`
    option), so nothing is written into the repository's .streamlit/.
    """
    redirect_uri = f"{app_url}/oauth2callback"
    client_id, client_secret = provider.register_client(redirect_uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "[auth]\n"
        f'redirect_uri = "{redirect_uri}"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        f'client_id = "{client_id}"\n'
        f'client_secret = "{client_secret}"\n'
        f'server_metadata_url = "{provider.metadata_url}"\n', encoding="utf-8")
    path.chmod(0o600)
    return path
