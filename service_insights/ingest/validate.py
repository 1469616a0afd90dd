"""Reading an export and checking every value against the import format, vectorised in
Polars so a million-row file is checked in seconds.

Every problem carries the row number the user sees in their spreadsheet (header row 1,
first record row 2), the field, the value as written and what is wrong. Identifying
columns are dropped here, before any value is checked, so they go no further.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import PurePath

import openpyxl
import polars as pl

from service_insights.ingest import columns as fmt

PROBLEM_SCHEMA = {"row": pl.Int64, "field": pl.String, "value": pl.String,
                  "message": pl.String}
BLANKS = ("", "n/a", "#n/a", "null")
"""Cell contents read as blank (compared in lower case after trimming)."""


class FileUnreadable(Exception):
    """The file cannot be read as a table at all; the message names the file."""


@dataclass
class Checked:
    rows_read: int
    cases: pl.DataFrame
    """Typed columns in the store's names, with the raw references still in
    case_ref/client_ref (pseudonymised by the importer); empty when there are problems."""
    problems: pl.DataFrame
    dropped: list[str] = field(default_factory=list)
    """Identifying columns dropped, as named in the file."""
    ignored: list[str] = field(default_factory=list)
    """Columns not in the format (not identifying by name), not read."""
    renamed: dict[str, str] = field(default_factory=dict)
    """File column -> format column, where the names differ."""
    age_bands_from_dob: int = 0
    absent: list[str] = field(default_factory=list)
    """Optional format columns the file does not have (all blank)."""


# ---------------------------------------------------------------- reading


def read_table(data: bytes, file_name: str, names: dict[str, str] | None = None
               ) -> tuple[pl.DataFrame, list[str]]:
    """The columns of the file that the format uses, every one as text (so values can be
    reported exactly as written), and the file's full header.

    Identifying and unknown columns of CSV and Parquet files are never loaded at all,
    which also keeps a wide export's memory down. `names` is the format's name map
    (columns.Format.names); the cases format by default.
    """
    names = names or fmt.NAME_MAP
    suffix = PurePath(file_name).suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            header = pl.read_csv(io.BytesIO(data), n_rows=0, infer_schema=False).columns
            frame = pl.read_csv(io.BytesIO(data), infer_schema=False,
                                columns=_used(header, names) or None)
        elif suffix == ".xlsx":
            frame, header = _read_xlsx(data, file_name, names)
            # A date cell arrives as "2024-05-31 00:00:00"; show it as the date it is.
            frame = frame.select(pl.all().str.replace(
                r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", "$1"))
        elif suffix == ".parquet":
            header = list(pl.read_parquet_schema(io.BytesIO(data)))
            frame = _as_text(pl.read_parquet(io.BytesIO(data),
                                             columns=_used(header, names) or None))
        else:
            raise FileUnreadable(f"{file_name}: use a .csv, .xlsx or .parquet file "
                                 f"(this one ends {suffix or 'without an extension'}).")
    except FileUnreadable:
        raise
    except Exception as exc:  # Polars, openpyxl and pyarrow each raise their own
        hint = (" Save it as 'CSV UTF-8' from your spreadsheet."
                if "utf-8" in str(exc).lower() else "")
        raise FileUnreadable(f"{file_name} could not be read: {exc}.{hint}") from exc
    return frame.select(pl.all().cast(pl.String)), header


def _used(header: list[str], names: dict[str, str]) -> list[str]:
    return list(_header(header, names)[0])


def _read_xlsx(data: bytes, file_name: str, names: dict[str, str]
               ) -> tuple[pl.DataFrame, list[str]]:
    """The first sheet's format columns as text, and its header, in one read-only pass.

    The header is the first row with anything in it; every row after it is a record (so
    row numbers match the spreadsheet's). A cell holding a formula is refused with its
    row and field: reading the value Excel last cached (or blank, for a file written by
    a program that never calculated it) would store a figure nobody typed.
    """
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    try:
        rows = book.worksheets[0].iter_rows()
        header: list[str] = []
        for row in rows:
            if any(cell.value is not None for cell in row):
                header = _names([cell.value for cell in row])
                break
        used = set(_used(header, names))
        keep = [i for i, name in enumerate(header) if name in used]
        columns: dict[int, list[str | None]] = {i: [] for i in keep}
        formulas: list[tuple[int, str, str]] = []
        for n, row in enumerate(rows, start=1):
            for i in keep:
                cell = row[i] if i < len(row) else None
                value = None if cell is None else cell.value
                if value is not None and cell.data_type == "f":
                    formulas.append((getattr(cell, "row", None) or n + 1, header[i],
                                     str(getattr(value, "text", value))))
                columns[i].append(None if value is None else str(value))
    finally:
        book.close()
    if formulas:
        raise FileUnreadable(_formula_sentence(file_name, formulas))
    frame = pl.DataFrame([pl.Series(header[i], columns[i], dtype=pl.String) for i in keep])
    return frame, header


def _names(values: list[object]) -> list[str]:
    """Header cells as column names: blanks and repeats made unique, as Polars names them."""
    out: list[str] = []
    for value in values:
        name = "" if value is None else str(value)
        base, k = name, 0
        while name in out:
            name, k = f"{base}_duplicated_{k}", k + 1
        out.append(name)
    return out


def _formula_sentence(file_name: str, formulas: list[tuple[int, str, str]]) -> str:
    row, field_name, formula = formulas[0]
    shown = formula if len(formula) <= 40 else formula[:37] + "..."
    more = len(formulas) - 1
    also = (f" (and {more:,} more cell{'s' if more != 1 else ''} with a formula)"
            if more else "")
    return (f"{file_name}: row {row}, field {field_name} holds a formula ({shown}) instead "
            f"of a value{also}; nothing was imported, so replace formulas with their values "
            "(copy, then Paste Special > Values) and import the file again.")


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Typed Parquet columns written as the text a CSV export would hold."""
    out = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Date:
            out.append(col.dt.strftime("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime):
            out.append(col.dt.date().dt.strftime("%Y-%m-%d"))
        elif dtype.is_float():
            whole = col.is_finite() & (col == col.floor())
            out.append(pl.when(whole).then(col.cast(pl.Int64).cast(pl.String))
                       .otherwise(col.cast(pl.String)).alias(name))
        else:
            out.append(col.cast(pl.String))
    return frame.select(out)


# ---------------------------------------------------------------- checking


def _problems(frame: pl.DataFrame, mask: pl.Expr, field_name: str, value: pl.Expr,
              message: pl.Expr | str) -> pl.DataFrame:
    msg = pl.lit(message) if isinstance(message, str) else message
    return frame.filter(mask).select(
        pl.col("row").cast(pl.Int64),
        pl.lit(field_name).alias("field"),
        value.cast(pl.String).fill_null("").alias("value"),
        msg.cast(pl.String).alias("message"),
    )


Check = tuple[pl.Expr, str, pl.Expr, "pl.Expr | str"]
"""(mask of rows with the problem, field, value to show, message)."""


def _collect(frame: pl.DataFrame, checks: list[Check]) -> list[pl.DataFrame]:
    """Evaluate every mask in one parallel pass; build problem rows only for checks that
    fail somewhere (a good file costs one pass)."""
    if not checks or frame.height == 0:
        return []
    counts = frame.select([m.fill_null(False).sum().alias(str(i))
                           for i, (m, *_) in enumerate(checks)]).row(0)
    return [_problems(frame, m.fill_null(False), f, v, msg)
            for n, (m, f, v, msg) in zip(counts, checks, strict=True) if n]


USED_THEN_DROPPED = (fmt.DATE_OF_BIRTH, fmt.NHS_NUMBER, fmt.SURNAME)
"""Identifiers read once (an age band; the linkage key) and then dropped."""


def _header(columns: list[str], names: dict[str, str] | None = None):
    """Decide what each file column is: a format column, a dropped identifier, or ignored."""
    names = names or fmt.NAME_MAP
    use: dict[str, str] = {}
    dropped, ignored, problems = [], [], []
    for name in columns:
        clean = name.lstrip("\ufeff")
        if "_duplicated_" in clean:
            base = clean.split("_duplicated_")[0]
            problems.append((1, base, clean, f"the column {base!r} appears more than once"))
            continue
        target = names.get(fmt.normalise_name(clean))
        if target is None:
            (dropped if fmt.IDENTIFYING.search(fmt.normalise_name(clean)) else ignored).append(
                clean)
            continue
        if target in use.values():
            first = next(k for k, v in use.items() if v == target)
            problems.append((1, target, clean,
                             f"both {first!r} and {clean!r} are read as {target}; keep one"))
            continue
        use[name] = target
        if target in USED_THEN_DROPPED:
            dropped.append(clean)
    return use, dropped, ignored, problems


def _normalise_code(expr: pl.Expr, hyphenated: bool) -> pl.Expr:
    low = expr.str.to_lowercase().str.replace_all("'", "", literal=True)
    if hyphenated:  # age bands: "16 - 17" -> "16-17"
        return low.str.replace_all(r"\s+", "")
    return low.str.replace_all(r"[\s\-/]+", "_")


def _parse_date(expr: pl.Expr) -> pl.Expr:
    """ISO 2024-05-31 or UK day-first 31/05/2024 (also 31-05-2024, 31.05.2024); a
    spreadsheet date-time at midnight counts as its date. Two-digit years are refused."""
    s = expr.str.replace(r"[ T]00:00(:00(\.0+)?)?$", "")
    iso = pl.when(s.str.contains(r"^\d{4}-\d{1,2}-\d{1,2}$")).then(
        s.str.strptime(pl.Date, "%Y-%m-%d", strict=False))
    uk_text = s.str.replace_all(r"[-.]", "/")
    uk = pl.when(s.str.contains(r"^\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}$")).then(
        uk_text.str.strptime(pl.Date, "%d/%m/%Y", strict=False))
    return pl.coalesce(iso, uk)


def _parse_int(expr: pl.Expr) -> pl.Expr:
    f = expr.str.replace_all(",", "").cast(pl.Float64, strict=False)
    return pl.when(f.is_finite() & (f == f.floor())).then(f).cast(pl.Int64)


def _age_band(age: pl.Expr) -> pl.Expr:
    out = pl.lit(None, dtype=pl.String)
    for low, band in fmt.AGE_BANDS:
        out = pl.when(age >= low).then(pl.lit(band)).otherwise(out)
    return out


def check(raw: pl.DataFrame, service_id: str | None, today: dt.date | None = None,
          header: list[str] | None = None, *, services: tuple[str, ...] = (),
          linkage: bool = False) -> Checked:
    """Map, clean and check an export; `cases` is filled only when there are no problems.

    `raw` holds at least the columns the format uses; `header` is the file's full header
    when `raw` was read without the others (see read_table). With `service_id` every row
    is that service's (a row naming another is a problem); with None the file is
    area-wide: every row names its service, which must be one of `services` (those the
    importing user may import for). With `linkage`, an NHS number or surname and date of
    birth becomes the `_link` text the importer turns into the linkage key.

    In order: map the header; select the format's columns and blank blank-like cells;
    report missing columns (and an empty file); parse each column to its type and report
    what does not parse or is out of range; turn a date of birth into an age band; check
    required fields and rules across fields; report duplicate case references; sort the
    problems and keep the cases only if there are none.
    """
    spec = fmt.CASES
    typed, problems, rows_read, parts = _typed(raw, header, today, spec, linkage)
    use, dropped, ignored, missing, has_dob = parts
    if service_id is None and "service_id" in missing:
        problems.append(_one_problem(1, "service_id", "an area-wide file (several services) "
                                     "needs this column: the service of each case"))
    typed, dob_problems, age_bands_from_dob = _age_band_from_dob(typed, has_dob)
    problems += dob_problems
    problems += _collect(typed, _required_checks(missing, has_dob, spec)
                         + _rule_checks(service_id, services))
    problems.append(_duplicate_case_refs(typed, service_id))

    all_problems = _sorted_problems(problems, spec)
    return Checked(rows_read, _cases(typed, service_id, all_problems.height > 0), all_problems,
                   dropped, ignored, _renamed(use), age_bands_from_dob,
                   absent=[n for n in missing if not spec.by_name[n].required])


def check_marac(raw: pl.DataFrame, today: dt.date | None = None,
                header: list[str] | None = None, *, areas: tuple[str, ...] = (),
                services: tuple[str, ...] = (), linkage: bool = False) -> Checked:
    """Map, clean and check a Marac file (columns.MARAC_COLUMNS) as `check` does a cases
    file; `cases` holds the referrals, only when there are no problems.

    `areas` are the registered area codes (a Marac area must be one of them) and
    `services` the registered services (a referral may name one, with the client's
    reference at that service, to link it to the service's case).
    """
    spec = fmt.MARAC
    typed, problems, rows_read, parts = _typed(raw, header, today, spec, linkage)
    use, dropped, ignored, missing, has_dob = parts
    problems += _collect(typed, _required_checks(missing, False, spec)
                         + _marac_rule_checks(areas, services))
    all_problems = _sorted_problems(problems, spec)
    referrals = typed.head(0) if all_problems.height else typed
    referrals = referrals.select([c for c in referrals.columns
                                  if not c.startswith("_raw_") and c != "_dob"])
    return Checked(rows_read, referrals, all_problems, dropped, ignored, _renamed(use), 0,
                   absent=[n for n in missing if not spec.by_name[n].required])


def _typed(raw: pl.DataFrame, header: list[str] | None, today: dt.date | None,
           spec: fmt.Format, linkage: bool):
    """The steps both formats share: map the header; select the format's columns and blank
    blank-like cells; report missing columns (and an empty file); parse each column to its
    type and report what does not parse or is out of range; with the linkage key on, turn
    the identifiers into `_link` text."""
    today = today or dt.date.today()
    use, dropped, ignored, header_problems = _header(header or raw.columns,
                                                     spec.names(linkage))
    problems = [pl.DataFrame(header_problems, schema=PROBLEM_SCHEMA, orient="row")]

    frame, rows_read = _select_columns(raw, use)
    frame, missing, missing_problems = _add_missing_columns(frame, spec)
    problems += missing_problems
    if rows_read == 0:
        problems.append(_one_problem(2, "", "the file has no records"))

    has_dob = fmt.DATE_OF_BIRTH in frame.columns
    typed, parse_checks, range_checks = _parse_columns(frame, today, has_dob, spec)
    problems += _collect(typed, parse_checks + range_checks)
    typed = _blank_out_of_range(typed, range_checks)
    if linkage:
        typed, link_problems = _linkage_text(typed)
        problems += link_problems
    return typed, problems, rows_read, (use, dropped, ignored, missing, has_dob)


def _nhs_number_valid(nhs: pl.Expr) -> pl.Expr:
    """Ten digits whose last is the modulus 11 check digit of the first nine (NHS Digital's
    rule: weights 10 to 2; 11 means 0, 10 means the number is not valid)."""
    total = pl.sum_horizontal([nhs.str.slice(i, 1).cast(pl.Int32, strict=False) * (10 - i)
                               for i in range(9)])
    check_digit = 11 - total % 11
    check_digit = pl.when(check_digit == 11).then(0).otherwise(check_digit)
    return (nhs.str.contains(r"^\d{10}$")
            & (check_digit == nhs.str.slice(9, 1).cast(pl.Int32, strict=False)))


def _linkage_text(typed: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """The normalised identifier behind the linkage key, as `_link`: `nhs:` and the ten
    digits when a valid NHS number is given, otherwise `sd:` and the surname in capitals
    A to Z only (accents, spaces, hyphens and apostrophes removed) with the date of birth,
    when both are given; otherwise blank. The identifier columns are then dropped."""
    cols = typed.columns
    nhs = (pl.col("_nhs").str.replace_all(r"[\s\-]", "") if "_nhs" in cols
           else pl.lit(None, dtype=pl.String))
    surname = (pl.col("_surname").str.normalize("NFKD").str.to_uppercase()
               .str.replace_all("[^A-Z]", "") if "_surname" in cols
               else pl.lit(None, dtype=pl.String))
    dob = pl.col("_dob") if "_dob" in cols else pl.lit(None, dtype=pl.Date)
    valid = _nhs_number_valid(nhs)
    problems = _collect(typed, [(nhs.is_not_null() & ~valid, fmt.NHS_NUMBER,
                                 pl.lit("(not shown)"),
                                 "not a valid NHS number (10 digits with a valid check "
                                 "digit); leave it blank if it is not known")])
    link = (pl.when(valid).then(pl.concat_str(pl.lit("nhs:"), nhs))
            .when((surname.str.len_chars() > 0) & dob.is_not_null())
            .then(pl.concat_str(pl.lit("sd:"), surname, pl.lit("|"),
                                dob.dt.strftime("%Y-%m-%d"))))
    typed = typed.with_columns(_link=link).drop(
        [c for c in ("_nhs", "_surname") if c in cols])
    return typed, problems


def _renamed(use: dict[str, str]) -> dict[str, str]:
    """File column -> format column where the names differ (date of birth is dropped, not
    renamed)."""
    return {k.lstrip("\ufeff"): v for k, v in use.items()
            if k.lstrip("\ufeff") != v and v != fmt.DATE_OF_BIRTH}


def _one_problem(row: int, field_name: str, message: str) -> pl.DataFrame:
    """A single problem about the file as a whole (no value to show)."""
    return pl.DataFrame([(row, field_name, "", message)], schema=PROBLEM_SCHEMA, orient="row")


def _select_columns(raw: pl.DataFrame, use: dict[str, str]) -> tuple[pl.DataFrame, int]:
    """Only the format's columns (identifying columns stop here), numbered as the user's
    spreadsheet rows, with blank-like cells as null and wholly blank rows dropped."""
    frame = raw.select([pl.col(k).alias(v) for k, v in use.items()]).with_row_index(
        "row", offset=2)
    value_cols = [c for c in frame.columns if c != "row"]
    frame = frame.with_columns([
        pl.when(pl.col(c).str.strip_chars().str.to_lowercase().is_in(BLANKS)).then(None)
        .otherwise(pl.col(c).str.strip_chars()).alias(c)
        for c in value_cols
    ])
    if value_cols:  # rows with every cell blank (spreadsheet leftovers) are not records
        frame = frame.filter(~pl.all_horizontal(pl.col(value_cols).is_null()))
    return frame, frame.height


def _add_missing_columns(frame: pl.DataFrame, spec: fmt.Format = fmt.CASES
                         ) -> tuple[pl.DataFrame, list[str], list[pl.DataFrame]]:
    """Report required format columns the file lacks, and add every missing one as blank so
    later steps see the full format."""
    missing = [c.name for c in spec.columns if c.name not in frame.columns]
    # an age band can come from a date of birth instead
    problems = [_one_problem(1, name, "this column is missing from the file")
                for name in missing if spec.by_name[name].required
                and not (name == "age_band" and fmt.DATE_OF_BIRTH in frame.columns)]
    frame = frame.with_columns([pl.lit(None, dtype=pl.String).alias(n) for n in missing])
    return frame, missing, problems


def _parse_columns(frame: pl.DataFrame, today: dt.date, has_dob: bool,
                   spec: fmt.Format = fmt.CASES
                   ) -> tuple[pl.DataFrame, list[Check], list[Check]]:
    """Parse each column to its type once, keeping the text as `_raw_<name>`; returns the
    typed frame, the checks for values that did not parse, and the range checks."""
    parsed: dict[str, pl.Expr] = {}
    parse_checks: list[Check] = []
    range_checks: list[Check] = []
    for col in spec.columns:
        c, raw_c, typed_c = pl.col(col.name), pl.col(f"_raw_{col.name}"), pl.col(col.name)
        unparsed = raw_c.is_not_null() & typed_c.is_null()
        if col.kind == "date":
            parsed[col.name] = _parse_date(c)
            parse_checks.append(
                (unparsed, col.name, raw_c, "not a date: write 31/05/2024 or 2024-05-31"))
            range_checks.append(
                ((typed_c < pl.lit(dt.date.fromisoformat(fmt.EARLIEST_DATE)))
                 | (typed_c > pl.lit(today)), col.name, raw_c,
                 f"outside {fmt.EARLIEST_DATE[:4]} to today: check the year"))
        elif col.kind == "int":
            parsed[col.name] = _parse_int(c)
            parse_checks.append((unparsed, col.name, raw_c, "not a whole number"))
            range_checks.append(((typed_c < col.low) | (typed_c > col.high), col.name, raw_c,
                                 f"must be between {col.low} and {col.high}"))
        elif col.kind == "bool":
            parsed[col.name] = c.str.to_lowercase().replace_strict(
                fmt.BOOLEAN, default=None, return_dtype=pl.Boolean)
            parse_checks.append((unparsed, col.name, raw_c, "not yes/no: write yes or no "
                                 "(Y/N, 1/0, true/false also work)"))
        elif col.kind == "text" and col.codes:
            norm = _normalise_code(c, any("-" in code for code in col.codes))
            aliases = fmt.CODES.get(col.name, {})
            p = norm.replace(aliases) if aliases else norm
            parsed[col.name] = pl.when(p.is_in(list(col.codes))).then(p)
            parse_checks.append((unparsed, col.name, raw_c,
                                 "not an allowed value: use one of " + ", ".join(col.codes)))
        else:
            parsed[col.name] = c
    if has_dob:
        parse_checks.append((pl.col("_raw_dob").is_not_null() & pl.col("_dob").is_null(),
                             fmt.DATE_OF_BIRTH, pl.lit("(not shown)"),
                             "not a date: write 31/05/2024 or 2024-05-31"))
    typed = frame.select(
        "row",
        *[e.alias(n) for n, e in parsed.items()],
        *[pl.col(n).alias(f"_raw_{n}") for n in parsed],
        *([_parse_date(pl.col(fmt.DATE_OF_BIRTH)).alias("_dob"),
           pl.col(fmt.DATE_OF_BIRTH).alias("_raw_dob")] if has_dob else []),
        *([pl.col(fmt.NHS_NUMBER).alias("_nhs")] if fmt.NHS_NUMBER in frame.columns else []),
        *([pl.col(fmt.SURNAME).alias("_surname")] if fmt.SURNAME in frame.columns else []),
    )
    return typed, parse_checks, range_checks


def _blank_out_of_range(typed: pl.DataFrame, range_checks: list[Check]) -> pl.DataFrame:
    """Blank out-of-range values (already reported) so the rules below do not report the
    same cell again under another name."""
    return typed.with_columns([
        pl.when(~m.fill_null(False)).then(pl.col(n)).alias(n)
        for m, n, *_ in range_checks])


def _month_day(d: pl.Expr) -> pl.Expr:
    """Month and day as one comparable number (month() is Int8: widen before * 100)."""
    return d.dt.month().cast(pl.Int32) * 100 + d.dt.day().cast(pl.Int32)


def _age_band_from_dob(typed: pl.DataFrame, has_dob: bool
                       ) -> tuple[pl.DataFrame, list[pl.DataFrame], int]:
    """Turn a date of birth into an age band at the referral date, then drop it; returns the
    frame, its problems (under 16) and how many age bands it filled."""
    if not has_dob:
        return typed, [], 0
    ref, birth = pl.col("referral_date"), pl.col("_dob")
    age = (ref.dt.year() - birth.dt.year()) - (
        _month_day(ref) < _month_day(birth)).cast(pl.Int32)
    problems = _collect(typed, [(age < 16, fmt.DATE_OF_BIRTH, pl.lit("(not shown)"),
                                 "the client was under 16 at referral (or the date of "
                                 "birth is after the referral date)")])
    fill = pl.col("age_band").is_null() & pl.col("_raw_age_band").is_null() & (age >= 16)
    filled = typed.select(fill.sum()).item()
    typed = typed.with_columns(
        age_band=pl.when(fill).then(_age_band(age)).otherwise(pl.col("age_band")),
        # a date of birth that gives no band is reported on its own field only
        _raw_age_band=pl.when(pl.col("_raw_age_band").is_null() & pl.col("_dob")
                              .is_not_null()).then(pl.lit("(from date of birth)"))
        .otherwise(pl.col("_raw_age_band")),
    ).drop("_dob", "_raw_dob")
    return typed, problems, filled


def _required_checks(missing: list[str], has_dob: bool, spec: fmt.Format = fmt.CASES
                     ) -> list[Check]:
    """Blank required fields (a missing column is reported once, above, not per row)."""
    return [(pl.col(f"_raw_{col.name}").is_null(), col.name, pl.lit(""),
             "required: this field may not be blank")
            for col in spec.columns if col.required and (
                col.name not in missing or (col.name == "age_band" and has_dob))]


def _raw(n: str) -> pl.Expr:
    """The value of field `n` as written in the file."""
    return pl.col(f"_raw_{n}")


def _rule_checks(service_id: str | None, services: tuple[str, ...] = ()) -> list[Check]:
    """Rules across fields, only between values that parsed; each shows the value as
    written."""
    ref, intake, exit_ = pl.col("referral_date"), pl.col("intake_date"), pl.col("exit_date")
    kids, care = pl.col("children_in_household"), pl.col("social_care")
    meeting, agency = pl.col("marac_meeting_date"), pl.col("marac_referring_agency")
    rules = [
        (intake < ref, "intake_date", pl.format("before the referral date {}", _raw(
            "referral_date"))),
        (exit_ < intake, "exit_date", pl.format("before the intake date {}", _raw(
            "intake_date"))),
        (exit_.is_not_null() & _raw("intake_date").is_null(), "exit_date",
         "a closed case needs an intake_date"),
        ((kids == 0) & care.is_not_null() & (care != "none"), "social_care",
         "must be blank (or none) when children_in_household is 0"),
        ((kids > 0) & _raw("social_care").is_null(), "social_care",
         "required when there are children: write unknown if it is not known"),
        ((kids == 0) & pl.col("youngest_child_age_band").is_not_null(),
         "youngest_child_age_band", "must be blank when children_in_household is 0"),
        (meeting.is_not_null() & (pl.col("marac_referred").not_()), "marac_referred",
         "says no, but a marac_meeting_date is given"),
        (meeting.is_not_null() & _raw("marac_referring_agency").is_null(),
         "marac_referring_agency", "required when a marac_meeting_date is given"),
        (agency.is_not_null() & _raw("marac_meeting_date").is_null(), "marac_meeting_date",
         "required when a marac_referring_agency is given"),
        (meeting < ref, "marac_meeting_date", pl.format("before the referral date {}", _raw(
            "referral_date"))),
    ]
    svc = pl.col("service_id")
    if service_id is not None:
        rules.append((svc.is_not_null() & (svc != service_id), "service_id",
                      f"this file is being imported for {service_id}"))
    else:  # an area-wide file: each row is checked against what the user may import for
        rules += [
            (svc.is_null(), "service_id",
             "required in an area-wide file: the service that holds this case"),
            (svc.is_not_null() & ~svc.is_in(list(services)), "service_id",
             "not a registered service you may import for: "
             + (", ".join(services) or "there are none")),
        ]
    rules += [(pl.col(o).is_not_null() & _raw("exit_date").is_null(), o,
               "an outcome is recorded but the case has no exit_date") for o in fmt.OUTCOMES]
    return [(m, n, _raw(n), msg) for m, n, msg in rules]


def _duplicate_case_refs(typed: pl.DataFrame, service_id: str | None = None) -> pl.DataFrame:
    """Every repeat of a case_ref at one service within the file, pointing at its first
    row (services number their cases independently, so an area-wide file may hold the
    same reference at two services)."""
    svc = pl.col("service_id").fill_null(pl.lit(service_id or ""))
    dup = typed.select("row", "case_ref", svc).filter(
        pl.col("case_ref").is_not_null()).with_columns(
        first=pl.col("row").min().over("service_id", "case_ref"))
    return _problems(dup, pl.col("row") != pl.col("first"), "case_ref", pl.col("case_ref"),
                     pl.format("the same case_ref as row {}", pl.col("first")))


def _sorted_problems(problems: list[pl.DataFrame], spec: fmt.Format = fmt.CASES
                     ) -> pl.DataFrame:
    """All problems in one frame, by row and then in the format's column order."""
    order = {c.name: i for i, c in enumerate(spec.columns)}
    return (pl.concat(problems).with_columns(
        _o=pl.col("field").replace_strict(order, default=len(order), return_dtype=pl.Int32))
        .sort("row", "_o").drop("_o"))


def _cases(typed: pl.DataFrame, service_id: str | None, any_problems: bool) -> pl.DataFrame:
    """The typed cases to store (none if anything is wrong), without the `_raw_` text."""
    cases = typed.head(0) if any_problems else typed
    cases = cases.select([c for c in cases.columns if not c.startswith("_raw_")
                          and c != "_dob"])
    return cases.with_columns(
        service_id=pl.lit(service_id) if service_id is not None else pl.col("service_id"),
        social_care=pl.when(pl.col("children_in_household") == 0).then(None)
        .otherwise(pl.col("social_care")),
    )


def _marac_rule_checks(areas: tuple[str, ...], services: tuple[str, ...]) -> list[Check]:
    """A Marac file's rules: a registered Marac area (the message lists them), and a
    service named only with the client's reference at it (and a registered one)."""
    area, svc = pl.col("marac_area"), pl.col("service_id")
    listed = ", ".join(areas) or "none yet"
    rules = [
        (area.is_not_null() & ~area.is_in(list(areas)), "marac_area",
         f"not a registered Marac area; registered areas are {listed}"),
        (svc.is_not_null() & ~svc.is_in(list(services)), "service_id",
         "not a registered service; registered services are "
         + (", ".join(services) or "none yet")),
        (svc.is_not_null() & _raw("service_client_ref").is_null(), "service_client_ref",
         "required when service_id is given: the client's reference at that service"),
        (svc.is_null() & _raw("service_client_ref").is_not_null(), "service_id",
         "required when service_client_ref is given: the service that holds the case"),
    ]
    return [(m, n, _raw(n), msg) for m, n, msg in rules]
