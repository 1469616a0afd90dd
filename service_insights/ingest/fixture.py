"""Realistic import files made from the synthetic sample, for the import benchmark and
for trying the Import page: the sample's cases for one service, reshaped the way a UK
case-management system exports them (Case Ref, dd/mm/yyyy dates, Y/N flags, a date of
birth and a client name column that the importer must drop).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from service_insights.store import synth

_DOB_AGE = {"16-17": (16, 17), "18-20": (18, 20), "21-30": (21, 30), "31-40": (31, 40),
            "41-50": (41, 50), "51-60": (51, 60), "61+": (61, 80)}


def export_frame(n_cases: int, seed: int = 20240401, service_id: str = "S01") -> pl.DataFrame:
    """`n_cases` sample cases, all relabelled as one service's export."""
    sample = synth.generate(n_cases, seed)
    rng = np.random.default_rng(seed)
    cases = sample.cases.with_row_index("n")
    refs = sample.marac_referrals
    # The sample's referral ids are not linked to cases: pair each referral with the
    # referred case of the same client closest before its meeting.
    referred = cases.filter(pl.col("marac_referred")).select("n", "client_key", "intake_date")
    meetings = (refs.sort("meeting_date").join_asof(
        referred.sort("intake_date"), left_on="meeting_date", right_on="intake_date",
        by="client_key", strategy="backward", check_sortedness=False)
        .filter(pl.col("n").is_not_null()).unique("n", keep="first")
        .select("n", "meeting_date", "referring_agency"))
    cases = cases.join(meetings, on="n", how="left")
    lo_hi = np.array([_DOB_AGE.get(b, (30, 30)) for b in cases["age_band"].to_list()])
    age = rng.integers(lo_hi[:, 0], lo_hi[:, 1] + 1)
    dob = (pl.col("referral_date").dt.offset_by(pl.format("-{}y", pl.lit(pl.Series(age))))
           - pl.duration(days=pl.lit(pl.Series(rng.integers(0, 360, cases.height)))))
    uk = "%d/%m/%Y"

    def yn(col: str) -> pl.Expr:
        return pl.when(pl.col(col)).then(pl.lit("Y")).when(pl.col(col).not_()).then(
            pl.lit("N"))

    return cases.select(
        pl.format("CR-{}", pl.col("case_id").str.slice(1)).alias("Case Ref"),
        pl.format("P{}", pl.col("client_key").str.slice(1)).alias("Client ID"),
        pl.lit("Jane Doe").alias("Client Name"),
        dob.dt.strftime(uk).alias("Date of Birth"),
        pl.lit(service_id).alias("service_id"),
        pl.col("referral_date").dt.strftime(uk).alias("Date of Referral"),
        pl.col("intake_date").dt.strftime(uk).alias("intake_date"),
        pl.col("exit_date").dt.strftime(uk).alias("Closure Date"),
        pl.col("referral_source").alias("Referral Source"),
        "gender", "ethnicity", "disability", "lgbt",
        pl.col("dash_score").alias("DASH score"),
        pl.col("risk_level").alias("Risk Level"),
        *[yn(c).alias(c) for c in ("abuse_physical", "abuse_sexual", "abuse_coercive_control",
                                   "abuse_stalking", "abuse_economic")],
        # The sample's lognormal tail reaches ~150 years; a real export would not.
        "perpetrator", pl.col("abuse_months").clip(upper_bound=600),
        pl.col("children_in_household").alias("No. of children"),
        "youngest_child_age_band", "social_care",
        yn("marac_referred").alias("Referred to Marac"),
        pl.col("meeting_date").dt.strftime(uk).alias("Marac Date"),
        pl.col("referring_agency").alias("marac_referring_agency"),
        *[yn(c).alias(c) for c in ("whole_family_support", "abuse_ceased", "risk_reduced",
                                   "feels_safer", "quality_of_life_improved")],
        yn("mental_health_need").alias("Mental Health"),
        yn("substance_use_need").alias("Substance Misuse"),
        yn("housing_need").alias("Housing Need"),
    )


def write_export(path: Path, n_cases: int, seed: int = 20240401,
                 service_id: str = "S01") -> Path:
    """Write the export as CSV, XLSX or Parquet, by the file's extension."""
    frame = export_frame(n_cases, seed, service_id)
    path = Path(path)
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    elif path.suffix == ".xlsx":
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet()
        ws.append(frame.columns)
        for row in frame.iter_rows():
            ws.append(row)
        wb.save(path)
    else:
        frame.write_csv(path)
    return path

