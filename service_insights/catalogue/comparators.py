"""What a selection is compared with: the comparator's pool of services, or why none.

Four comparators (issue 15):

- `same_type` (the default): the other services of the selection's type(s). SafeLives
  publishes separate Insights data sets for Idva, outreach, refuge, children and young
  people's and perpetrator services because they are not comparable: a refuge's clients
  differ from an Idva service's in risk and children, so pooling them tells a manager
  nothing about their own practice.
- `all`: every service (the selection included), the dashboard's original benchmark.
- `region`: the other services in the selection's region(s).
- `national`: the national figures in data/reference.yaml, where it has one; no pooled
  benchmark is run.

The comparator is only a different set of services: the same query file runs over it
through the same path (results.run: cell-key perturbation, then suppression), and the
guard against differencing applies to each: fewer than `min_other_services` services in
the pool outside everything the viewer may see, and the comparator is withheld with one
sentence saying why, because the viewer's own figures could otherwise be subtracted from
it to reveal the few services left.
"""

from __future__ import annotations

from dataclasses import dataclass

from service_insights.catalogue.scope import ALL_SERVICES, Scope
from service_insights.store import db

DEFAULT = "same_type"
KINDS: dict[str, str] = {
    "same_type": "Services of the same type",
    "all": "All services",
    "region": "Services in the same region",
    "national": "National figures",
}
"""Each comparator with the name the sidebar and the command line's help show."""

TYPE_NAMES = {"idva": "Idva", "outreach": "outreach", "cyp": "children and young people's",
              "refuge": "refuge", "perpetrator": "perpetrator programme"}


@dataclass(frozen=True)
class Pool:
    """The services a comparator pools for one selection, or why there is none."""

    kind: str
    scope: Scope | None
    """The pooled services as a scope to run the query over; None when withheld."""
    label: str
    """As legends and findings say it: "Other Idva services", "All services"."""
    size: int = 0
    """How many services the pool holds (for a count's average-service benchmark)."""
    note: str = ""
    """One sentence: why there is no comparator figure, when there is none."""

    @property
    def phrase(self) -> str:
        """The label inside a sentence: "at other Idva services", "across all services"."""
        if self.kind == "all":
            return "across " + self.label[0].lower() + self.label[1:]
        if self.kind == "national":
            return "nationally"
        return "at " + self.label[0].lower() + self.label[1:]


def check(kind: str) -> str:
    """The comparator's key, or a plain sentence naming what was typed and the choices."""
    if kind not in KINDS:
        raise ValueError(f"unknown comparator {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def services_register(store: db.Store):
    """Every registered service: id, name, type, area and region, by id. Read once per
    open store, the one read of the register (selection.services_table is its view for
    the filters and sign-in): the register changes only with a new build (an import or
    `services add` swaps in a new file and a new Store), and comparators, sign-in, the
    filters and findings ask on every click."""
    cached = getattr(store, "_services_register", None)
    if cached is None:
        cached = store.query("select service_id, name, service_type, area_code, area_name, "
                             "region from main.services order by service_id").frame
        store._services_register = cached
    return cached


def pool(store: db.Store, scope: Scope, kind: str, min_other: int,
         visible: tuple[str, ...] | None = None) -> Pool:
    """The comparator `kind` for `scope`, withheld (scope None, with a note) when fewer
    than `min_other` of its services lie outside the selection and everything the viewer
    may see (`visible`, None for every service)."""
    kind = check(kind)
    table = services_register(store)
    ids = table["service_id"].to_list()
    if kind == "national":
        return Pool(kind, None, "National figures", note=(
            "National figures are drawn where data/reference.yaml has one for this measure; "
            "there is no pooled comparator."))
    chosen = set(scope.services or ())
    if kind == "all":
        members, label = list(ids), "All services"
    else:
        column = "service_type" if kind == "same_type" else "region"
        mine = sorted({v for s, v in zip(ids, table[column].to_list(), strict=True)
                       if s in chosen})
        members = [s for s, v in zip(ids, table[column].to_list(), strict=True)
                   if v in mine and s not in chosen]
        if kind == "same_type":
            label = f"Other {_joined([TYPE_NAMES.get(t, t) for t in mine])} services"
        else:
            label = f"Other services in {_joined(mine) or 'the region'}"
        label = label[0].upper() + label[1:]
    withheld = _withheld(kind, label, members, chosen | set(visible or ()), min_other,
                         visible)
    if withheld is not None:
        return withheld
    if kind == "all":
        return Pool(kind, ALL_SERVICES, label, len(members))
    areas = sorted({a for s, a in zip(ids, table["area_code"].to_list(), strict=True)
                    if s in set(members)})
    return Pool(kind, Scope(tuple(members), tuple(areas), True, label), label, len(members))


def _withheld(kind: str, label: str, members: list[str], seen: set[str], min_other: int,
              visible: tuple[str, ...] | None) -> Pool | None:
    """The comparator withheld, in one sentence, when fewer than `min_other` of its
    services lie outside what the viewer has (the selection, or every service they can
    see): those could be subtracted from it to recover the rest; or when it has no
    services at all. None when it may show."""
    if members and len([s for s in members if s not in seen]) >= min_other:
        return None
    where = "your selection" if visible is None else "the services you can see"
    return Pool(kind, None, label, note=(
        f"The comparator ({label[0].lower() + label[1:]}) is not shown: fewer than "
        f"{min_other} of its services lie outside {where}, so {where} could be "
        "subtracted from it."))


def area_pool(store: db.Store, scope: Scope, kind: str, min_other: int,
              visible: tuple[str, ...] | None = None) -> Pool:
    """The comparator for a figure about whole Marac areas (Marac volume per 10,000 adult
    females): other Marac areas, never services of a type, because a Marac hears every
    high-risk case in its area whatever service referred it. `same_type` therefore means
    the other Marac areas; `region` the other areas in the selection's region(s); `all`
    every area. The pool runs as whole areas (every referral its Maracs heard), and the
    same minimum of other services applies as for any comparator."""
    kind = check(kind)
    if kind == "national":
        return pool(store, scope, kind, min_other, visible)
    table = services_register(store)
    ids, area_of = table["service_id"].to_list(), table["area_code"].to_list()
    region_of = dict(zip(area_of, table["region"].to_list(), strict=True))
    mine = set(scope.areas or ()) if scope.areas is not None else set(area_of)
    if kind == "all":
        areas, label = sorted(set(area_of)), "All Marac areas"
    elif kind == "region":
        regions = sorted({region_of[a] for a in mine if a in region_of})
        areas = sorted({a for a in area_of if region_of[a] in regions and a not in mine})
        label = f"Other Marac areas in {_joined(regions) or 'the region'}"
    else:
        areas, label = sorted({a for a in area_of if a not in mine}), "Other Marac areas"
    members = [s for s, a in zip(ids, area_of, strict=True) if a in set(areas)]
    withheld = _withheld(kind, label, members if areas else [],
                         set(scope.services or ()) | set(visible or ()), min_other, visible)
    if withheld is not None:
        return withheld
    if kind == "all":
        return Pool(kind, ALL_SERVICES, label, len(members))
    return Pool(kind, Scope(tuple(members), tuple(areas), False, label), label, len(members))
