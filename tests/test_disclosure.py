"""Disclosure control on hand-made tables: what is hidden, and what can be worked out."""

import itertools
import random

import polars as pl
import pytest

from service_insights.protection import disclosure
from service_insights.protection.disclosure import Rules, protect

RULES = Rules(threshold=5, min_base=10)


def test_counts_from_1_to_4_are_suppressed_zero_and_5_are_not():
    t = pl.DataFrame({"n": [0, 1, 4, 5, 12]})
    p = protect(t, counts=["n"], rules=RULES)
    assert p.hidden["n"] == [False, True, True, False, False]
    assert p.frame["n"].to_list() == [0, None, None, 5, 12]
    assert p.display()["n"].to_list() == ["0", "<5", "<5", "5", "12"]


def test_one_suppressed_cell_in_a_group_takes_the_next_smallest_with_it():
    # Total 33 is known (it is the base of every share); without secondary suppression
    # a = 33 - 10 - 20 = 3 could be worked out.
    t = pl.DataFrame({"source": ["a", "b", "c"], "n": [3, 10, 20]})
    p = protect(t, counts=["n"], dims=["source"], rules=RULES)
    assert p.hidden["n"] == [True, True, False]
    assert p.primary == 1 and p.secondary == 1
    assert p.display()["n"].to_list() == ["<5", "–", "20"]


def test_secondary_skips_zero_cells():
    t = pl.DataFrame({"x": ["a", "b", "c"], "n": [2, 0, 30]})
    p = protect(t, counts=["n"], dims=["x"], rules=RULES)
    assert p.hidden["n"] == [True, False, True]


def test_two_suppressed_cells_need_no_secondary():
    t = pl.DataFrame({"x": ["a", "b", "c"], "n": [2, 3, 30]})
    p = protect(t, counts=["n"], dims=["x"], rules=RULES)
    assert p.hidden["n"] == [True, True, False] and p.secondary == 0


def test_rates_withheld_on_suppressed_count_or_small_base():
    t = pl.DataFrame({
        "x": ["a", "b", "c", "d"],
        "n": [3, 6, 8, 50],
        "base": [40, 8, 40, 100],
        "pct": [7.5, 75.0, 20.0, 50.0],
    })
    p = protect(t, rates={"pct": ("n", "base")}, dims=["x"], rules=RULES)
    # a: its count (3) is suppressed; c shares a's base (40), so its count (8) goes with
    # it (secondary); b's base (8) is under 10; only d is shown.
    assert p.hidden["n"] == [True, False, True, False]
    assert p.frame["pct"].to_list() == [None, None, None, 50.0]


def test_measures_withheld_on_small_base():
    t = pl.DataFrame({"g": ["a", "b"], "median_months": [30.0, 80.0], "n": [9, 40]})
    p = protect(t, measures={"median_months": "n"}, rules=RULES)
    assert p.frame["median_months"].to_list() == [None, 80.0]
    assert p.display()["median_months"].to_list() == ["–", "80.0"]


def test_note_says_what_was_withheld():
    t = pl.DataFrame({"x": ["a", "b", "c"], "n": [3, 10, 20]})
    note = protect(t, counts=["n"], dims=["x"], rules=RULES).note()
    assert "Counts from 1 to 4 are shown as <5" in note
    assert "1 more cell withheld" in note
    clean = protect(pl.DataFrame({"n": [50]}), counts=["n"], rules=RULES).note()
    assert "withheld" not in clean.split(";")[0]


def _recoverable(frame, hidden, dims, col):
    """Cells that a reader could work out from a group total: a lone hidden cell."""
    found = []
    for d in dims:
        others = [o for o in dims if o != d]
        groups = {}
        for i, row in enumerate(frame.iter_rows(named=True)):
            groups.setdefault(tuple(row[o] for o in others), []).append(i)
        for rows in groups.values():
            hid = [i for i in rows if hidden[i]]
            if len(rows) > 1 and len(hid) == 1:
                visible_nonzero = [i for i in rows if not hidden[i] and frame[col][i] > 0]
                if visible_nonzero:
                    found.append(hid[0])
    return found


@pytest.mark.parametrize("seed", range(25))
def test_random_two_way_tables_leave_nothing_recoverable(seed):
    rng = random.Random(seed)
    xs, ss = ["q1", "q2", "q3", "q4"], ["standard", "medium", "high"]
    rows = [{"x": x, "s": s, "n": rng.choice([0, 1, 2, 3, 4, 5, 6, 9, 15, 40])}
            for x, s in itertools.product(xs, ss)]
    t = pl.DataFrame(rows)
    p = protect(t, counts=["n"], dims=["x", "s"], rules=RULES)
    shown = p.frame["n"].to_list()
    assert not any(v is not None and 0 < v < 5 for v in shown)
    assert _recoverable(t, p.hidden["n"], ["x", "s"], "n") == []


def test_threshold_is_configurable():
    t = pl.DataFrame({"n": [7]})
    assert protect(t, counts=["n"], rules=Rules(threshold=10)).frame["n"][0] is None
    assert protect(t, counts=["n"], rules=Rules(threshold=5)).frame["n"][0] == 7


def test_withheld_text_is_not_a_number():
    assert not disclosure.WITHHELD_TEXT.strip("-").isdigit()


def test_unrelated_measures_with_their_own_bases_are_not_secondary_suppressed():
    # Five separate shares (male, LGBT+, ...) each with its own base: not parts of a total.
    t = pl.DataFrame({
        "group": ["male", "lgbt", "disabled"],
        "n": [2, 23, 40],
        "base": [300, 280, 310],
        "pct": [0.7, 8.2, 12.9],
    })
    p = protect(t, rates={"pct": ("n", "base")}, dims=["group"], rules=RULES)
    assert p.hidden["n"] == [True, False, False]
    assert p.frame["pct"].to_list() == [None, 8.2, 12.9]


def test_shares_of_one_total_are_secondary_suppressed():
    t = pl.DataFrame({"src": ["a", "b", "c"], "n": [2, 23, 40], "base": [65, 65, 65],
                      "pct": [3.1, 35.4, 61.5]})
    p = protect(t, rates={"pct": ("n", "base")}, dims=["src"], rules=RULES)
    assert p.hidden["n"] == [True, True, False]
