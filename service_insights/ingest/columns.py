"""The cases import format as data: columns, allowed codes, and the mapping tables that
turn a case-management system's own column names and codings into ours.

Everything an analyst may need to extend (another alias for a column, another way of
writing "yes", another spelling of a code) is a table in this module; the validator
reads them and has no spellings of its own. Allowed codes mirror data/schema.sql.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    """text (a code from `codes`), date, int, bool or ref (an identifier to pseudonymise)."""
    required: bool = False
    codes: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None


YES_NO_NR = ("yes", "no", "not_recorded")

COLUMNS: tuple[Column, ...] = (
    Column("case_ref", "ref", required=True),
    Column("client_ref", "ref", required=True),
    Column("service_id", "text"),  # optional: the service chosen for the import fills it
    Column("referral_date", "date", required=True),
    Column("intake_date", "date"),
    Column("exit_date", "date"),
    Column("referral_source", "text", required=True, codes=(
        "police", "self", "childrens_social_care", "health", "housing", "da_service", "other")),
    Column("age_band", "text", required=True, codes=(
        "16-17", "18-20", "21-30", "31-40", "41-50", "51-60", "61+", "not_recorded")),
    Column("gender", "text", required=True, codes=("female", "male", "non_binary",
                                                   "not_recorded")),
    Column("ethnicity", "text", required=True, codes=(
        "white", "black", "asian", "mixed", "other", "not_recorded")),
    Column("disability", "text", required=True, codes=YES_NO_NR),
    Column("lgbt", "text", required=True, codes=YES_NO_NR),
    Column("dash_score", "int", low=0, high=24),
    Column("risk_level", "text", codes=("standard", "medium", "high")),
    Column("abuse_physical", "bool"),
    Column("abuse_sexual", "bool"),
    Column("abuse_coercive_control", "bool"),
    Column("abuse_stalking", "bool"),
    Column("abuse_economic", "bool"),
    Column("perpetrator", "text", codes=("intimate_partner", "ex_partner", "family_member",
                                         "other")),
    Column("abuse_months", "int", low=0, high=1200),
    Column("children_in_household", "int", required=True, low=0, high=20),
    Column("youngest_child_age_band", "text", codes=("0-4", "5-10", "11-15", "16-17")),
    Column("social_care", "text", codes=(
        "none", "early_help", "child_in_need", "child_protection", "looked_after", "unknown")),
    Column("marac_referred", "bool", required=True),
    Column("marac_meeting_date", "date"),
    Column("marac_referring_agency", "text", codes=(
        "police", "idva", "childrens_social_care", "health", "housing", "probation", "other")),
    Column("whole_family_support", "bool"),
    Column("abuse_ceased", "bool"),
    Column("risk_reduced", "bool"),
    Column("feels_safer", "bool"),
    Column("quality_of_life_improved", "bool"),
    # Complex needs at intake (schema 7); blank: not recorded.
    Column("mental_health_need", "bool"),
    Column("substance_use_need", "bool"),
    Column("housing_need", "bool"),
)
BY_NAME = {c.name: c for c in COLUMNS}

OUTCOMES = ("abuse_ceased", "risk_reduced", "feels_safer", "quality_of_life_improved")
"""Recorded at exit: blank while a case is open."""

DATE_OF_BIRTH = "date_of_birth"
"""Read only to work out `age_band` at referral, then dropped with the other identifiers."""

EARLIEST_DATE = "1990-01-01"
"""Case and Marac dates before this are taken as a mistyped year."""

# ---------------------------------------------------------------- column names

ALIASES: dict[str, tuple[str, ...]] = {
    # Names are compared after `normalise_name`: lower case, runs of anything but letters
    # and digits turned into "_" ("No. of children" -> "no_of_children").
    "case_ref": ("case_reference", "case_id", "case_no", "case_number", "case", "episode_id",
                 "episode_ref", "referral_ref", "referral_id"),
    "client_ref": ("client_reference", "client_id", "client_no", "client_number", "client",
                   "person_id", "person_ref", "victim_id", "victim_ref", "service_user_id",
                   "service_user_ref"),
    "service_id": ("service", "service_code"),
    "referral_date": ("date_of_referral", "date_referred", "referral_received",
                      "referral_received_date", "date_referral_received", "referred_on"),
    "intake_date": ("date_of_intake", "start_date", "support_start_date", "date_taken_on",
                    "engagement_date", "date_engaged"),
    "exit_date": ("date_of_exit", "closure_date", "close_date", "closed_date", "date_closed",
                  "end_date", "case_closed"),
    "referral_source": ("source_of_referral", "referred_by", "referrer", "referral_agency"),
    "age_band": ("age_group", "age_range", "age"),
    "gender": ("sex", "gender_identity"),
    "ethnicity": ("ethnic_group", "ethnic_origin", "ethnicity_group"),
    "disability": ("disabled", "has_disability", "disability_status"),
    "lgbt": ("lgbt_plus", "lgbtq", "lgbtq_plus", "lgbtqi", "sexuality_lgbt"),
    "dash_score": ("dash", "dash_total", "dash_risk_score", "dash_ric_score", "ric_score",
                   "risk_score"),
    "risk_level": ("risk", "assessed_risk", "risk_assessment", "professional_judgement"),
    "abuse_physical": ("physical_abuse", "physical"),
    "abuse_sexual": ("sexual_abuse", "sexual"),
    "abuse_coercive_control": ("coercive_control", "coercive_controlling_behaviour",
                               "controlling_behaviour"),
    "abuse_stalking": ("stalking", "stalking_harassment"),
    "abuse_economic": ("economic_abuse", "financial_abuse", "economic"),
    "perpetrator": ("perpetrator_relationship", "relationship_to_perpetrator",
                    "relationship_to_abuser", "abuser", "abuser_relationship"),
    "abuse_months": ("months_of_abuse", "length_of_abuse_months", "abuse_duration_months",
                     "duration_of_abuse_months", "months_abused"),
    "children_in_household": ("no_of_children", "number_of_children", "num_children",
                              "children", "children_count", "number_of_children_in_household",
                              "no_of_children_in_household", "children_in_hh"),
    "youngest_child_age_band": ("youngest_child_age", "age_of_youngest_child",
                                "youngest_child"),
    "social_care": ("childrens_social_care", "csc_involvement", "social_care_involvement",
                    "childrens_social_care_involvement", "csc"),
    "marac_referred": ("marac", "referred_to_marac", "marac_referral"),
    "marac_meeting_date": ("marac_date", "date_heard_at_marac", "marac_heard_date"),
    "marac_referring_agency": ("marac_referrer", "marac_referred_by",
                               "marac_referral_agency"),
    "whole_family_support": ("whole_family", "family_support", "whole_family_approach"),
    "abuse_ceased": ("abuse_stopped", "all_abuse_ceased"),
    "risk_reduced": ("reduced_risk", "risk_reduced_at_exit"),
    "feels_safer": ("feel_safer", "feeling_safer", "client_feels_safer"),
    "quality_of_life_improved": ("quality_of_life", "improved_quality_of_life", "qol_improved"),
    "mental_health_need": ("mental_health", "mental_health_needs", "mental_health_issues",
                           "mh_need"),
    "substance_use_need": ("substance_use", "substance_misuse", "substance_misuse_need",
                           "drugs_or_alcohol", "drug_alcohol_use"),
    "housing_need": ("housing_needs", "housing_issues", "housing_support_need"),
    DATE_OF_BIRTH: ("dob", "d_o_b", "birth_date", "date_of_birth_client", "client_dob"),
}


def normalise_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower().replace("'", "")).strip("_")


NAME_MAP: dict[str, str] = {
    **{normalise_name(alias): target for target, aliases in ALIASES.items() for alias in aliases},
    **{c.name: c.name for c in COLUMNS},
    DATE_OF_BIRTH: DATE_OF_BIRTH,
}

IDENTIFYING = re.compile(
    r"(^|_)("
    r"name|names|forename|forenames|surname|firstname|lastname|fullname|initials|alias"
    r"|dob|d_o_b|birth|born"
    r"|address|addr|street|house|flat|town|city|postcode|post_code|postal|zip"
    r"|nhs|ni|nino|national_insurance"
    r"|phone|telephone|tel|mobile|landline|email|e_mail"
    r"|note|notes|comment|comments|narrative|description|details|free_text|summary"
    r")($|_)"
)
"""Direct identifiers, found by column name (after `normalise_name`). Such a column is
dropped before anything is validated or stored, whatever it holds; a date of birth is
first turned into `age_band`. A column matching this and also a name in the format
(`date_of_birth`) is used as documented, then dropped."""

# ---------------------------------------------------------------- codings

BOOLEAN = {
    "yes": True, "y": True, "true": True, "t": True, "1": True,
    "no": False, "n": False, "false": False, "f": False, "0": False,
}
"""Yes/no fields, compared in lower case after trimming."""

YES_NO_NR_CODES = {
    **{k: ("yes" if v else "no") for k, v in BOOLEAN.items()},
    "unknown": "not_recorded", "not_known": "not_recorded", "nr": "not_recorded",
    "prefer_not_to_say": "not_recorded", "not_asked": "not_recorded",
}

CODES: dict[str, dict[str, str]] = {
    # Text codes are compared after `normalise_code` (lower case, spaces and hyphens to
    # "_", apostrophes dropped); age bands after dropping spaces only.
    "referral_source": {
        "self_referral": "self", "client": "self", "victim": "self",
        "csc": "childrens_social_care", "social_care": "childrens_social_care",
        "social_services": "childrens_social_care", "childrens_services": "childrens_social_care",
        "gp": "health", "hospital": "health", "nhs": "health", "mental_health": "health",
        "housing_provider": "housing", "local_authority_housing": "housing",
        "domestic_abuse_service": "da_service", "da_services": "da_service",
        "refuge": "da_service", "idva": "da_service",
    },
    "age_band": {"61plus": "61+", "61andover": "61+", "61orover": "61+", "over60": "61+",
                 "notrecorded": "not_recorded", "unknown": "not_recorded"},
    "gender": {"f": "female", "woman": "female", "w": "female", "m": "male", "man": "male",
               "nonbinary": "non_binary", "non_binary": "non_binary", "nb": "non_binary",
               "unknown": "not_recorded", "not_known": "not_recorded",
               "prefer_not_to_say": "not_recorded"},
    "ethnicity": {"white_british": "white", "white_other": "white", "white_irish": "white",
                  "black_british": "black", "asian_british": "asian",
                  "mixed_multiple": "mixed", "other_ethnic_group": "other",
                  "unknown": "not_recorded", "not_known": "not_recorded",
                  "prefer_not_to_say": "not_recorded"},
    "disability": YES_NO_NR_CODES,
    "lgbt": YES_NO_NR_CODES,
    "risk_level": {"standard_risk": "standard", "low": "standard", "med": "medium",
                   "medium_risk": "medium", "high_risk": "high"},
    "perpetrator": {"partner": "intimate_partner", "current_partner": "intimate_partner",
                    "husband": "intimate_partner", "wife": "intimate_partner",
                    "ex": "ex_partner", "former_partner": "ex_partner",
                    "expartner": "ex_partner", "family": "family_member",
                    "relative": "family_member"},
    "youngest_child_age_band": {"0_4": "0-4", "5_10": "5-10", "11_15": "11-15",
                                "16_17": "16-17"},
    "social_care": {"no": "none", "not_known": "unknown", "eh": "early_help",
                    "cin": "child_in_need", "cp": "child_protection",
                    "lac": "looked_after", "cla": "looked_after",
                    "child_looked_after": "looked_after"},
    "marac_referring_agency": {"csc": "childrens_social_care",
                               "social_care": "childrens_social_care",
                               "gp": "health", "nhs": "health", "probation_service": "probation"},
}

AGE_BANDS = (  # (lowest age, band): age at referral worked out from a date of birth
    (16, "16-17"), (18, "18-20"), (21, "21-30"), (31, "31-40"), (41, "41-50"),
    (51, "51-60"), (61, "61+"))

OPTIONAL_FOR_QUALITY = tuple(c.name for c in COLUMNS if not c.required
                             and c.name not in ("service_id",))
"""Fields whose blank share the data-quality summary reports."""

# ---------------------------------------------------------------- the Marac file

MARAC_AGENCIES = ("police", "idva", "childrens_social_care", "health", "housing", "probation",
                  "other")

MARAC_COLUMNS: tuple[Column, ...] = (
    Column("client_ref", "ref", required=True),
    Column("marac_area", "text", required=True),  # checked against the registered areas
    Column("meeting_date", "date", required=True),
    Column("referring_agency", "text", required=True, codes=MARAC_AGENCIES),
    Column("children_in_household", "int", required=True, low=0, high=20),
    Column("dash_score", "int", low=0, high=24),
    Column("perpetrator_ref", "ref"),
    Column("service_id", "text"),  # with service_client_ref: the case that led to it
    Column("service_client_ref", "ref"),
)
"""One row per referral heard, as a Marac coordinator holds it (DESIGN.md's pinned format).
`client_ref` is the Marac's own victim reference, pseudonymised per Marac area."""

MARAC_ALIASES: dict[str, tuple[str, ...]] = {
    "client_ref": ("client_reference", "client_id", "marac_ref", "marac_reference",
                   "marac_client_ref", "marac_id", "victim_ref", "victim_id",
                   "victim_reference", "person_ref", "person_id"),
    "marac_area": ("marac", "area", "area_code", "local_authority", "local_authority_code",
                   "la_code", "marac_area_code"),
    "meeting_date": ("marac_date", "marac_meeting_date", "date_of_marac", "date_heard",
                     "heard_on", "meeting", "date_of_meeting"),
    "referring_agency": ("referrer", "referred_by", "referral_agency", "agency",
                         "marac_referring_agency", "referring_organisation"),
    "children_in_household": ALIASES["children_in_household"],
    "dash_score": ALIASES["dash_score"],
    "perpetrator_ref": ("perpetrator_id", "perpetrator_reference", "perp_ref", "perp_id",
                        "alleged_perpetrator_ref", "alleged_perpetrator_id"),
    "service_id": ALIASES["service_id"],
    "service_client_ref": ("service_client_id", "service_client_reference",
                           "idva_client_ref", "case_client_ref"),
}

MARAC_NAME_MAP: dict[str, str] = {
    **{normalise_name(alias): target for target, aliases in MARAC_ALIASES.items()
       for alias in aliases},
    **{c.name: c.name for c in MARAC_COLUMNS},
}

CODES["referring_agency"] = CODES["marac_referring_agency"]

# ---------------------------------------------------------------- the linkage key

NHS_NUMBER = "nhs_number"
SURNAME = "surname"
LINKAGE_ALIASES: dict[str, tuple[str, ...]] = {
    NHS_NUMBER: ("nhs_no", "nhs", "nhs_num", "nhs_number_client"),
    SURNAME: ("last_name", "lastname", "family_name", "client_surname"),
    DATE_OF_BIRTH: ALIASES[DATE_OF_BIRTH],
}
"""Read only when the deployment turns the linkage key on (SI_LINKAGE_KEY=1): the
identifier is normalised, turned into one keyed pseudonym and dropped. With the key off
these columns are dropped unread, as IDENTIFYING says."""

LINKAGE_NAME_MAP: dict[str, str] = {
    **{normalise_name(a): t for t, aliases in LINKAGE_ALIASES.items() for a in aliases},
    **{t: t for t in LINKAGE_ALIASES},
}


@dataclass(frozen=True)
class Format:
    """One import format: its columns and the names a file may give them."""

    kind: str
    columns: tuple[Column, ...]
    name_map: dict[str, str]

    @property
    def by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    def names(self, linkage: bool) -> dict[str, str]:
        """File column names (normalised) -> format names, with the linkage identifiers
        when the linkage key is on."""
        return {**self.name_map, **LINKAGE_NAME_MAP} if linkage else self.name_map


CASES = Format("cases", COLUMNS, NAME_MAP)
MARAC = Format("marac", MARAC_COLUMNS, MARAC_NAME_MAP)
