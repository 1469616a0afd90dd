"""The synthetic sample: services that look and differ like real ones, from a seed.

National totals are calibrated to ../shared/REFERENCE_FIGURES.md (Marac repeats about
31%, male victims about 6%, about 1.2 children per Marac case, 47 Marac cases per 10,000
adult females). Some services are made different on purpose so that findings fire for
them and not for others (see SERVICES). Repeats are never drawn as a flag: a client
returns to the service (a new episode after a gap) and is referred to Marac again, and
the schema's view decides from the dates whether that is a repeat.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

FIRST_DAY = dt.date(2020, 4, 1)
AS_OF = dt.date(2025, 3, 31)
"""Five financial years, 2020-21 to 2024-25; cases still open on AS_OF have no exit."""


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    region: str
    marac_per_10k: float
    """Target Marac cases a year per 10,000 adult females; the area's population is set
    from its generated Marac volume so that the rate lands here."""


AREAS = [
    Area("E06000001", "Ashcombe", "North East", 52),  # Idva FTE below guidance (_IDVA_COVER)
    Area("E06000002", "Brindlehurst", "North East", 47),
    Area("E06000003", "Calderbrook", "North West", 45),
    Area("E06000004", "Dunmere", "Yorkshire and The Humber", 55),
    Area("E06000005", "Eskton", "East Midlands", 28),  # below the expected 40
    Area("E06000006", "Fenwold", "West Midlands", 49),
    Area("E06000007", "Greyhaven", "South West", 46),
    Area("E06000008", "Holloway Vale", "London", 50),
]


_IDVA_COVER = {"E06000001": 0.55}
"""Registered Idva FTE as a share of what SafeLives guidance implies for the area's Marac
volume (100 cases a year per FTE); areas not listed are staffed at 1.3 to 1.5 of it
(volumes grow over the five years, so the latest year needs more than the average)."""


@dataclass(frozen=True)
class Profile:
    """How one service's clients differ; defaults are the national picture."""

    high_risk: float = 0.62  # share of clients assessed high risk (DASH 14+)
    children: float = 0.58  # share of clients with children in the household
    social_care_known: float = 0.54  # of families with children, share known to CSC
    whole_family: float = 0.40  # of families with children, share offered whole-family work
    returns: float = 0.55  # chance a client comes back for another episode
    partner_share: float = 0.36  # Marac referrals not from the police
    abuse_months: float = 30.0  # median months of abuse before help
    male: float = 0.064
    minoritised: float = 0.141
    lgbt: float = 0.016
    disability: float = 0.101
    young: float = 0.013  # share aged 16 to 17
    marac: float = 0.88  # chance a high-risk episode is referred to Marac
    # Issue 15 (drawn from their own stream, so every other drawn value is unchanged):
    extra_wait: float = 0.0  # mean extra days from referral to first contact (exponential)
    stay_factor: float = 1.0  # scales the length of support
    outcome_recorded: float = 0.92  # share of closed cases with outcomes recorded
    whole_family_trend: float = 0.0  # change in `whole_family` a financial year, to 2024-25
    # Complex needs recorded at intake (schema 7). Mental health: SafeLives' refuge
    # Insights dataset has 53% of refuge clients with mental health needs, and recorded
    # disclosure at intake ranges from under 10% to over 60% between services ("The power
    # of humble data"); 40% for Idva and outreach is this sample's assumption between
    # those. Substance use and housing shares are assumptions (see DICTIONARY.md).
    mental_health: float = 0.40
    substance_use: float = 0.12
    housing: float = 0.30
    needs_gap: float = 0.02  # how much lower each outcome's chance is with complex needs
    # Referrals never taken on (no intake date, so no exit either: a closed case needs an
    # intake). The sample's assumption, not a published figure: about one referral in
    # eight, a little more for clients with complex needs. Drawn from `extra`, last.
    not_engaged: float = 0.12
    not_engaged_complex: float = 0.03  # the extra share for clients with complex needs
    # Share of Marac-referable episodes not referred after all (drawn from the needs
    # stream, after every other draw, so the rest of the sample is unchanged).
    unreferred: float = 0.0


@dataclass(frozen=True)
class Service:
    service_id: str
    name: str
    service_type: str
    area_code: str
    weight: float
    profile: Profile = field(default_factory=Profile)
    purpose: str = ""


_P = Profile()
SERVICES = [
    Service("S01", "Ashcombe Idva Service", "idva", "E06000001", 1.2,
            replace(_P, needs_gap=0.25, not_engaged_complex=0.22),
            "clients with complex needs engage less and have far worse outcomes than its "
            "other clients"),
    Service("S02", "Ashcombe Community Outreach", "outreach", "E06000001", 0.8,
            replace(_P, high_risk=0.30, extra_wait=25.0, outcome_recorded=0.45,
                    unreferred=0.40),
            "long waits for first contact; few closed cases have outcomes recorded; "
            "high-risk clients who come back after a Marac referral are often not referred "
            "back to Marac"),
    Service("S03", "Brindlehurst Family Idva", "idva", "E06000002", 1.1,
            replace(_P, children=0.74, social_care_known=0.80, whole_family=0.10,
                    whole_family_trend=-0.03),
            "most clients have children and most of those families are known to children's "
            "social care, but few are offered whole-family support"),
    Service("S04", "Brindlehurst Refuge", "refuge", "E06000002", 0.6,
            replace(_P, high_risk=0.58, mental_health=0.53, substance_use=0.18, housing=0.85,
                    children=0.70, stay_factor=2.2, extra_wait=3.0)),
    Service("S05", "Calderbrook Idva", "idva", "E06000003", 1.0,
            replace(_P, children=0.32, social_care_known=0.25, whole_family=0.55),
            "few clients with children and few families known to social care"),
    Service("S06", "Calderbrook Young People's Service", "cyp", "E06000003", 0.5,
            replace(_P, young=0.22, high_risk=0.40, returns=0.25, children=0.15,
                    stay_factor=1.6, extra_wait=12.0)),
    Service("S07", "Dunmere Idva", "idva", "E06000004", 1.3,
            replace(_P, returns=0.28),
            "Marac repeat rate below the expected 28%"),
    Service("S08", "Dunmere Outreach", "outreach", "E06000004", 0.9,
            replace(_P, high_risk=0.32)),
    Service("S09", "Eskton Idva", "idva", "E06000005", 0.9,
            replace(_P, partner_share=0.12),
            "few Marac referrals from partner agencies (most from the police)"),
    Service("S10", "Eskton Outreach", "outreach", "E06000005", 0.6,
            replace(_P, high_risk=0.28, mental_health=0.08),
            "records a mental health need for under 10% of clients"),
    Service("S11", "Fenwold Idva", "idva", "E06000006", 1.2,
            replace(_P, returns=0.74),
            "Marac repeat rate above the expected 40%"),
    Service("S12", "Fenwold Refuge", "refuge", "E06000006", 0.5,
            replace(_P, high_risk=0.58, mental_health=0.62, substance_use=0.25, housing=0.85,
                    children=0.70, stay_factor=2.2, extra_wait=3.0)),
    Service("S13", "Fenwold Young People's Service", "cyp", "E06000006", 0.4,
            replace(_P, young=0.25, high_risk=0.40, returns=0.25, children=0.15,
                    stay_factor=1.6, extra_wait=12.0, outcome_recorded=0.50)),
    Service("S14", "Greyhaven Idva", "idva", "E06000007", 1.1,
            replace(_P, abuse_months=80.0),
            "clients live with abuse for far longer before getting help"),
    Service("S15", "Greyhaven Outreach", "outreach", "E06000007", 0.7,
            replace(_P, high_risk=0.30)),
    Service("S16", "Holloway Vale Idva", "idva", "E06000008", 1.4,
            replace(_P, minoritised=0.04, male=0.01, lgbt=0.002),
            "reaches few male, LGBT+ or racially minoritised victims"),
    Service("S17", "Holloway Vale Outreach", "outreach", "E06000008", 0.9,
            replace(_P, high_risk=0.30, minoritised=0.22)),
    Service("S18", "Holloway Vale Refuge", "refuge", "E06000008", 0.5,
            replace(_P, high_risk=0.58, mental_health=0.53, substance_use=0.18, housing=0.85,
                    children=0.70, stay_factor=2.2, extra_wait=3.0)),
    Service("S19", "Greyhaven Refuge", "refuge", "E06000007", 0.4,
            replace(_P, high_risk=0.58, mental_health=0.53, substance_use=0.18, housing=0.85,
                    children=0.70, stay_factor=2.2, extra_wait=3.0)),
    Service("S20", "Ashcombe Young People's Service", "cyp", "E06000001", 0.4,
            replace(_P, young=0.20, high_risk=0.40, returns=0.25, children=0.15,
                    stay_factor=1.6, extra_wait=12.0)),
]

_CASE_SOURCES = ["police", "self", "childrens_social_care", "health", "housing", "da_service",
                 "other"]
_CASE_SOURCE_NON_POLICE = np.array([0.22, 0.22, 0.17, 0.10, 0.15, 0.14])
_AGENCIES = ["police", "idva", "childrens_social_care", "health", "housing", "probation", "other"]
_AGENCY_NON_POLICE = np.array([0.45, 0.20, 0.12, 0.10, 0.05, 0.08])
_AGE_BANDS = ["16-17", "18-20", "21-30", "31-40", "41-50", "51-60", "61+"]
_AGE_ADULT = np.array([0.08, 0.31, 0.30, 0.18, 0.09, 0.04])
_ETHNIC_MINORITISED = ["black", "asian", "mixed", "other"]
_ETHNIC_MINORITISED_P = np.array([0.32, 0.45, 0.15, 0.08])
_SOCIAL_CARE_LEVELS = ["early_help", "child_in_need", "child_protection", "looked_after"]
_SOCIAL_CARE_LEVELS_P = np.array([0.30, 0.35, 0.28, 0.07])
_CHILD_AGES = ["0-4", "5-10", "11-15", "16-17"]
_CHILD_AGES_P = np.array([0.42, 0.33, 0.19, 0.06])
_PERPETRATORS = ["intimate_partner", "ex_partner", "family_member", "other"]
_PERPETRATORS_P = np.array([0.45, 0.40, 0.10, 0.05])


@dataclass(frozen=True)
class Sample:
    areas: pl.DataFrame
    services: pl.DataFrame
    cases: pl.DataFrame
    marac_referrals: pl.DataFrame
    meta: dict[str, str]


def _pick(rng: np.random.Generator, labels: list[str], p: np.ndarray, n: int) -> np.ndarray:
    return np.asarray(labels, dtype=object)[rng.choice(len(labels), size=n, p=p / p.sum())]


def _ids(prefix: str, start: int, n: int, salt: int) -> list[str]:
    """Distinct opaque ids: an odd multiplier mod 2**40 is a bijection, so no collisions."""
    idx = (np.arange(start, start + n, dtype=np.uint64) * np.uint64(0x9E3779B97F)
           + np.uint64(salt)) % np.uint64(1 << 40)
    return [f"{prefix}{v:010x}" for v in idx.tolist()]


def _masked(values: np.ndarray, valid: np.ndarray) -> pl.Series:
    """A Polars column with nulls where `valid` is False (blank in the import format)."""
    return pl.Series(values).scatter(np.flatnonzero(~valid), None)


def _days(dates: np.ndarray) -> np.ndarray:
    return dates.astype("datetime64[D]")


def _service_cases(rng: np.random.Generator, svc: Service, n: int, client_offset: int,
                   needs_rng: np.random.Generator | None = None,
                   extra: np.random.Generator | None = None):
    """Episodes for one service: clients, each returning with chance `returns`.

    Complex needs are drawn from `needs_rng`, a stream of their own, so adding them
    (schema 7) left every other drawn value of the sample as it was; `extra` draws issue
    15's waits and missing outcomes, then the referrals never taken on, from another
    stream of their own."""
    extra = extra if extra is not None else np.random.default_rng(0)
    p = svc.profile
    span = (AS_OF - FIRST_DAY).days + 1
    mean_len = 1.0 / (1.0 - p.returns)
    m = int(n / mean_len * 1.6) + 50
    lengths = rng.geometric(1.0 - p.returns, size=m).clip(max=12)
    client = np.repeat(np.arange(m), lengths)
    first_of_client = np.r_[True, client[1:] != client[:-1]]
    # Gaps between episodes: most returns come within a year (a repeat), some later.
    gaps = np.where(first_of_client, 0, 21 + rng.exponential(200.0, size=client.size))
    group_start = np.maximum.accumulate(np.where(first_of_client, np.arange(client.size), 0))
    cum = np.cumsum(gaps)
    offset = (cum - cum[group_start]).astype(int)
    first_day = rng.integers(-240, span, size=m)  # some chains began before the window
    day = first_day[client] + offset
    keep = (day >= 0) & (day < span)
    client, day = client[keep], day[keep]
    # Clients are in random order already; take whole chains until n episodes.
    client, day = client[:n], day[:n]
    if client.size < n:
        raise RuntimeError(f"generator produced too few episodes for {svc.service_id}")

    # Client-level traits, constant across a client's episodes.
    cm = m
    is_high_client = rng.random(cm) < p.high_risk
    gender = np.where(rng.random(cm) < p.male, "male",
                      np.where(rng.random(cm) < 0.012, "not_recorded",
                               np.where(rng.random(cm) < 0.004, "non_binary", "female")))
    age = np.where(rng.random(cm) < p.young, "16-17", _pick(rng, _AGE_BANDS[1:], _AGE_ADULT, cm))
    ethnicity = np.where(
        rng.random(cm) < p.minoritised,
        _pick(rng, _ETHNIC_MINORITISED, _ETHNIC_MINORITISED_P, cm),
        np.where(rng.random(cm) < 0.02, "not_recorded", "white"),
    )
    disability = np.where(rng.random(cm) < p.disability, "yes",
                          np.where(rng.random(cm) < 0.05, "not_recorded", "no"))
    lgbt = np.where(rng.random(cm) < p.lgbt, "yes",
                    np.where(rng.random(cm) < 0.08, "not_recorded", "no"))
    has_children = rng.random(cm) < p.children
    n_children = np.where(has_children, 1 + rng.poisson(1.18, size=cm).clip(max=8), 0)
    youngest = _pick(rng, _CHILD_AGES, _CHILD_AGES_P, cm).astype(str)
    known = rng.random(cm) < p.social_care_known
    sc_level = _pick(rng, _SOCIAL_CARE_LEVELS, _SOCIAL_CARE_LEVELS_P, cm)
    social_care = np.where(rng.random(cm) < 0.04, "unknown",
                           np.where(known, sc_level, "none")).astype(str)

    # Complex needs, per client (constant across episodes); 8% not recorded.
    nr = needs_rng if needs_rng is not None else np.random.default_rng(0)
    needs = {name: np.where(nr.random(cm) < 0.08, None, nr.random(cm) < share)
             for name, share in (("mental_health_need", p.mental_health),
                                 ("substance_use_need", p.substance_use),
                                 ("housing_need", p.housing))}
    complex_client = np.zeros(cm, dtype=bool)
    for v in needs.values():
        complex_client |= v == True  # noqa: E712 - object array of True/False/None

    k = client.size
    # Episode-level facts.
    high = np.where(is_high_client[client], rng.random(k) < 0.88, rng.random(k) < 0.06)
    dash = np.where(high, rng.integers(14, 25, size=k),
                    np.where(rng.random(k) < 0.45, rng.integers(10, 14, size=k),
                             rng.integers(0, 10, size=k)))
    judged_high = (~high) & (dash >= 10) & (rng.random(k) < 0.08)
    risk = np.where(high | judged_high, "high", np.where(dash >= 10, "medium", "standard"))
    dash_missing = rng.random(k) < 0.03
    referral = np.datetime64(FIRST_DAY) + day.astype("timedelta64[D]")
    wait = rng.integers(0, 15, size=k)
    if p.extra_wait:
        wait = wait + extra.exponential(p.extra_wait, size=k).astype(int)
    intake = referral + wait.astype("timedelta64[D]")
    stay = (20 + p.stay_factor * rng.gamma(2.0, 50.0, size=k)).astype(int)
    exit_ = intake + stay.astype("timedelta64[D]")
    closed = exit_ <= np.datetime64(AS_OF)
    police_case = rng.random(k) < (1 - p.partner_share) * 0.75
    source = np.where(police_case, "police",
                      _pick(rng, _CASE_SOURCES[1:], _CASE_SOURCE_NON_POLICE, k))
    can_refer = svc.service_type in ("idva", "outreach", "refuge")
    marac = (risk == "high") & (rng.random(k) < p.marac) & can_refer
    kids = n_children[client]
    family = kids > 0
    # `whole_family` is the 2024-25 level; a trend moves earlier years away from it.
    fy = (day / 365.25).astype(int)  # 0 for 2020-21 ... 4 for 2024-25
    wfs = rng.random(k) < np.clip(p.whole_family + p.whole_family_trend * (fy - 4), 0.01, 0.99)
    helped = family & wfs
    base = (np.where(risk == "high", 0.56, np.where(risk == "medium", 0.64, 0.72))
            + 0.08 * helped - p.needs_gap * complex_client[client])
    months = np.round(rng.lognormal(np.log(p.abuse_months), 0.8, size=k)).astype(int)

    recorded = closed & (extra.random(k) < p.outcome_recorded)
    # Never engaged: no intake, no exit, no outcomes (drawn after every other draw of
    # `extra`, so the rest of the sample is as it was).
    engaged = ~(extra.random(k) < p.not_engaged
                + p.not_engaged_complex * complex_client[client])
    closed &= engaged
    recorded &= engaged

    def outcome(prob: np.ndarray | float) -> pl.Series:
        return _masked(rng.random(k) < prob, recorded)

    cases = pl.DataFrame({
        "client_index": client + client_offset,
        "service_id": svc.service_id,
        "referral_date": _days(referral),
        "intake_date": np.where(engaged, _days(intake), np.datetime64("NaT")),
        "exit_date": np.where(closed, _days(exit_), np.datetime64("NaT")),
        "referral_source": source.astype(str),
        "age_band": age[client].astype(str),
        "gender": gender[client].astype(str),
        "ethnicity": ethnicity[client].astype(str),
        "disability": disability[client].astype(str),
        "lgbt": lgbt[client].astype(str),
        "dash_score": _masked(dash.astype(np.int8), ~dash_missing),
        "risk_level": risk.astype(str),
        "abuse_physical": rng.random(k) < np.where(high, 0.80, 0.60),
        "abuse_sexual": rng.random(k) < np.where(high, 0.32, 0.15),
        "abuse_coercive_control": rng.random(k) < 0.86,
        "abuse_stalking": rng.random(k) < np.where(high, 0.40, 0.20),
        "abuse_economic": rng.random(k) < 0.42,
        "perpetrator": _pick(rng, _PERPETRATORS, _PERPETRATORS_P, k).astype(str),
        "abuse_months": months,
        "children_in_household": kids.astype(np.int8),
        "youngest_child_age_band": _masked(youngest[client], family),
        "social_care": _masked(social_care[client], family),
        "marac_referred": marac,
        "whole_family_support": _masked(wfs, family),
        "abuse_ceased": outcome(base),
        "risk_reduced": outcome(base + 0.14),
        "feels_safer": outcome(base + 0.20),
        "quality_of_life_improved": outcome(base + 0.06),
        **{name: pl.Series(name, v[client].tolist(), dtype=pl.Boolean)
           for name, v in needs.items()},
    })

    # One Marac referral per referred episode, heard a few weeks after intake.
    mk = int(marac.sum())
    # (A client who never engaged is heard after the referral date instead.)
    meeting = (np.where(engaged, intake, referral)[marac]
               + rng.integers(5, 29, size=mk).astype("timedelta64[D]"))
    meeting = np.minimum(meeting, np.datetime64(AS_OF))
    agency = np.where(rng.random(mk) < 1 - p.partner_share, "police",
                      _pick(rng, _AGENCIES[1:], _AGENCY_NON_POLICE, mk))
    # Episodes the service did not refer after all (issue 14's missed re-referrals), from
    # the needs stream so no draw of the main stream moves.
    kept = ~(nr.random(k) < p.unreferred)
    cases = cases.with_columns(marac_referred=pl.Series(marac & kept))
    referrals = pl.DataFrame({
        "client_index": (client + client_offset)[marac],
        "marac_area": svc.area_code,
        "service_id": svc.service_id,
        "meeting_date": _days(meeting),
        "referring_agency": agency.astype(str),
        "children_in_household": kids[marac].astype(np.int8),
    }).filter(pl.Series(kept[marac]))
    return cases, referrals, m


def generate(n_cases: int = 50_000, seed: int = 20240401) -> Sample:
    """Build the whole sample in memory; the same seed and size give the same sample."""
    if n_cases < len(SERVICES) * 20:
        raise ValueError(f"n_cases={n_cases} is too small: need at least {len(SERVICES) * 20}")
    rng = np.random.default_rng(seed)
    weights = np.array([s.weight for s in SERVICES])
    sizes = np.floor(weights / weights.sum() * n_cases).astype(int)
    sizes[np.argmax(weights)] += n_cases - sizes.sum()

    case_parts, ref_parts, offset = [], [], 0
    for i, (svc, n) in enumerate(zip(SERVICES, sizes, strict=True)):
        c, r, m = _service_cases(rng, svc, int(n), offset,
                                 np.random.default_rng([seed, 0x4EED, i]),
                                 np.random.default_rng([seed, i, 0x15]))
        case_parts.append(c)
        ref_parts.append(r)
        offset += m
    cases = pl.concat(case_parts).sort("referral_date", "service_id", maintain_order=True)
    refs = pl.concat(ref_parts).sort("meeting_date", "marac_area", maintain_order=True)

    salt = seed & 0xFFFFFF
    client_ids = pl.Series(_ids("K", 0, offset, salt))
    cases = cases.with_columns(
        case_id=pl.Series(_ids("C", 0, cases.height, salt)),
        client_key=client_ids.gather(cases["client_index"]),
    ).drop("client_index")
    refs = refs.with_columns(
        referral_id=pl.Series(_ids("M", 0, refs.height, salt)),
        client_key=client_ids.gather(refs["client_index"]),
    ).drop("client_index")

    # Record keys for the cell key method, from their own stream of the seed so they are
    # fixed by the seed without changing any other drawn value of the sample.
    keys = np.random.default_rng([seed, 0xCE11]).integers(0, 256, size=cases.height + refs.height)
    cases = cases.with_columns(record_key=pl.Series(keys[:cases.height], dtype=pl.Int16))
    refs = refs.with_columns(record_key=pl.Series(keys[cases.height:], dtype=pl.Int16))

    years = (AS_OF - FIRST_DAY).days / 365.25
    per_area = refs.group_by("marac_area").len()
    volume = dict(zip(per_area["marac_area"], per_area["len"], strict=True))
    areas = pl.DataFrame({
        "area_code": [a.code for a in AREAS],
        "name": [a.name for a in AREAS],
        "region": [a.region for a in AREAS],
        "adult_female_population": [
            max(1000, int(round(volume.get(a.code, 0) / years / a.marac_per_10k * 10_000, -2)))
            for a in AREAS
        ],
    })
    # Idva FTE: the area's Marac volume a year over SafeLives' 100 per FTE, times its
    # cover, shared among its Idva and outreach services; one Marac administrator FTE per
    # 400 cases, funded by the area's first Idva service.
    fte_rng = np.random.default_rng([seed, 0xF7E])
    idva_fte, admin_fte = [], []
    for svc in SERVICES:
        need = volume.get(svc.area_code, 0) / years / 100
        holders = [x for x in SERVICES if x.area_code == svc.area_code
                   and x.service_type in ("idva", "outreach")]
        cover = _IDVA_COVER.get(svc.area_code, float(fte_rng.uniform(1.3, 1.5)))
        share = round(need * cover / len(holders), 1) if svc in holders else 0.0
        first_idva = next((x for x in holders if x.service_type == "idva"), None)
        admin = (round(volume.get(svc.area_code, 0) / years / 400 * max(cover, 0.9), 1)
                 if svc is first_idva else 0.0)
        idva_fte.append(share)
        admin_fte.append(admin)
    services = pl.DataFrame({
        "service_id": [s.service_id for s in SERVICES],
        "name": [s.name for s in SERVICES],
        "service_type": [s.service_type for s in SERVICES],
        "area_code": [s.area_code for s in SERVICES],
        "idva_fte": idva_fte,
        "admin_fte": admin_fte,
    })
    meta = {
        "data_kind": "synthetic",
        "seed": str(seed),
        "n_cases": str(n_cases),
        "data_as_of": AS_OF.isoformat(),
        "first_day": FIRST_DAY.isoformat(),
    }
    return Sample(areas, services, cases, refs, meta)


def write_sample(path, n_cases: int = 50_000, seed: int = 20240401, schema_sql: str | None = None,
                 **build):
    """Generate the sample and build a store file from it (swapped in whole); `build`
    passes db.build_store's options (wait, if_missing, replace_broken) through."""
    from pathlib import Path

    from service_insights import settings
    from service_insights.store import db

    schema = schema_sql if schema_sql is not None else settings.get().schema_path.read_text()

    def load(w: db.Writer) -> None:
        # Generated under the writers' lock, so a second build started at the same time
        # is refused (or waits) for the whole of the first, not only its last seconds.
        sample = generate(n_cases, seed)
        w.append("store.areas", sample.areas)
        w.append("store.services", sample.services)
        w.append("store.cases", sample.cases)
        w.append("store.marac_referrals", sample.marac_referrals)
        for key, value in sample.meta.items():
            w.execute("insert into store.meta values ($k, $v)", {"k": key, "v": value})

    return db.build_store(Path(path), schema, load, **build)
