"""The synthetic sample: calibrated to the published figures, different by design, stable.

Figures are computed here from the generated frames with Polars, independently of the
SQL views the dashboard uses.
"""

import polars as pl
import pytest

from service_insights.store import synth


@pytest.fixture(scope="module")
def sample():
    return synth.generate(50_000, 20240401)


def repeat_flags(refs: pl.DataFrame) -> pl.DataFrame:
    return refs.sort("client_key", "meeting_date", "referral_id").with_columns(
        gap=(pl.col("meeting_date") - pl.col("meeting_date").shift(1).over("client_key"))
        .dt.total_days()
    ).with_columns(repeat=pl.col("gap").is_not_null() & (pl.col("gap") <= 365))


def test_size_and_shape(sample):
    assert sample.cases.height == 50_000
    assert sample.cases["service_id"].n_unique() == 20
    assert sample.areas.height == 8
    first, last = sample.cases["referral_date"].min(), sample.cases["referral_date"].max()
    assert first >= synth.FIRST_DAY and last <= synth.AS_OF
    assert sample.cases["case_id"].n_unique() == 50_000


@pytest.mark.parametrize(("name", "target", "tolerance"), [
    ("marac_repeat", 0.31, 0.03),
    ("male", 0.064, 0.015),
    ("children_per_marac_case", 1.24, 0.12),
    ("partner_agency", 0.361, 0.04),
    ("minoritised", 0.141, 0.025),
    ("lgbt", 0.016, 0.008),
    ("disability", 0.101, 0.02),
    ("aged_16_17", 0.013, 0.008),
    ("marac_per_10k", 47.0, 5.0),
])
def test_national_totals_near_reference_figures(sample, name, target, tolerance):
    refs = repeat_flags(sample.marac_referrals)
    marac_cases = sample.cases.filter(pl.col("marac_referred"))
    years = 5
    values = {
        "marac_repeat": refs["repeat"].mean(),
        "male": (marac_cases["gender"] == "male").mean(),
        "children_per_marac_case": refs["children_in_household"].cast(pl.Float64).mean(),
        "partner_agency": (refs["referring_agency"] != "police").mean(),
        "minoritised": marac_cases["ethnicity"].is_in(["black", "asian", "mixed", "other"]).mean(),
        "lgbt": (marac_cases["lgbt"] == "yes").mean(),
        "disability": (marac_cases["disability"] == "yes").mean(),
        "aged_16_17": (marac_cases["age_band"] == "16-17").mean(),
        "marac_per_10k": refs.height / years / sample.areas["adult_female_population"].sum()
        * 10_000,
    }
    assert values[name] == pytest.approx(target, abs=tolerance)


def service_figures(sample) -> dict[str, dict]:
    refs = repeat_flags(sample.marac_referrals)
    marac = refs.group_by("service_id").agg(
        repeat=pl.col("repeat").mean(), partner=(pl.col("referring_agency") != "police").mean())
    cases = sample.cases.group_by("service_id").agg(
        children=(pl.col("children_in_household") > 0).mean(),
        known=(pl.col("social_care").is_in(["early_help", "child_in_need", "child_protection",
                                             "looked_after"]).sum()
               / pl.col("social_care").is_in(["none", "early_help", "child_in_need",
                                              "child_protection", "looked_after"]).sum()),
        months=pl.col("abuse_months").median(),
    )
    joined = cases.join(marac, on="service_id", how="left")
    return {r["service_id"]: r for r in joined.iter_rows(named=True)}


def test_services_differ_on_purpose(sample):
    f = service_figures(sample)
    # Whole-family: most clients have children, most of those families known to CSC.
    assert f["S03"]["children"] > 0.6 and f["S03"]["known"] > 0.66
    assert f["S05"]["children"] < 0.4 and f["S05"]["known"] < 0.4
    assert f["S07"]["repeat"] < 0.25           # repeat rate below the expected 28%
    assert f["S11"]["repeat"] > 0.40           # above the expected 40%
    assert f["S09"]["partner"] < 0.2           # few partner-agency referrals
    assert f["S14"]["months"] > 2 * f["S01"]["months"]
    per_area = sample.marac_referrals.group_by("marac_area").len().join(
        sample.areas, left_on="marac_area", right_on="area_code")
    rate = {r["marac_area"]: r["len"] / 5 / r["adult_female_population"] * 10_000
            for r in per_area.iter_rows(named=True)}
    assert rate["E06000005"] < 40 < min(v for k, v in rate.items() if k != "E06000005")


def test_repeats_come_from_returning_clients(sample):
    refs = repeat_flags(sample.marac_referrals)
    # Every repeat has an earlier referral for the same client; no flag column exists.
    assert "is_repeat" not in sample.marac_referrals.columns
    assert refs.filter(pl.col("repeat"))["gap"].max() <= 365
    returning = sample.cases.group_by("client_key").len().filter(pl.col("len") > 1).height
    assert returning > 1000


def test_same_seed_same_sample_other_seed_differs():
    a, b, c = synth.generate(3000, 5), synth.generate(3000, 5), synth.generate(3000, 6)
    assert a.cases.equals(b.cases) and a.marac_referrals.equals(b.marac_referrals)
    assert a.areas.equals(b.areas)
    assert not a.cases.equals(c.cases)


def test_too_small_a_sample_is_refused():
    with pytest.raises(ValueError, match="too small"):
        synth.generate(100)
