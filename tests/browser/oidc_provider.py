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
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from tests.browser.harness import Background


class Provider(Background):
    """oidc-provider-mock on 127.0.0.1:<free port>, stopped as a whole process group."""

    name = "oidc-provider-mock"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def start(self, timeout_s: float = 30) -> Provider:
        return self._spawn(
            [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1",
             "--port", str(self.port), "--require-registration", "--require-nonce"],
            self.metadata_url, timeout_s, env={**os.environ, "NO_COLOR": "1"})

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
