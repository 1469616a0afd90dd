"""Attack on the figures shared by every session (ui/chart_blocks._shared_figure): the
first viewer to draw a chart fills the cache; whoever asks next for the same chart with
a different audience, scope, period or store must get their own figure, never the first
viewer's. A service manager sees their own service's counts exactly, a commissioner the
same service perturbed: a cache that ignored the audience would show the commissioner
exact counts (a disclosure) or the manager perturbed ones.

Each figure is checked against one built without any cache (results.run, charts.build).
"""

from __future__ import annotations

import duckdb
import pytest

from service_insights import settings
from service_insights.catalogue import catalog, comparators, periods, results
from service_insights.catalogue.scope import Scope
from service_insights.presentation import charts
from service_insights.store import db
from service_insights.ui import chart_blocks, lifecycle

SERVICE = "S01"
MANAGER = results.Audience(visible=(SERVICE,), own=(SERVICE,))
COMMISSIONER = results.EVERYONE


def _ys(fig) -> list:
    return [list(t.y) if t.y is not None else None for t in fig.data]


def _direct(qid: str, scope: Scope, period, audience: results.Audience,
            comparator: str = comparators.DEFAULT):
    cfg = settings.get()
    entry = catalog.get(cfg.queries_dir, qid)
    return charts.build(results.run(db.Store(cfg.db_path), entry.spec, scope, period, cfg,
                                    audience, comparator))


def _shared(qid: str, scope: Scope, period, audience: results.Audience,
            comparator: str = comparators.DEFAULT):
    entry = catalog.get(settings.get().queries_dir, qid)
    return chart_blocks._shared_figure(lifecycle.store_key(), qid, entry.spec.digest, scope,
                                       period, audience, comparator)


def _charts() -> list[str]:
    return [e.id for e in catalog.discover(settings.get().queries_dir)
            if e.spec and not e.error and not e.id.startswith("findings/")
            and e.spec.chart not in ("kpi", "table")]


def test_a_second_viewer_never_gets_the_first_viewers_figure(app_env):
    con = duckdb.connect(str(app_env), read_only=True)
    try:
        name = con.execute("select name from store.services where service_id = $s",
                           {"s": SERVICE}).fetchone()[0]
    finally:
        con.close()
    one = Scope((SERVICE,), None, True, name)
    period = periods.financial_year(2023)
    differs = 0
    for qid in _charts():
        first = _shared(qid, one, period, MANAGER)        # the manager fills the cache
        second = _shared(qid, one, period, COMMISSIONER)  # then the commissioner asks
        assert _ys(first) == _ys(_direct(qid, one, period, MANAGER)), qid
        assert _ys(second) == _ys(_direct(qid, one, period, COMMISSIONER)), qid
        differs += _ys(first) != _ys(second)
    # The attack has teeth: perturbation changes some of these figures.
    assert differs > 0


@pytest.mark.parametrize("other", ["period", "scope"])
def test_another_period_or_scope_gets_its_own_figure(app_env, other):
    period, later = periods.financial_year(2022), periods.financial_year(2023)
    one = Scope(("S01",), None, True, "S01")
    two = Scope(("S02",), None, True, "S02")
    qid = next(q for q in _charts() if "gender" in q)
    _shared(qid, one, period, COMMISSIONER)
    scope, when = (one, later) if other == "period" else (two, period)
    assert _ys(_shared(qid, scope, when, COMMISSIONER)) == _ys(
        _direct(qid, scope, when, COMMISSIONER))


def test_another_comparator_gets_its_own_figure(app_env):
    # Found when main's comparators met the shared figures: the figure cache was keyed
    # without the comparator, so "all services" was drawn for whoever came after
    # "services of the same type".
    one = Scope(("S01",), None, True, "S01")
    period = periods.financial_year(2023)
    differs = 0
    for qid in _charts():
        first = _shared(qid, one, period, COMMISSIONER, "same_type")
        second = _shared(qid, one, period, COMMISSIONER, "all")
        assert _ys(first) == _ys(_direct(qid, one, period, COMMISSIONER, "same_type")), qid
        assert _ys(second) == _ys(_direct(qid, one, period, COMMISSIONER, "all")), qid
        differs += _ys(first) != _ys(second)
    assert differs > 0
