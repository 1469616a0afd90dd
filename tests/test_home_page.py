"""The home page under AppTest: runs, and shows what an independent SQL computes."""

import duckdb
import pytest

from service_insights.store import db
from tests import by_hand
from tests.conftest import app_test

# Written against the raw tables (store.*), not the views the app uses, with the
# financial year and repeat rules spelled out again here.
INDEPENDENT = """
with c as (
    select * from store.cases
    where referral_date between $start and $end
      and ($svc is null or service_id = $svc)
),
r as (
    select *, meeting_date - lag(meeting_date) over (
        partition by client_key order by meeting_date, referral_id) as gap
    from store.marac_referrals
),
m as (
    select * from r where meeting_date between $start and $end
      and ($svc is null or service_id = $svc)
)
select
    -- each count beside the sum of its records' keys, for the cell key method by hand
    count(*), sum(record_key),
    count(*) filter (where dash_score >= 14), sum(record_key) filter (where dash_score >= 14),
    count(dash_score), sum(record_key) filter (where dash_score is not null),
    count(*) filter (where children_in_household > 0),
    sum(record_key) filter (where children_in_household > 0),
    count(*) filter (where social_care in
        ('early_help','child_in_need','child_protection','looked_after')),
    sum(record_key) filter (where social_care in
        ('early_help','child_in_need','child_protection','looked_after')),
    count(*) filter (where social_care not in ('unknown')),
    sum(record_key) filter (where social_care not in ('unknown')),
    (select count(*) filter (where gap <= 365) from m),
    (select sum(record_key) filter (where gap <= 365) from m),
    (select count(*) from m), (select sum(record_key) from m)
from c
"""


def expected(db_path, start, end, svc):
    """Cases referred and the four rates, each count perturbed by hand (the demo viewer
    sees every service, so every count carries cell-key noise)."""
    # Same settings as the app's handle: DuckDB refuses a second, different one in-process.
    con = duckdb.connect(str(db_path), read_only=True, config=db.read_only_config())
    try:
        row = con.execute(INDEPENDENT, {"start": start, "end": end, "svc": svc}).fetchone()
    finally:
        con.close()
    n = [by_hand.perturb(int(row[i]), int(row[i + 1] or 0)) for i in range(0, len(row), 2)]
    cases, high, assessed, children, known, recorded, repeats, heard = n

    def rate(a, b):
        return round(100.0 * a / b, 1)

    return (cases, rate(high, assessed), rate(children, cases), rate(known, recorded),
            rate(repeats, heard))


def open_home(fy=None, services=None, comparator=None):
    """Run the app with the sidebar filters already chosen.

    Streamlit 1.67's AppTest drops the entrypoint's widgets on every run after the first
    in an st.navigation app, so choices are made through session state before the first
    run; changing them in a live page is covered by the browser tests.
    """
    at = app_test()
    if fy:
        at.session_state["fy"] = fy
    if services:
        at.session_state["services"] = list(services)
    if comparator:
        at.session_state["comparator"] = comparator
    at.run()
    assert not at.exception
    return at


def shown(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize(("fy", "service"), [("2024-25", None), ("2023-24", "S03"),
                                             ("2022-23", "S11")])
def test_home_shows_independently_computed_figures(app_env, fy, service):
    at = open_home(fy, [service] if service else None)
    start, end = f"{fy[:4]}-04-01", f"20{fy[-2:]}-03-31"
    cases, hr, ch, sc, rep = expected(app_env, start, end, service)
    got = shown(at)
    assert got["Cases referred"] == f"{cases:,}"
    assert got["High risk (DASH 14+)"] == f"{hr:.1f}%"
    assert got["Clients with children"] == f"{ch:.1f}%"
    assert got["Families known to children's social care"] == f"{sc:.1f}%"
    assert got["Marac repeat rate"] == f"{rep:.1f}%"


def test_service_selection_shows_benchmark_beside_each_figure(app_env):
    at = open_home(services=["S03"], comparator="all")
    _, hr_all, *_ = expected(app_env, "2024-04-01", "2025-03-31", None)
    # The comparison is a caption under each figure (it wraps; a delta description was
    # cut off in a narrow card), in the same order as the figures.
    about = [c.value for c in at.caption if c.value.startswith(("vs all services",
                                                                 "All-services"))]
    labels = [m.label for m in at.metric]
    assert len(about) == len(labels)
    high_risk = about[labels.index("High risk (DASH 14+)")]
    assert high_risk.startswith(f"vs all services ({hr_all:.1f}%)")


def test_the_default_comparator_is_other_services_of_the_same_type(app_env):
    at = open_home(services=["S03"])  # an Idva service
    about = [c.value for c in at.caption if c.value.startswith(("vs other Idva services",
                                                                 "Other Idva services"))]
    assert len(about) == len(at.metric)


def test_missing_store_is_built_on_first_start(tmp_path, monkeypatch):
    path = tmp_path / "fresh.duckdb"
    monkeypatch.setenv("SI_DB_PATH", str(path))
    monkeypatch.setenv("SI_SAMPLE_CASES", "2000")
    at = app_test()
    at.run()
    assert not at.exception
    assert path.exists()
    assert "building the bundled synthetic sample" in at.info[0].value
    assert len(at.metric) == 5


def test_corrupt_store_gives_message_and_never_the_sample(tmp_path, monkeypatch):
    """A file nobody can tell held only the sample might hold real records: the message
    says so and how to restore it, and no one is offered the synthetic sample in its
    place (tests/test_faults.py has the administrator's rebuild of a known sample)."""
    path = tmp_path / "broken.duckdb"
    path.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("SI_DB_PATH", str(path))
    monkeypatch.setenv("SI_SAMPLE_CASES", "2000")
    at = app_test()
    at.run()
    assert not at.exception
    assert "cannot be read" in at.error[0].value
    assert len(at.metric) == 0
    assert not at.button
    assert any("backup" in m.value for m in at.markdown)
    assert path.read_bytes() == b"this is not a database" * 100
