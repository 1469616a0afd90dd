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
from collections.abc import Callable, Collection
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

__all__ = ["FileUnreadable", "ImportRefused", "ImportResult", "KeyMissing",
           "MaracImportResult", "import_bytes", "import_file", "import_marac_bytes",
           "import_marac_file", "marac_template_path", "template_path"]

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


class _Outcome:
    """What the cases and Marac results say alike: the refusal headline, the notes on the
    file's columns and the linkage key (one wording for both, on the Import page and in
    the CLI); each kind adds its own imported headline (_imported) and notes (_own_notes)."""

    file_name: str
    rows_read: int
    problems: pl.DataFrame
    dropped: list[str]
    ignored: list[str]
    renamed: dict[str, str]
    rows_added: int
    rows_replaced: int
    imported: bool
    linkage_keys: int | None
    FORMAT = ""

    @property
    def rows_imported(self) -> int:
        return self.rows_added + self.rows_replaced

    def headline(self) -> str:
        if self.imported:
            return self._imported()
        n = self.problems.height
        return (f"Nothing was imported: {n:,} problem{'' if n == 1 else 's'} in "
                f"{self.file_name} ({self.rows_read:,} records read).")

    def notes(self) -> list[str]:
        """The file's columns, then what this kind of import did, then the linkage key."""
        out = []
        if self.dropped:
            out.append("Dropped as identifying (never stored): " + ", ".join(self.dropped))
        if self.ignored:
            out.append(f"Not in the {self.FORMAT} format, ignored: " + ", ".join(self.ignored))
        if self.renamed:
            out.append("Read as: " + ", ".join(f"{k} -> {v}" for k, v in self.renamed.items()))
        out += self._own_notes()
        if self.linkage_keys is not None:
            out.append(_linkage_note(self.linkage_keys, self.rows_read))
        return out

    def _imported(self) -> str:
        raise NotImplementedError

    def _own_notes(self) -> list[str]:
        return []


@dataclass
class ImportResult(_Outcome):
    file_name: str
    service_id: str | None
    """The service chosen for the import; None for an area-wide file (see `by_service`)."""
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
    by_service: pl.DataFrame | None = None
    """Per service: cases in the file, new, replacing earlier imports, Marac referrals."""
    marac_replaced: int = 0
    """Marac referrals from earlier case rows that this file's case rows replaced."""
    marac_kept: int = 0
    """Marac referrals kept because the file has no Marac columns."""
    marac_from_file: int = 0
    """Case-row Marac referrals not added: a Marac file already holds them."""
    linkage_keys: int | None = None
    """Records given a linkage key (None when the linkage key is off)."""
    kind: str = "cases"
    FORMAT = "import"

    @property
    def services_label(self) -> str:
        if self.service_id is not None:
            return self.service_id
        ids = [] if self.by_service is None else self.by_service["service_id"].to_list()
        return f"{len(ids)} service{'' if len(ids) == 1 else 's'} ({', '.join(ids)})"

    def _imported(self) -> str:
        return (f"{self.rows_imported:,} cases imported for {self.services_label} from "
                f"{self.file_name} ({self.rows_added:,} new, {self.rows_replaced:,} "
                f"replacing earlier imports; {self.marac_referrals:,} Marac referrals).")

    def _own_notes(self) -> list[str]:
        out = []
        if self.age_bands_from_dob:
            out.append(f"Age band worked out from the date of birth for "
                       f"{self.age_bands_from_dob:,} records.")
        if self.marac_replaced:
            out.append(f"{self.marac_replaced:,} Marac referrals from these cases' earlier "
                       "rows were replaced by the file's (a case whose Marac meeting is now "
                       "blank no longer has one).")
        if self.marac_kept:
            out.append(f"The file has no Marac columns, so the {self.marac_kept:,} Marac "
                       "referrals already held for these cases were kept.")
        if self.marac_from_file:
            out.append(f"{self.marac_from_file:,} Marac referrals on case rows were not "
                       "added: a Marac file already holds them (same service, client and "
                       "meeting date).")
        return out


def _linkage_note(linked: int, rows: int) -> str:
    return (f"Linkage key (SI_LINKAGE_KEY is on): {linked:,} of {rows:,} records had an "
            "NHS number or surname and date of birth to derive it from; the identifiers "
            "were dropped.")


@dataclass
class MaracImportResult(_Outcome):
    file_name: str
    rows_read: int
    problems: pl.DataFrame
    dropped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    imported: bool = False
    rows_added: int = 0
    rows_replaced: int = 0
    """Referrals from an earlier Marac file that the same rows replaced."""
    case_rows_replaced: int = 0
    """Referrals that came on case rows which this file now holds instead."""
    by_area: pl.DataFrame | None = None
    linkage_keys: int | None = None
    kind: str = "marac"
    FORMAT = "Marac"

    def _imported(self) -> str:
        areas = [] if self.by_area is None else self.by_area["marac_area"].to_list()
        return (f"{self.rows_imported:,} Marac referrals imported for "
                f"{', '.join(areas)} from {self.file_name} ({self.rows_added:,} new, "
                f"{self.rows_replaced:,} replacing earlier imports of the same rows).")

    def _own_notes(self) -> list[str]:
        if not self.case_rows_replaced:
            return []
        return [f"{self.case_rows_replaced:,} Marac referrals that came on case rows were "
                "replaced by this file's (same service, client and meeting date)."]


def template_path() -> Path:
    return settings.ROOT / "data" / "import_template.csv"


def marac_template_path() -> Path:
    return settings.ROOT / "data" / "marac_template.csv"


def import_file(path: Path | str, service_id: str | None, **kwargs) -> ImportResult:
    path = Path(path)
    return import_bytes(_read(path), path.name, service_id, **kwargs)


def import_marac_file(path: Path | str, **kwargs) -> MaracImportResult:
    path = Path(path)
    return import_marac_bytes(_read(path), path.name, **kwargs)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FileUnreadable(f"{path} could not be read: {exc.strerror}.") from exc


def import_bytes(
    data: bytes,
    file_name: str,
    service_id: str | None,
    *,
    services: Collection[str] | None = None,
    user: str | None = None,
    db_path: Path | None = None,
    today: dt.date | None = None,
    batch_rows: int = BATCH_ROWS,
    on_batch: Callable[[int, int], None] | None = None,
    linkage: bool | None = None,
) -> ImportResult:
    """Check `data` (the file's bytes) and, when it has no problems, store it.

    With `service_id`, every case is that service's. With None the file is area-wide:
    each row names its service in `service_id`, which must be registered and one of
    `services` (the services the importing user may import for; None means every
    registered service); one bad row refuses the whole file. `linkage` defaults to the
    deployment's setting (SI_LINKAGE_KEY).

    `on_batch(rows_written, rows_total)` is called after each batch of cases is written
    inside the transaction; an exception from it abandons the import (tests use this to
    crash an import half-way).
    """
    key = pseudonym.load_key()
    linkage = settings.get().linkage_key if linkage is None else linkage
    path = Path(db_path or settings.get().db_path)
    db.remove_leftovers(path)  # copies a killed import left, even if this one is refused
    registered, _ = _refuse_unless_ready(path, key, service_id)
    allowed = tuple(s for s in registered if services is None or s in set(services))
    raw, header = validate.read_table(data, file_name, fmt.CASES.names(linkage))
    checked = validate.check(raw, service_id, today, header, services=allowed, linkage=linkage)
    result = ImportResult(file_name, service_id, checked.rows_read, checked.problems,
                          checked.dropped, checked.ignored, checked.renamed,
                          checked.age_bands_from_dob)
    if checked.problems.height:
        return result
    quality = _quality(checked.cases, checked.absent)
    svc = pl.col("service_id")
    cases = checked.cases.with_columns(
        case_id=pseudonym.pseudonymise_by(checked.cases["case_ref"],
                                          checked.cases.select(pl.format("case|{}", svc))
                                          .to_series(), key),
        client_key=pseudonym.pseudonymise_by(checked.cases["client_ref"],
                                             checked.cases.select(pl.format("client|{}", svc))
                                             .to_series(), key),
    ).drop("case_ref", "client_ref", "row")
    cases, result.linkage_keys = _linkage_key(cases, key, linkage)
    log = {
        "import_id": uuid.uuid4().hex, "imported_by": user or getpass.getuser(),
        "file_name": Path(file_name).name, "file_sha256": hashlib.sha256(data).hexdigest(),
        "rows_in_file": checked.rows_read, "as_of": (today or dt.date.today()).isoformat(),
    }
    marac_in_file = "marac_meeting_date" not in checked.absent

    def write(w: db.Writer) -> dict:
        return _write(w, cases, key, log, batch_rows, on_batch, marac_in_file)

    out = db.rewrite_store(path, write)
    result.by_service = out["by_service"]
    result.rows_added = int(result.by_service["new"].sum())
    result.rows_replaced = int(result.by_service["replacing"].sum())
    result.marac_referrals = int(result.by_service["marac_referrals"].sum())
    result.marac_replaced, result.marac_kept, result.marac_from_file = (
        out["marac_replaced"], out["marac_kept"], out["marac_from_file"])
    result.imported, result.quality = True, quality
    return result


def _linkage_key(frame: pl.DataFrame, key: bytes, linkage: bool
                 ) -> tuple[pl.DataFrame, int | None]:
    """The linkage key from the normalised identifier (`_link`), which is then dropped:
    one domain for the whole deployment, so one person gets the same key at every
    service and Marac. Returns how many records got one (None when it is off)."""
    if not linkage:
        return frame.drop("_link", strict=False), None
    link = frame["_link"] if "_link" in frame.columns else pl.Series(
        "_link", [None] * frame.height, dtype=pl.String)
    keyed = pseudonym.pseudonymise(link, key, "link")
    frame = frame.drop("_link", strict=False).with_columns(linkage_key=keyed)
    return frame, frame.height - keyed.null_count()


def _refuse_unless_ready(path: Path, key: bytes, service_id: str | None = None
                         ) -> tuple[list[str], list[str]]:
    """Refuse unless the store holds real records under this key (and `service_id`, when
    given, is registered); returns the registered service ids and area codes."""
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
        registered = s.query("select service_id from main.services order by 1").frame[
            "service_id"].to_list()
        areas = s.query("select area_code from main.areas order by 1").frame[
            "area_code"].to_list()
    finally:
        s.close()
    if service_id is not None and service_id not in registered:
        raise ImportRefused(
            f"Service {service_id} is not registered in this store. Register it first "
            f"(`service-insights services add --id {service_id} ...` or the Import page).")
    return registered, areas


def _check_key(meta: dict[str, str], key: bytes) -> None:
    stored = meta.get("pseudonym_key_check")
    if stored is not None and stored != pseudonym.key_check(key):
        raise ImportRefused(
            "The pseudonymisation key is not the one earlier imports into this store used, "
            "so the same person would get a different pseudonym. Set the original key "
            "(SI_PSEUDONYM_KEY or SI_PSEUDONYM_KEY_FILE).")


def _check_store(w: db.Writer, key: bytes) -> None:
    meta = dict(w.fetch("select key, value from store.meta").iter_rows())
    if meta.get("data_kind") != "real":
        raise ImportRefused("The store no longer holds real records; nothing was imported.")
    _check_key(meta, key)


def _finish(w: db.Writer, key: bytes, log: dict, kind: str,
            rows: list[tuple[str | None, int, int]]) -> None:
    """Meta (key check, data as of) and one import-log row per service (or one for a
    Marac file): (service_id, added, replaced)."""
    for k, v in (("pseudonym_key_check", pseudonym.key_check(key)),
                 ("data_as_of", log["as_of"])):
        w.execute("insert or replace into store.meta values ($k, $v)", {"k": k, "v": v})
    for i, (service_id, added, replaced) in enumerate(rows):
        w.execute(
            "insert into store.import_log (import_id, imported_at, imported_by, file_name, "
            "file_sha256, kind, service_id, rows_in_file, rows_added, rows_replaced) values "
            "($id, current_localtimestamp(), $by, $name, $sha, $kind, $svc, $n, $added, "
            "$replaced)",
            {"id": log["import_id"] + ("" if i == 0 else f"-{i}"), "by": log["imported_by"],
             "name": log["file_name"], "sha": log["file_sha256"], "kind": kind,
             "svc": service_id, "n": log["rows_in_file"], "added": added,
             "replaced": replaced})


def _write(w: db.Writer, cases: pl.DataFrame, key: bytes, log: dict, batch_rows: int,
           on_batch, marac_in_file: bool) -> dict:
    _check_store(w, key)
    ids = sorted(set(cases["service_id"]))
    areas = w.fetch("select service_id, area_code from store.services "
                    "where list_contains($s, service_id)", {"s": ids})
    gone = sorted(set(ids) - set(areas["service_id"]))
    if gone:
        raise ImportRefused(f"Service {', '.join(gone)} is not registered; nothing was "
                            "imported.")

    # No primary key here: indexing a million random pseudonyms costs ~5 s, and they
    # are unique already (checked in the file, and the store's key would refuse a clash).
    w.execute("create temp table incoming_cases (case_id varchar, service_id varchar)")
    w.append("incoming_cases", cases.select("case_id", "service_id"))
    replaced = dict(w.fetch(
        "select c.service_id, count(*) as n from store.cases c "
        "join incoming_cases i using (case_id, service_id) group by 1").iter_rows())
    # A case's Marac referral (source 'case') is keyed by the case: replaced with it when
    # the file has the Marac columns, kept when it has none. Referrals from a Marac file
    # are never touched by a cases import.
    from_cases = ("from store.marac_referrals where source = 'case' and referral_id in "
                  "(select case_id from incoming_cases)")
    held = int(w.fetch(f"select count(*) as n {from_cases}")["n"][0])
    if marac_in_file:
        w.execute(f"delete {from_cases}")
    w.execute("delete from store.cases where (case_id, service_id) in "
              "(select (case_id, service_id) from incoming_cases)")
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
    added_marac = pl.DataFrame({"service_id": [], "n": []},
                               schema={"service_id": pl.String, "n": pl.Int64})
    from_file = 0
    if marac_in_file:
        marac = cases.filter(pl.col("marac_meeting_date").is_not_null()).join(
            areas, on="service_id", how="left").select(
            *(["linkage_key"] if "linkage_key" in cases.columns else []),
            referral_id="case_id", client_key="client_key", marac_area="area_code",
            service_id="service_id", meeting_date="marac_meeting_date",
            referring_agency="marac_referring_agency",
            children_in_household="children_in_household", record_key="marac_record_key",
            service_client_key="client_key", source=pl.lit("case"))
        w.execute("create temp table incoming_marac as "
                  "select * from store.marac_referrals limit 0")
        w.append("incoming_marac", marac)
        # A referral a Marac file already holds (the same service, client and meeting) is
        # not added twice.
        covered = ("exists (select 1 from store.marac_referrals m where m.source = "
                   "'marac_file' and m.service_id = i.service_id and m.service_client_key "
                   "= i.client_key and m.meeting_date = i.meeting_date)")
        from_file = int(w.fetch(
            f"select count(*) as n from incoming_marac i where {covered}")["n"][0])
        added_marac = w.fetch(f"select service_id, count(*) as n from incoming_marac i "
                              f"where not {covered} group by 1")
        w.execute(f"insert into store.marac_referrals by name select * from incoming_marac i "
                  f"where not {covered}")
        w.execute("drop table incoming_marac")
    w.execute("drop table incoming_cases")

    by_service = (cases.group_by("service_id").len("cases_in_file")
                  .join(added_marac.rename({"n": "marac_referrals"}), on="service_id",
                        how="left")
                  .with_columns(replacing=pl.col("service_id").replace_strict(
                      replaced, default=0, return_dtype=pl.Int64),
                      marac_referrals=pl.col("marac_referrals").fill_null(0))
                  .with_columns(new=pl.col("cases_in_file") - pl.col("replacing"))
                  .select("service_id", "cases_in_file", "new", "replacing", "marac_referrals")
                  .sort("service_id"))
    _finish(w, key, log, "cases", [(r["service_id"], r["new"], r["replacing"])
                                   for r in by_service.iter_rows(named=True)])
    return {"by_service": by_service, "marac_replaced": held if marac_in_file else 0,
            "marac_kept": 0 if marac_in_file else held, "marac_from_file": from_file}


# ---------------------------------------------------------------- the Marac file


def import_marac_bytes(
    data: bytes,
    file_name: str,
    *,
    user: str | None = None,
    db_path: Path | None = None,
    today: dt.date | None = None,
    batch_rows: int = BATCH_ROWS,
    on_batch: Callable[[int, int], None] | None = None,
    linkage: bool | None = None,
) -> MaracImportResult:
    """Check a Marac coordinator's file (one row per referral heard) and, when it has no
    problems, store it all-or-nothing, as `import_bytes` does a cases file.

    Pseudonyms: `client_ref` per Marac area (so one Marac's repeats are found whichever
    agency referred), `perpetrator_ref` per Marac area, `service_client_ref` as the
    service's own client reference (so it equals that service's cases' client_key). A
    referral's id is a hash of its victim's pseudonym, meeting date, agency and its number
    among identical rows, so importing the same file again replaces its rows.
    """
    key = pseudonym.load_key()
    linkage = settings.get().linkage_key if linkage is None else linkage
    path = Path(db_path or settings.get().db_path)
    db.remove_leftovers(path)
    registered, areas = _refuse_unless_ready(path, key)
    raw, header = validate.read_table(data, file_name, fmt.MARAC.names(linkage))
    checked = validate.check_marac(raw, today, header, areas=tuple(areas),
                                   services=tuple(registered), linkage=linkage)
    result = MaracImportResult(file_name, checked.rows_read, checked.problems,
                               checked.dropped, checked.ignored, checked.renamed)
    if checked.problems.height:
        return result
    refs = checked.cases
    area, nth = pl.col("marac_area"), pl.int_range(pl.len()).over(
        "marac_area", "client_ref", "meeting_date", "referring_agency")
    refs = refs.sort("row").with_columns(
        _id=pl.format("{}\x1f{}\x1f{}", pl.col("meeting_date").dt.strftime("%Y-%m-%d"),
                      pl.col("referring_agency"), nth),
        _client_domain=pl.format("marac_client|{}", area),
        _perp_domain=pl.format("perpetrator|{}", area),
        _svc_domain=pl.format("client|{}", pl.col("service_id")),
    )
    refs = refs.with_columns(
        client_key=pseudonym.pseudonymise_by(refs["client_ref"], refs["_client_domain"], key),
        perpetrator_key=pseudonym.pseudonymise_by(refs["perpetrator_ref"],
                                                  refs["_perp_domain"], key),
        service_client_key=pseudonym.pseudonymise_by(refs["service_client_ref"],
                                                     refs["_svc_domain"], key),
    ).drop("_client_domain", "_perp_domain", "_svc_domain",
           "client_ref", "perpetrator_ref", "service_client_ref", "row")
    # The referral's id: its victim's pseudonym (already keyed by area), meeting date,
    # agency and number among identical rows, hashed by DuckDB's md5 when written (a
    # keyed hash again would cost a second per million rows and add nothing: the victim's
    # reference is already behind the key).
    refs = refs.with_columns(referral_id=pl.format("{}\x1f{}", pl.col("client_key"),
                                                   pl.col("_id"))).drop("_id")
    refs, result.linkage_keys = _linkage_key(refs, key, linkage)
    log = {
        "import_id": uuid.uuid4().hex, "imported_by": user or getpass.getuser(),
        "file_name": Path(file_name).name, "file_sha256": hashlib.sha256(data).hexdigest(),
        "rows_in_file": checked.rows_read, "as_of": (today or dt.date.today()).isoformat(),
    }

    def write(w: db.Writer) -> tuple[int, int, int]:
        return _write_marac(w, refs, key, log, batch_rows, on_batch)

    result.rows_added, result.rows_replaced, result.case_rows_replaced = db.rewrite_store(
        path, write)
    result.by_area = (refs.group_by("marac_area").agg(
        referrals=pl.len(), victims=pl.col("client_key").n_unique(),
        first_meeting=pl.col("meeting_date").min(), last_meeting=pl.col("meeting_date").max(),
        linked_to_a_case=pl.col("service_id").is_not_null().sum(),
        with_perpetrator=pl.col("perpetrator_key").is_not_null().sum(),
        with_dash_score=pl.col("dash_score").is_not_null().sum(),
    ).sort("marac_area"))
    result.imported = True
    return result


def _write_marac(w: db.Writer, refs: pl.DataFrame, key: bytes, log: dict, batch_rows: int,
                 on_batch) -> tuple[int, int, int]:
    _check_store(w, key)
    # Every row goes to a temporary table first (no index: cheap), in batches.
    w.execute("create temp table incoming_refs as select * from store.marac_referrals limit 0")
    refs = refs.with_columns(
        source=pl.lit("marac_file"),
        record_key=pl.Series(np.random.default_rng().integers(0, 256, size=refs.height),
                             dtype=pl.Int16))
    for start in range(0, refs.height, batch_rows):
        w.append("incoming_refs", refs.slice(start, batch_rows))
        if on_batch:
            on_batch(min(start + batch_rows, refs.height), refs.height)
    w.execute("update incoming_refs set referral_id = md5(referral_id)")
    # The same referral sent on a case row earlier (same service, client and meeting) is
    # now held by the Marac file: replaced, and counted.
    superseded = ("from store.marac_referrals m where m.source = 'case' and exists ("
                  "select 1 from incoming_refs i where i.service_id = m.service_id and "
                  "i.service_client_key = m.client_key and i.meeting_date = m.meeting_date)")
    case_rows = int(w.fetch(f"select count(*) as n {superseded}")["n"][0])
    if case_rows:
        w.execute(f"delete {superseded}")
    # A row imported before (same id) is updated in place, keeping its record key, so the
    # same referral keeps the same cell-key noise; deleting and re-inserting a million
    # indexed rows costs about a minute more.
    replaced = int(w.fetch(
        "select count(*) as n from store.marac_referrals m join incoming_refs i "
        "using (referral_id)")["n"][0])
    if replaced:
        w.execute(
            "update store.marac_referrals m set "
            + ", ".join(f"{c} = i.{c}" for c in _MARAC_UPDATED)
            + " from incoming_refs i where m.referral_id = i.referral_id")
    w.execute("insert into store.marac_referrals by name select * from incoming_refs i "
              + ("where not exists (select 1 from store.marac_referrals m "
                 "where m.referral_id = i.referral_id)" if replaced else ""))
    w.execute("drop table incoming_refs")
    added = refs.height - replaced
    _finish(w, key, log, "marac", [(None, added, replaced)])
    return added, replaced, case_rows


_MARAC_UPDATED = ("children_in_household", "dash_score", "perpetrator_key", "service_id",
                  "service_client_key", "linkage_key")
"""What a re-imported row can change: the rest (area, victim, meeting date, agency) is in
its id."""


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
