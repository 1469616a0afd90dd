"""Shared fixtures: one small seeded sample store, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import streamlit as st

from service_insights.store import synth

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CASES = 8_000
SAMPLE_SEED = 7


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "sample.duckdb"
    synth.write_sample(path, SAMPLE_CASES, SAMPLE_SEED)
    return path


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


@pytest.fixture(autouse=True)
def _own_users_and_audit(tmp_path, monkeypatch):
    """No developer's users file or audit log leaks into a test: no users means the demo
    mode on synthetic data, and each test has its own audit log."""
    monkeypatch.setenv("SI_USERS_FILE", str(tmp_path / "no-users.yaml"))
    monkeypatch.setenv("SI_AUDIT_LOG", str(tmp_path / "audit.log"))


@pytest.fixture
def app_env(sample_db, monkeypatch):
    """Point the app at the session sample."""
    monkeypatch.setenv("SI_DB_PATH", str(sample_db))
    return sample_db


def app_test():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)


def query_health_row(at, query_id: str) -> dict:
    """The Query health page's row for one query file (the app already run once)."""
    at.switch_page("app_pages/query_health.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    return table[table["query"] == query_id].iloc[0]


os.environ.setdefault("SI_SAMPLE_CASES", "5000")
