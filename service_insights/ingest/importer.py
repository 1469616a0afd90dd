"""Importing a service's case records: checked, pseudonymised, written all-or-nothing.

A file with any problem writes nothing. A good file replaces the store in one swap
(db.rewrite_store), so a crash part-way leaves the store exactly as it was. Cases are
keyed by the pseudonym of their case reference within the service, so importing the
same file again replaces those cases instead of adding them twice. The raw file is
never stored: bytes are read in memory, and the import log keeps only its name,
fingerprint and counts.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from service_insights import settings
from service_insights.ingest import columns as fmt
from service_insights.ingest import pseudonym, validate
from service_insights.ingest.pseudonym import KeyMissing
from service_insights.ingest.validate import FileUnreadable
from service_insights.store import db

__all__ = ["FileUnreadable", "ImportRefused", "ImportResult", "KeyMissing", "import_bytes",
           "import_file", "template_path"]

BATCH_ROWS = 200_000
MARAC_COLUMNS = ("marac_meeting_date", "marac_referring_agency")


class ImportRefused(Exception):
    """The import cannot start (no real store, service not registered, wrong key)."""


@dataclass
class Quality:
    blanks: pl.DataFrame
    """Optional field, blank rows, share blank (%), note."""
    dates: pl.DataFrame
    """Date field, first, last, rows filled."""
    by_year: pl.DataFrame
    """Financial year of referral, cases."""
    open_cases: int


@dataclass
class ImportResult:
    file_name: str
    service_id: str
    rows_read: int
    problems: pl.DataFrame
    dropped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    age_bands_from_dob: int = 0
    imported: bool = False
    rows_added: int = 0
    rows_replaced: int = 0
    marac_referrals: int = 0
    quality: Quality | None = None

    @property
    def rows_imported(self) -> int:
        return self.rows_added + self.rows_replaced

    def headline(self) -> str:
        if self.imported:
            return (f"{self.rows_imported:,} cases imported for {self.service_id} from "
                    f"{self.file_name} ({self.rows_added:,} new, {self.rows_replaced:,} "
                    f"replacing earlier imports; {self.marac_referrals:,} Marac referrals).")
        n = self.problems.height
        return (f"Nothing was imported: {n:,} problem{'' if n == 1 else 's'} in "
                f"{self.file_name} ({self.rows_read:,} records read).")

    def notes(self) -> list[str]:
        out = []
        if self.dropped:
            out.append("Dropped as identifying (never stored): " + ", ".join(self.dropped))
        if self.age_bands_from_dob:
            out.append(f"Age band worked out from the date of birth for "
                       f"{self.age_bands_from_dob:,} records.")
        if self.ignored:
            out.append("Not in the import format, ignored: " + ", ".join(self.ignored))
        if self.renamed:
            out.append("Read as: " + ", ".join(f"{k} -> {v}" for k, v in self.renamed.items()))
        return out


def template_path() -> Path:
    return settings.ROOT / "data" / "import_template.csv"


def import_file(path: Path | str, service_id: str, **kwargs) -> ImportResult:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileUnreadable(f"{path} could not be read: {exc.strerror}.") from exc
    return import_bytes(data, path.name, service_id, **kwargs)


def import_bytes(
    data: bytes,
    file_name: str,
    service_id: str,
    *,
    user: str | None = None,
    db_path: Path | None = None,
    today: dt.date | None = None,
    batch_rows: int = BATCH_ROWS,
    on_batch: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Check `data` (the file's bytes) and, when it has no problems, store it.

    `on_batch(rows_written, rows_total)` is called after each batch of cases is written
    inside the transaction; an exception from it abandons the import (tests use this to
    crash an import half-way).
    """
    key = pseudonym.load_key()
    path = Path(db_path or settings.get().db_path)
    db.remove_leftovers(path)  # copies a killed import left, even if this one is refused
    _refuse_unless_ready(path, service_id, key)
    raw, header = validate.read_table(data, file_name)
    checked = validate.check(raw, service_id, today, header)
    result = ImportResult(file_name, service_id, checked.rows_read, checked.problems,
                          checked.dropped, checked.ignored, checked.renamed,
                          checked.age_bands_from_dob)
    if checked.problems.height:
        return result
    quality = _quality(checked.cases, checked.absent)
    cases = checked.cases.with_columns(
        case_id=pseudonym.pseudonymise(checked.cases["case_ref"], key, f"case|{service_id}"),
        client_key=pseudonym.pseudonymise(checked.cases["client_ref"], key,
                                          f"client|{service_id}"),
    ).drop("case_ref", "client_ref", "row")
    log = {
        "import_id": uuid.uuid4().hex, "imported_by": user or getpass.getuser(),
        "file_name": Path(file_name).name, "file_sha256": hashlib.sha256(data).hexdigest(),
        "service_id": service_id, "rows_in_file": checked.rows_read,
        "as_of": (today or dt.date.today()).isoformat(),
    }

    def write(w: db.Writer) -> tuple[int, int, int]:
        return _write(w, cases, service_id, key, log, batch_rows, on_batch)

    result.rows_added, result.rows_replaced, result.marac_referrals = db.rewrite_store(
        path, write)
    result.imported, result.quality = True, quality
    return result


def _refuse_unless_ready(path: Path, service_id: str, key: bytes) -> None:
    if not path.exists():
        raise ImportRefused(
            f"There is no store at {path}. Register your service first (Import page, or "
            "`service-insights services add ...`); that starts a store for real records.")
    meta = db.read_meta(path)
    if meta.get("data_kind") != "real":
        raise ImportRefused(
            "The store holds the synthetic sample. Real records are never mixed with "
            "fictional ones, so register your service first (Import page, or "
            "`service-insights services add --id ... --area ...`): that starts a fresh "
            "store for real records, and then import into it.")
    _check_key(meta, key)
    s = db.Store(path)
    try:
        known = s.query("select service_id from main.services where service_id = $s",
                        {"s": service_id}).frame.height
    finally:
        s.close()
    if not known:
        raise ImportRefused(
            f"Service {service_id} is not registered in this store. Register it first "
            f"(`service-insights services add --id {service_id} ...` or the Import page).")


def _check_key(meta: dict[str, str], key: bytes) -> None:
    stored = meta.get("pseudonym_key_check")
    if stored is not None and stored != pseudonym.key_check(key):
        raise ImportRefused(
            "The pseudonymisation key is not the one earlier imports into this store used, "
            "so the same person would get a different pseudonym. Set the original key "
            "(SI_PSEUDONYM_KEY or SI_PSEUDONYM_KEY_FILE).")


def _write(w: db.Writer, cases: pl.DataFrame, service_id: str, key: bytes, log: dict,
           batch_rows: int, on_batch) -> tuple[int, int, int]:
    meta = dict(w.fetch("select key, value from store.meta").iter_rows())
    if meta.get("data_kind") != "real":
        raise ImportRefused("The store no longer holds real records; nothing was imported.")
    _check_key(meta, key)
    area = w.fetch("select area_code from store.services where service_id = $s",
                   {"s": service_id})
    if area.height == 0:
        raise ImportRefused(f"Service {service_id} is not registered; nothing was imported.")

    # No primary key here: indexing a million random pseudonyms costs ~5 s, and they
    # are unique already (checked in the file, and the store's key would refuse a clash).
    w.execute("create temp table incoming_cases (case_id varchar)")
    w.append("incoming_cases", cases.select("case_id"))
    replaced = int(w.fetch(
        "select count(*) as n from store.cases c join incoming_cases i using (case_id) "
        "where c.service_id = $s", {"s": service_id})["n"][0])
    # A case's Marac referral is keyed by the case, so it is replaced with it.
    w.execute("delete from store.marac_referrals where referral_id in "
              "(select case_id from incoming_cases)")
    w.execute("delete from store.cases where service_id = $s and case_id in "
              "(select case_id from incoming_cases)", {"s": service_id})
    # Record keys for the cell key method (protection/cellkey.py): uniform 0 to 255 from
    # the operating system's randomness, one per stored record, never shown or exported.
    draw = np.random.default_rng()
    cases = cases.with_columns(
        record_key=pl.Series(draw.integers(0, 256, size=cases.height), dtype=pl.Int16),
        marac_record_key=pl.Series(draw.integers(0, 256, size=cases.height), dtype=pl.Int16))
    rows = cases.drop(*MARAC_COLUMNS, "marac_record_key")
    for start in range(0, rows.height, batch_rows):
        w.append("store.cases", rows.slice(start, batch_rows))
        if on_batch:
            on_batch(min(start + batch_rows, rows.height), rows.height)
    marac = cases.filter(pl.col("marac_meeting_date").is_not_null()).select(
        referral_id="case_id", client_key="client_key", marac_area=pl.lit(area["area_code"][0]),
        service_id="service_id", meeting_date="marac_meeting_date",
        referring_agency="marac_referring_agency",
        children_in_household="children_in_household", record_key="marac_record_key")
    if marac.height:
        w.append("store.marac_referrals", marac)
    w.execute("drop table incoming_cases")

    for k, v in (("pseudonym_key_check", pseudonym.key_check(key)),
                 ("data_as_of", log["as_of"])):
        w.execute("insert or replace into store.meta values ($k, $v)", {"k": k, "v": v})
    added = cases.height - replaced
    w.execute(
        "insert into store.import_log (import_id, imported_at, imported_by, file_name, "
        "file_sha256, kind, service_id, rows_in_file, rows_added, rows_replaced) values "
        "($id, current_localtimestamp(), $by, $name, $sha, 'cases', $svc, $n, $added, "
        "$replaced)",
        {"id": log["import_id"], "by": log["imported_by"], "name": log["file_name"],
         "sha": log["file_sha256"], "svc": service_id, "n": log["rows_in_file"],
         "added": added, "replaced": replaced})
    return added, replaced, marac.height


def _quality(cases: pl.DataFrame, absent: list[str]) -> Quality:
    n = cases.height
    blank_counts = cases.select([pl.col(c).null_count() for c in fmt.OPTIONAL_FOR_QUALITY]).row(0)
    blanks = pl.DataFrame({
        "field": list(fmt.OPTIONAL_FOR_QUALITY),
        "blank": list(blank_counts),
    }).with_columns(
        share_blank_pct=(pl.col("blank") / max(n, 1) * 100).round(1),
        note=pl.when(pl.col("field").is_in(absent)).then(pl.lit("column not in the file"))
        .otherwise(pl.lit("")),
    )
    dates = pl.DataFrame([
        {"field": c, "first": cases[c].min(), "last": cases[c].max(),
         "filled": n - cases[c].null_count()}
        for c in ("referral_date", "intake_date", "exit_date", "marac_meeting_date")
    ], schema={"field": pl.String, "first": pl.Date, "last": pl.Date, "filled": pl.Int64})
    ref = pl.col("referral_date")
    fy = ref.dt.year() - (ref.dt.month() < 4).cast(pl.Int32)
    by_year = (cases.group_by(
        financial_year=pl.format("{}-{}", fy, ((fy + 1) % 100).cast(pl.String).str.zfill(2)))
        .len("cases").sort("financial_year"))
    return Quality(blanks, dates, by_year, int(cases["exit_date"].null_count()))
