"""The one module that talks to DuckDB: opening the store, running queries, building it.

The dashboard holds the store read-only with external access off and configuration
locked. DuckDB connections are not thread-safe and Streamlit runs each session in its own
thread, so every query runs on its own cursor of the shared connection. A store is
(re)built by writing a new file and swapping it in, because one process cannot hold the
same file read-only and read-write. A writer killed mid-way leaves its copy behind (it
holds every record); remove_leftovers clears such copies at the next start or write.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import glob
import heapq
import itertools
import json
import os
import re
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

SCHEMA_VERSION = "8"

_READ_ONLY_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "lock_configuration": True,
}


class StoreError(Exception):
    """The store cannot be opened; the message is meant for the person at the screen."""


class StoreMissing(StoreError):
    pass


class StoreOutdated(StoreError):
    """The file is a store, but built for another schema version."""

    def __init__(self, message: str, data_kind: str, version: str | None = None):
        super().__init__(message)
        self.data_kind = data_kind
        self.version = version


class StoreCorrupt(StoreError):
    pass


class StoreReplaced(StoreError):
    """The handle a query ran on was closed because a newer build of the file was opened
    (another session or process rebuilt the store): run again on the new one."""


class StoreBusy(StoreError):
    """Another process is building or changing the store right now."""


class StoreUnwritable(StoreError):
    """The store's folder cannot be written (read-only, full, or not ours)."""


_DAMAGE_MARKS = ("corrupt database file", "checksum", "could not read enough bytes",
                 "the file is not a valid duckdb database", "io error")


def _is_damage(exc: BaseException) -> bool:
    """Whether DuckDB's error is about the file itself (a damaged block, a cut-short
    file), not about the query: then it is the store that needs attention, and blaming a
    query file's line would send the reader to the wrong place."""
    text = str(exc).lower()
    return (type(exc).__name__ in ("IOException", "SerializationException")
            or any(mark in text for mark in _DAMAGE_MARKS))


def damaged(path: Path, exc: BaseException) -> StoreCorrupt:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StoreCorrupt(f"{path} is damaged: DuckDB could not read part of the file "
                        f"({detail}).")


class QueryFailed(Exception):
    """DuckDB refused or failed a query; `detail` is DuckDB's own message.

    `kind` is DuckDB's error class ("BinderException", "ConversionException", ...): errors
    found before the query reads any row (parser, binder, catalog) name only columns and
    functions, while errors raised while rows are read can quote a record's value."""

    def __init__(self, detail: str, kind: str = ""):
        super().__init__(detail)
        self.detail = detail
        self.kind = kind

    @property
    def before_reading_rows(self) -> bool:
        return self.kind in ("ParserException", "BinderException", "CatalogException")


class QueryTimeout(QueryFailed):
    pass


class QueryOutOfMemory(QueryFailed):
    """The query needed more than the store's memory limit (settings.query_memory_limit)."""


@dataclass(frozen=True)
class Result:
    frame: pl.DataFrame
    truncated: bool
    """True when the query returned more rows than the cap and was cut."""


@dataclass(frozen=True)
class StoreSignature:
    """Identifies one build of the store file; caches key on it so a rebuilt or
    re-imported store is never answered from an older build's cache."""

    path: str
    inode: int
    mtime_ns: int


def signature(path: Path) -> StoreSignature:
    try:
        st = Path(path).stat()
    except FileNotFoundError as exc:  # moved aside or being rebuilt by another session
        raise StoreMissing(f"No database at {path}.") from exc
    return StoreSignature(str(Path(path).resolve()), st.st_ino, st.st_mtime_ns)


_open_stores: weakref.WeakSet[Store] = weakref.WeakSet()
_open_lock = threading.Lock()


def _close_older_builds(sig: StoreSignature) -> None:
    """Close handles on earlier builds of the same file.

    DuckDB shares one database instance per path within a process, so while any handle
    on the old build is open, a new connection to the swapped-in file would be handed
    the old instance and show the old data.
    """
    for other in list(_open_stores):
        if other.signature.path == sig.path and other.signature != sig:
            other.close()
            _open_stores.discard(other)


def _limits() -> dict[str, Any]:
    """Memory and thread limits from settings, the same for every handle in the process:
    DuckDB refuses a second connection to a file with a different configuration. No
    temporary directory, so a large query is refused instead of spilling records to disk."""
    from service_insights import settings

    cfg = settings.get()
    return {"memory_limit": cfg.query_memory_limit, "threads": cfg.query_threads,
            "temp_directory": ""}


def read_only_config() -> dict[str, Any]:
    """The configuration every read-only handle on a store opens with (a second handle on
    the same file in this process must match it exactly)."""
    return {**_READ_ONLY_CONFIG, **_limits()}


class _Watchdog:
    """One thread that interrupts each query still running at its deadline.

    A threading.Timer per query started and stopped an OS thread for every chart (about
    a millisecond each, and under twenty sessions hundreds of short-lived threads
    competing for the GIL); one watcher over a heap of deadlines does the same job."""

    def __init__(self):
        self._cv = threading.Condition()
        self._heap: list[list] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, interrupt: Callable[[], None]) -> list:
        entry = [deadline, next(self._order), interrupt]
        with self._cv:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="si-query-watchdog",
                                                daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._cv.notify()
        return entry

    def done(self, entry: list) -> None:
        with self._cv:
            entry[2] = None  # finished: dropped when it reaches the top of the heap

    def _run(self) -> None:
        with self._cv:
            while True:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cv.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                interrupt = heapq.heappop(self._heap)[2]
                with contextlib.suppress(Exception):  # a cursor closed meanwhile
                    interrupt()


_WATCHDOG = _Watchdog()


class Store:
    """A read-only handle on the store file, safe to share across threads, with the
    memory and thread limits of settings (a runaway query is refused, not the machine
    starved)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.closed = False
        self.service_count: int | None = None
        """How many services the build holds (results.service_count fills it)."""
        self._functions: set[str] = set()
        if not self.path.exists():
            raise StoreMissing(f"No database at {self.path}.")
        self.signature = signature(self.path)
        with _open_lock:
            _close_older_builds(self.signature)
            _open_stores.add(self)
        try:
            self._con = duckdb.connect(str(self.path), read_only=True,
                                       config=read_only_config())
        except duckdb.Error as exc:
            raise StoreCorrupt(
                f"{self.path} could not be opened as a DuckDB database: {exc}") from exc
        try:
            self.meta = self._read_meta()
        except duckdb.Error as exc:
            self._con.close()
            if _is_damage(exc):
                raise damaged(self.path, exc) from exc
            raise StoreCorrupt(
                f"{self.path} is a DuckDB file but not a Service Insights store: {exc}"
            ) from exc
        if self.meta.get("schema_version") != SCHEMA_VERSION:
            self._con.close()
            raise StoreOutdated(
                f"{self.path} has schema version {self.meta.get('schema_version')!r}; "
                f"this version of the dashboard needs {SCHEMA_VERSION!r}.",
                self.meta.get("data_kind", ""), self.meta.get("schema_version"))

    def _read_meta(self) -> dict[str, str]:
        cur = self._con.cursor()
        try:
            rows = cur.execute("select key, value from store.meta").fetchall()
        finally:
            cur.close()
        return dict(rows)

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = 20.0,
        max_rows: int = 50_000,
    ) -> Result:
        """Run one SELECT on a fresh cursor, stopped after `timeout_s`, cut at `max_rows`."""
        try:
            cur = self._con.cursor()
        except duckdb.Error as exc:
            if self.closed:
                raise StoreReplaced(f"{self.path} was replaced before this query ran.") from exc
            raise QueryFailed(str(exc), type(exc).__name__) from exc
        started = time.monotonic()
        watch = _WATCHDOG.watch(started + timeout_s, cur.interrupt)
        try:
            # execute + fetchmany binds the query once and stops at the row cap; the
            # relation API's limit() and pl() cost about 6 ms a query more, which is
            # most of a small chart's time.
            cur.execute(sql, dict(params or {}))
            if cur.description is None:
                raise QueryFailed("the statement returned no rows (only SELECT is allowed)")
            columns = [d[0] for d in cur.description]
            rows = cur.fetchmany(max_rows + 1)
            frame = pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)
        except duckdb.InterruptException as exc:
            raise QueryTimeout(
                f"stopped after {time.monotonic() - started:.1f} s (limit {timeout_s:g} s)"
            ) from exc
        except duckdb.OutOfMemoryException as exc:
            limit = _limits()["memory_limit"]
            raise QueryOutOfMemory(f"the query needed more than the memory limit ({limit})",
                                   type(exc).__name__) from exc
        except duckdb.Error as exc:
            if self.closed:
                raise StoreReplaced(f"{self.path} was replaced while this query ran.") from exc
            if _is_damage(exc):
                # Not a QueryFailed: no query file is to blame, and no caller may swallow
                # it as one chart's failure.
                raise damaged(self.path, exc) from exc
            raise QueryFailed(str(exc), type(exc).__name__) from exc
        finally:
            _WATCHDOG.done(watch)
            cur.close()
        truncated = frame.height > max_rows
        return Result(frame.head(max_rows) if truncated else frame, truncated)

    def scalar_function(self, name: str, fn: Callable[..., Any], params: list[str],
                        returns: str) -> None:
        """Make a Python function (Arrow arrays in, an Arrow array out) callable in this
        store's queries. DuckDB keeps it for the life of the database instance, which every
        handle on the file in this process shares, so registering it again is a no-op."""
        if name in self._functions:
            return
        with _open_lock:
            try:
                self._con.create_function(name, fn, [duckdb.sqltype(p) for p in params],
                                          duckdb.sqltype(returns), type="arrow",
                                          side_effects=False)
            except duckdb.CatalogException as exc:
                if "already exists" not in str(exc):
                    raise
        self._functions.add(name)

    def close(self) -> None:
        self.closed = True
        self._con.close()


def statement_types(sql: str) -> list[str]:
    """The kinds of statement in `sql` ("SELECT", "INSERT", ...), parsed by DuckDB itself."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryFailed(str(exc)) from exc
    return [s.type.name for s in statements]


@functools.cache
def relation_columns(schema_sql: str) -> dict[str, tuple[str, ...]]:
    """The columns of each relation queries read (the views in schema `main`), from the
    schema DDL itself, so the workbench checks a query against the store's real shape."""
    con = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        con.execute(schema_sql)
        rows = con.execute("select table_name, column_name from duckdb_columns() "
                           "where schema_name = 'main' and not internal "
                           "order by table_name, column_index"
                           ).fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return {t: tuple(c) for t, c in out.items()}


@functools.cache
def aggregate_functions() -> frozenset[str]:
    """Every aggregate function DuckDB knows, by name, as DuckDB itself lists them: a
    query checker cannot be fooled by an aggregate its parser does not recognise."""
    con = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        rows = con.execute("select distinct lower(function_name) from duckdb_functions() "
                           "where function_type = 'aggregate'").fetchall()
    finally:
        con.close()
    return frozenset(r[0] for r in rows)


@dataclass(frozen=True)
class TableRef:
    """A relation a statement reads, as DuckDB's own parser sees it."""

    kind: str
    """BASE_TABLE (a named table or view, or a file DuckDB would scan by its name),
    TABLE_FUNCTION or SHOW_REF (DESCRIBE/SUMMARIZE)."""
    name: str
    schema: str
    catalog: str
    offset: int | None
    """Character offset in the SQL text, when DuckDB gives one."""


def table_refs(sql: str) -> tuple[list[TableRef], set[str]]:
    """The relations `sql` reads and the CTE names it defines, from DuckDB's parser
    (json_serialize_sql): a second reading, beside sqlglot's, of what a query names."""
    con = duckdb.connect(":memory:", config={"enable_external_access": False,
                                             "autoload_known_extensions": False})
    try:
        raw = con.execute("select json_serialize_sql($q)", {"q": sql}).fetchone()[0]
    except duckdb.Error as exc:
        raise QueryFailed(str(exc), type(exc).__name__) from exc
    finally:
        con.close()
    tree = json.loads(raw)
    if tree.get("error"):
        raise QueryFailed(str(tree.get("error_message") or "the SQL does not parse"),
                          "ParserException")
    refs: list[TableRef] = []
    ctes: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind in ("BASE_TABLE", "TABLE_FUNCTION", "SHOW_REF"):
            function = node.get("function") or {}
            name = node.get("table_name") or function.get("function_name") or kind.lower()
            location = node.get("query_location")
            refs.append(TableRef(kind, str(name), node.get("schema_name") or "",
                                 node.get("catalog_name") or "",
                                 location if isinstance(location, int)
                                 and location < len(sql) else None))
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            ctes.update(str(e.get("key", "")).lower() for e in cte_map.get("map", []))
        for value in node.values():
            walk(value)

    walk(tree.get("statements", []))
    return refs, ctes


class Writer:
    """A read-write connection on a store file being built or rewritten; only
    `build_store` and `rewrite_store` make one, on a file no reader has open."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._con.execute(sql, dict(params) if params else None)

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        return self._con.sql(sql, params=dict(params or {})).pl()

    def append(self, table: str, frame: pl.DataFrame) -> None:
        """Insert a frame by column name into `table` (a fixed name from our own code)."""
        name = f"incoming_{uuid.uuid4().hex}"
        self._con.register(name, frame.to_arrow())
        try:
            self._con.execute(f"insert into {table} by name select * from {name}")
        finally:
            self._con.unregister(name)


DERIVE_SQL = """
create or replace table store.marac_sequence as
with days as (
    select referral_id, marac_area, client_key, meeting_date,
           row_number() over (
               partition by marac_area, client_key, meeting_date
               order by (source = 'marac_file') desc, referral_id
           ) > 1 as same_day_duplicate
    from store.marac_referrals
),
area_start as (
    select marac_area, least(min(meeting_date), (
               select min(c.referral_date) from store.cases c
               join store.services s using (service_id)
               where s.area_code = r.marac_area)) as data_from
    from store.marac_referrals r
    group by marac_area
),
heard as (
    select d.*,
           max(d.meeting_date) over (
               partition by d.marac_area, d.client_key order by d.meeting_date
               range between unbounded preceding and interval 1 day preceding
           ) as previous_meeting_date,
           date_trunc('month', a.data_from) + interval 12 month as lookback_complete_from
    from days d join area_start a using (marac_area)
)
select referral_id, previous_meeting_date, same_day_duplicate,
       cast(lookback_complete_from as date) as lookback_complete_from
from heard
"""
"""Derived tables recomputed after every write, so queries read them instead of working
them out again on every chart (see store.marac_sequence in data/schema.sql).

Schema 7, the SafeLives definition kept honest: a repeat is a referral within 12 months
(365 days) of the same victim's previous referral *at the same Marac* (partitioned by
marac_area and client_key, across every agency that referred to that Marac); referrals
for one victim on one day at one Marac are one referral (every row but the first is a
`same_day_duplicate`, left out of the views), and the previous referral is the latest on
an earlier day. `lookback_complete_from` is the first day on which the store holds a full
12 months of that Marac area's data before it: its data begins in the month of the
earlier of its first referral and the first case at a service in the area (a case's
referral is made after the case; stores are loaded by whole months, so a first record on
the 3rd does not flag a year starting on the 1st). A referral before it may be a repeat
of one the store never saw (catalogue/lookback.py flags those rates)."""


LINKS_SQL = """
create or replace table store.marac_links as
with linked as (
    select referral_id, linkage_key, marac_area, service_id, meeting_date
    from store.marac_referrals where linkage_key is not null
),
other_marac as (
    select distinct r.referral_id
    from linked r join linked o on o.linkage_key = r.linkage_key
    where o.marac_area <> r.marac_area
      and o.meeting_date between r.meeting_date - interval 365 day and r.meeting_date
),
other_service as (
    select distinct r.referral_id
    from linked r join store.cases c on c.linkage_key = r.linkage_key
    where c.service_id is distinct from r.service_id
      and c.referral_date <= r.meeting_date
      and coalesce(c.exit_date, r.meeting_date) >= r.meeting_date - interval 365 day
)
select referral_id,
       case when perpetrator_key is not null then max(meeting_date) over (
           partition by marac_area, client_key, perpetrator_key order by meeting_date
           range between unbounded preceding and interval 1 day preceding) end
           as previous_same_perpetrator_date,
       case when linkage_key is not null
            then referral_id in (select referral_id from other_marac) end
           as heard_at_other_marac_12m,
       case when linkage_key is not null
            then referral_id in (select referral_id from other_service) end
           as supported_by_other_service_12m
from store.marac_referrals
"""
"""The perpetrator refinement and the linkage flags (store.marac_links in data/schema.sql),
kept apart from DERIVE_SQL so the repeat definition itself is changed in one place. A
same-perpetrator repeat needs an earlier meeting day (same-day referrals are one event);
"another Marac" is another marac_area within the 365 days up to the meeting, "another
service" a case at any service but the referral's own, open at some point in those days."""


RETURNS_SQL = """
create or replace table store.case_returns as
with linked as (
    -- Each Marac referral heard for a client of a service, from that service's case
    -- (source 'case') or linked to it by a Marac file's service_client_ref.
    select r.service_id, coalesce(r.service_client_key, r.client_key) as client_key,
           r.meeting_date
    from store.marac_referrals r
    where r.service_id is not null
      and (r.service_client_key is not null or r.source = 'case')
),
returns as (
    select distinct c.case_id
    from store.cases c
    join linked m on m.service_id = c.service_id and m.client_key = c.client_key
    join store.cases earlier
      on earlier.service_id = c.service_id and earlier.client_key = c.client_key
     and earlier.case_id <> c.case_id and earlier.referral_date < c.referral_date
    where m.meeting_date < c.referral_date
      and c.referral_date <= m.meeting_date + interval 365 day
      and m.meeting_date >= earlier.referral_date
),
referred_back as (
    select distinct c.case_id
    from store.cases c
    join linked m on m.service_id = c.service_id and m.client_key = c.client_key
    where m.meeting_date between c.referral_date and c.referral_date + interval 365 day
)
select c.case_id,
       true as returned_after_marac,
       coalesce(c.marac_referred, false)
           or c.case_id in (select case_id from referred_back) as referred_back_to_marac
from store.cases c
where c.case_id in (select case_id from returns)
"""
"""Issue 14's missed re-referral (store.case_returns in data/schema.sql): a case that is
a client's return to the same service (a new case, after an earlier one) within 365 days
after a Marac meeting that heard a referral from that service for that client, and
whether the new case was referred to Marac again (marked on the case, or a linked
referral heard within 365 days of its referral date). Worked out once per write, as the
repeat is, so a query counts plain flags."""


MATERIALIZE_SQL = """
delete from store.cases_keyed;
insert into store.cases_keyed
select * from store.cases_derived order by referral_date, service_id;
delete from store.marac_referrals_keyed;
insert into store.marac_referrals_keyed
select * from store.marac_referrals_derived order by meeting_date, marac_area;
"""
"""Schema 8: the rows charts read, written once per build or import from the views that
define every derived column (store.cases_derived and store.marac_referrals_derived in
data/schema.sql), so no chart joins or formats them again. Date order, because every
chart filters on a period: DuckDB then skips the row groups outside it. At 1M cases this
adds about 5 s to a build or import and 40 MB to the file, and takes the whole catalogue's
DuckDB time for one service from 3.1 s to 0.8 s."""


def derive(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DERIVE_SQL)
    con.execute(LINKS_SQL)
    con.execute(RETURNS_SQL)
    con.execute(MATERIALIZE_SQL)  # last: it reads the three tables above


def _remove_with_wal(tmp: Path) -> None:
    """A half-written copy and its write-ahead log, after a build or change ends. Never
    raises: an error here (a folder that turned read-only) must not hide the error that
    ended the build."""
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        with contextlib.suppress(OSError):
            leftover.unlink(missing_ok=True)


def unwritable(path: Path, exc: BaseException) -> StoreUnwritable:
    reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
    return StoreUnwritable(
        f"The folder {Path(path).parent} cannot be written ({reason}), so the store "
        f"{Path(path).name} cannot be built or changed there: make the folder writable for "
        "the account that runs Service Insights, or point SI_DB_PATH at a writable one.")


def kind_path(path: Path) -> Path:
    """A note beside the store of what it holds ("synthetic" or "real"), so that a store
    too damaged to open is still known for what it held: only a synthetic sample may be
    rebuilt in its place; real records are restored from a backup."""
    path = Path(path)
    return path.with_name(path.name + ".kind")


def known_kind(path: Path) -> str | None:
    """"synthetic" or "real" from the store itself, else from the note beside it; None
    when neither says (then it must be treated as holding real records)."""
    path = Path(path)
    with contextlib.suppress(StoreError, OSError):
        kind = read_meta(path).get("data_kind")
        if kind:
            return kind
    with contextlib.suppress(OSError):
        kind = kind_path(path).read_text().strip()
        return kind if kind in ("synthetic", "real") else None
    return None


def build_store(path: Path, schema_sql: str, load: Callable[[Writer], None], *,
                wait: bool = True, if_missing: bool = False,
                replace_broken: StoreSignature | None = None) -> Path:
    """Build a complete store in a new file, then swap it in with one rename.

    Readers keep the old file open until they reopen; a failure leaves the old file as it
    was and removes the half-built one. The writers' lock is held throughout, so copies
    left by a killed earlier build or import are removed first (see remove_leftovers).

    With `wait=False`, raises StoreBusy at once when another process is building or
    changing the store (two builds never both run). With `if_missing=True`, a store that
    another session built while this one waited for the lock is kept, not built again.
    A folder that cannot be written raises StoreUnwritable, in one sentence.

    With `replace_broken` (the signature of a file found broken), that file is moved aside
    (quarantine) under the lock first, but only if it is still the file there: when
    another session has already replaced it, nothing is moved or built.
    """
    path = Path(path)
    with contextlib.ExitStack() as stack:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            held = stack.enter_context(_exclusive(path, wait=wait))
        except OSError as exc:
            raise unwritable(path, exc) from exc
        if not held:
            raise StoreBusy(f"Another process is building or changing {path} right now.")
        if if_missing and path.exists():
            return path
        if replace_broken is not None:
            try:
                if signature(path) != replace_broken:
                    return path  # already replaced by someone else: keep theirs
            except StoreMissing:
                pass
            else:
                quarantine(path)
        _remove_leftovers_held(path)
        tmp = path.with_name(f"{path.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            try:
                con = duckdb.connect(str(tmp))
            except duckdb.IOException as exc:
                raise unwritable(path, exc) from exc
            try:
                con.execute(schema_sql)
                con.execute(
                    "insert into store.meta values ('schema_version', $v)",
                    {"v": SCHEMA_VERSION})
                load(Writer(con))
                derive(con)
                con.execute("checkpoint")
                row = con.execute(
                    "select value from store.meta where key = 'data_kind'").fetchone()
            finally:
                con.close()
            if row and row[0]:
                _write_kind(path, row[0])
            os.replace(tmp, path)
        finally:
            _remove_with_wal(tmp)
    return path


def _write_kind(path: Path, kind: str) -> None:
    note = kind_path(path)
    tmp = note.with_name(f"{note.name}.{os.getpid()}")
    tmp.write_text(kind + "\n")
    os.replace(tmp, note)


def quarantine(path: Path) -> Path:
    """Move an unreadable store aside (never delete it: it may hold imported records)."""
    path = Path(path)
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, target)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + ".wal"))
    return target


@contextlib.contextmanager
def _exclusive(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """One writer at a time: a second import waits instead of overwriting the first's swap.

    Every build and change holds this lock (on `<store>.lock`) for as long as its
    half-written copy exists, so whoever holds it knows no copy beside the store is still
    being written. The kernel drops the lock when its holder dies, even by SIGKILL, so a
    killed writer never leaves it held. With `wait=False`, yields False at once when
    another process (or thread) holds it.
    """
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_LEFTOVER_KINDS = ("writing", "building")
"""The copies rewrite_store and build_store write beside the store before swapping in."""


def _leftovers(path: Path) -> list[Path]:
    name = glob.escape(path.name)
    return sorted(p for kind in _LEFTOVER_KINDS
                  for p in path.parent.glob(f"{name}.{kind}-*"))


def _remove_leftovers_held(path: Path) -> list[Path]:
    """With the writers' lock held: every copy beside the store is a dead writer's."""
    found = _leftovers(path)
    for leftover in found:
        leftover.unlink(missing_ok=True)
    return found


def remove_leftovers(path: Path) -> list[Path]:
    """Remove the half-written copies a killed import or build left beside the store (each
    holds every record), and their write-ahead logs; returns what was removed.

    A copy is removed only while holding the writers' lock, so one that a live import or
    build is still writing is never touched: when the lock is busy this does nothing (the
    next start or import tidies up). No guess from file age or process ids is needed.
    """
    path = Path(path)
    if not path.parent.is_dir() or not _leftovers(path):
        return []
    try:
        with _exclusive(path, wait=False) as held:
            return _remove_leftovers_held(path) if held else []
    except OSError:  # a read-only folder: nothing could have been written there either
        return []


def rewrite_store(path: Path, change: Callable[[Writer], Any], *,
                  from_version: str = SCHEMA_VERSION) -> Any:
    """Change an existing store all-or-nothing: copy it beside itself, apply `change` in
    one transaction on the copy, then swap the copy in with one rename. The store must be
    at `from_version` (only `upgrade` names an older one).

    Readers (the dashboard holds the file read-only) keep the old build until they
    reopen. Any exception from `change` leaves the store file byte-for-byte as it was.
    """
    path = Path(path)
    if not path.exists():
        raise StoreMissing(f"No database at {path}.")
    with _exclusive(path):
        _remove_leftovers_held(path)
        if path.with_name(path.name + ".wal").exists():
            raise StoreCorrupt(f"{path} has an unfinished write-ahead log beside it; open it "
                               "once read-write to recover it before importing.")
        tmp = path.with_name(f"{path.name}.writing-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            shutil.copyfile(path, tmp)
            con = duckdb.connect(str(tmp))
            con.execute("set enable_progress_bar = false")
            try:
                version = con.execute(
                    "select value from store.meta where key = 'schema_version'").fetchone()
                if version is None or version[0] != from_version:
                    raise StoreCorrupt(
                        f"{path} has schema version {version[0] if version else None!r}; "
                        f"this version of Service Insights needs {SCHEMA_VERSION!r}.")
                con.execute("begin transaction")
                result = change(Writer(con))
                derive(con)
                con.execute("commit")
                con.execute("checkpoint")
            finally:
                con.close()
            os.replace(tmp, path)
        finally:
            _remove_with_wal(tmp)
    return result


UPGRADABLE = ("7",)
"""Schema versions `upgrade` brings to this one in place, keeping every record."""
_SCHEMA_8_OBJECTS = re.compile(
    r"^\s*create\s+(?:view|table)\s+(store\.cases_derived|store\.cases_keyed|main\.cases|"
    r"store\.marac_referrals_derived|store\.marac_referrals_keyed|main\.marac_referrals)\s",
    re.I | re.M)


def upgrade(path: Path, schema_sql: str) -> str:
    """Bring a schema-7 store to schema 8 without re-importing: the keyed views become
    tables written by derive() (MATERIALIZE_SQL); nothing imported changes. The same
    all-or-nothing rewrite as an import. Returns the version the store was at."""
    try:
        Store(path).close()  # opens only at this version; names any other
        return SCHEMA_VERSION
    except StoreOutdated as exc:
        version = exc.version
    if version not in UPGRADABLE:
        raise StoreOutdated(
            f"{path} has schema version {version!r}, which cannot be upgraded in place: "
            "re-import its records with this version (see data/DICTIONARY.md).", "")

    def change(w: Writer) -> None:
        for view in ("main.marac_referrals", "store.marac_referrals_keyed", "main.cases",
                     "store.cases_keyed"):
            w.execute(f"drop view {view}")
        # The new objects' own statements from data/schema.sql, in its order: their
        # definitions are written once, there.
        for statement in duckdb.extract_statements(schema_sql):
            if _SCHEMA_8_OBJECTS.search(statement.query):
                w.execute(statement.query)
        w.execute("update store.meta set value = $v where key = 'schema_version'",
                  {"v": SCHEMA_VERSION})

    try:
        rewrite_store(path, change, from_version=version)  # derive() fills the new tables
    except duckdb.Error as exc:
        raise StoreCorrupt(f"{path} could not be upgraded ({str(exc).splitlines()[0]}); "
                           "it was left as it was.") from exc
    return version


def read_meta(path: Path) -> dict[str, str]:
    """The store's facts (data kind, schema version) without keeping it open."""
    s = Store(path)
    try:
        return dict(s.meta)
    finally:
        s.close()
