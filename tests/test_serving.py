"""`service-insights run --workers N`: its nginx configuration (checked by Debian's nginx
itself) and its refusal of a count that makes no sense."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service_insights import serving
from tests.conftest import ROOT

NGINX = Path(serving.NGINX)


@pytest.mark.skipif(not NGINX.exists(), reason="needs Debian's nginx")
def test_the_written_nginx_config_is_accepted_by_nginx(tmp_path):
    conf = serving.write_nginx_config(tmp_path / "n.conf", [9001, 9002], "127.0.0.1:9000")
    prefix = conf.parent / (conf.stem + ".d")
    out = subprocess.run([str(NGINX), "-t", "-p", str(prefix), "-c", str(conf),
                          "-g", "daemon off;"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = conf.read_text()
    # Both workers, hashed on the route cookie; WebSocket upgrades passed through.
    assert "server 127.0.0.1:9001" in text and "server 127.0.0.1:9002" in text
    assert "hash $si_route consistent;" in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text


def test_the_workers_are_on_the_ports_after_the_proxys():
    assert serving.worker_ports(8640, 3) == [8641, 8642, 8643]


def test_zero_workers_is_refused_in_one_sentence():
    out = subprocess.run([sys.executable, "-m", "service_insights.cli", "run", "--workers",
                          "0"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "run: --workers must be 1 or more, not 0."
