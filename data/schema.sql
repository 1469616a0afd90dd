-- Service Insights store: tables in schema `store`, derived views in `main`.
--
-- Analysts' queries read the views (cases, marac_referrals, services, areas); the data
-- layer shadows those names with scoped CTEs, so a query never repeats filter logic.
-- Derived fields (financial year, high risk, Marac repeat, ...) are computed here, in
-- SQL, never typed in by a service or drawn at random by the generator.
-- See data/DICTIONARY.md for what each field means.

create schema if not exists store;

create table store.meta (
    key   varchar primary key,
    value varchar not null
);

create table store.areas (
    area_code               varchar primary key,
    name                    varchar not null,
    region                  varchar not null,
    adult_female_population integer not null check (adult_female_population > 0)
);

create table store.services (
    service_id   varchar primary key,
    name         varchar not null,
    service_type varchar not null
        check (service_type in ('idva', 'outreach', 'cyp', 'refuge', 'perpetrator')),
    area_code    varchar not null,
    -- Schema 7: staffing registered for the service (full-time equivalents; blank when
    -- not given), set against the SafeLives capacity guidance on the Marac page.
    idva_fte     decimal(6, 2) check (idva_fte >= 0),
    admin_fte    decimal(6, 2) check (admin_fte >= 0)
);

create table store.cases (
    case_id                  varchar primary key,
    client_key               varchar not null,
    service_id               varchar not null,
    referral_date            date not null,
    intake_date              date,
    exit_date                date,
    referral_source          varchar not null check (referral_source in
        ('police', 'self', 'childrens_social_care', 'health', 'housing', 'da_service', 'other')),
    age_band                 varchar not null check (age_band in
        ('16-17', '18-20', '21-30', '31-40', '41-50', '51-60', '61+', 'not_recorded')),
    gender                   varchar not null
        check (gender in ('female', 'male', 'non_binary', 'not_recorded')),
    ethnicity                varchar not null check (ethnicity in
        ('white', 'black', 'asian', 'mixed', 'other', 'not_recorded')),
    disability               varchar not null check (disability in ('yes', 'no', 'not_recorded')),
    lgbt                     varchar not null check (lgbt in ('yes', 'no', 'not_recorded')),
    dash_score               tinyint check (dash_score between 0 and 24),
    risk_level               varchar check (risk_level in ('standard', 'medium', 'high')),
    abuse_physical           boolean,
    abuse_sexual             boolean,
    abuse_coercive_control   boolean,
    abuse_stalking           boolean,
    abuse_economic           boolean,
    perpetrator              varchar check (perpetrator in
        ('intimate_partner', 'ex_partner', 'family_member', 'other')),
    abuse_months             integer check (abuse_months >= 0),
    children_in_household    tinyint not null check (children_in_household between 0 and 20),
    youngest_child_age_band  varchar check (youngest_child_age_band in
        ('0-4', '5-10', '11-15', '16-17')),
    social_care              varchar check (social_care in ('none', 'early_help', 'child_in_need',
        'child_protection', 'looked_after', 'unknown')),
    marac_referred           boolean not null,
    whole_family_support     boolean,
    abuse_ceased             boolean,
    risk_reduced             boolean,
    feels_safer              boolean,
    quality_of_life_improved boolean,
    -- Schema 7, complex needs recorded at intake (blank: not recorded): the client has a
    -- mental health need, a substance use (drugs or alcohol) need, a housing need.
    mental_health_need       boolean,
    substance_use_need       boolean,
    housing_need             boolean,
    -- The optional linkage key (schema 6; null unless the deployment turns it on): a keyed
    -- pseudonym of a normalised NHS number, or surname and date of birth, the same for one
    -- person at every service and Marac. Never shown; only store.marac_links reads it.
    linkage_key              varchar,
    -- The cell key method's record key (0 to 255, drawn at random when the case is
    -- imported or generated): never shown, exported or readable by a query file; only
    -- the cell-key pass reads it, through store.cases_keyed.
    record_key               smallint not null check (record_key between 0 and 255),
    check (intake_date is null or intake_date >= referral_date),
    check (exit_date is null or (intake_date is not null and exit_date >= intake_date)),
    check ((children_in_household = 0) = (social_care is null)),
    check (children_in_household > 0 or youngest_child_age_band is null)
);

create table store.marac_referrals (
    referral_id           varchar primary key,
    client_key            varchar not null,
    marac_area            varchar not null,
    service_id            varchar,  -- the service whose case led to the referral, if any
    meeting_date          date not null,
    referring_agency      varchar not null check (referring_agency in ('police', 'idva',
        'childrens_social_care', 'health', 'housing', 'probation', 'other')),
    children_in_household tinyint check (children_in_household between 0 and 20),
    record_key            smallint not null check (record_key between 0 and 255),
    -- Schema 6. Where the referral came from: a case row's Marac columns (`case`, keyed by
    -- its case, replaced with it) or a Marac coordinator's file (`marac_file`, never
    -- touched by a cases import).
    source                varchar not null default 'case'
        check (source in ('case', 'marac_file')),
    -- The linked case's client_key at service_id (a case row's own client_key, or from a
    -- Marac file's service_client_ref), so a referral can be matched to its case.
    service_client_key    varchar,
    -- DASH score given with the referral (Marac files only; blank if not given).
    dash_score            tinyint check (dash_score between 0 and 24),
    -- Keyed pseudonym of the Marac's perpetrator reference (Marac files only).
    perpetrator_key       varchar,
    -- The optional linkage key, as on store.cases.
    linkage_key           varchar
);

-- Each referral's previous referral for the same victim, worked out from the dates by
-- db.derive() after every build and import (the same lag() the view once ran on every
-- query, which cost 100 ms at 1M cases and 2 s at 10M): repeats stay derived from dates,
-- never typed in.
create table store.marac_sequence (
    referral_id           varchar primary key,
    previous_meeting_date date,
    -- Schema 7: the second and later referral for one victim at one Marac on one day
    -- (the views leave it out: same-day referrals are one referral), and the first day
    -- with a full 365 days of this Marac area's referrals in the store before it.
    same_day_duplicate     boolean,
    lookback_complete_from date
);

-- Derived by db.derive_links() after every build and import (schema 6): the SafeLives
-- refinement of a repeat (same victim and same perpetrator) and, where the linkage key is
-- on, whether the victim was also heard at another Marac or supported by another service
-- in the 12 months before the meeting. Read only as flags, in aggregate.
create table store.marac_links (
    referral_id                    varchar primary key,
    previous_same_perpetrator_date date,
    heard_at_other_marac_12m       boolean,
    supported_by_other_service_12m boolean
);

-- Derived by db.RETURNS_SQL after every build and import (schema 7): the cases that are a
-- client's return to the same service within 365 days after a Marac referral from it,
-- and whether the return was referred back to Marac. Cases not listed are not returns.
create table store.case_returns (
    case_id                varchar primary key,
    returned_after_marac   boolean not null,
    referred_back_to_marac boolean not null
);

create table store.import_log (
    import_id     varchar primary key,
    imported_at   timestamp not null,
    imported_by   varchar not null,
    file_name     varchar not null,
    file_sha256   varchar not null,
    kind          varchar not null,
    service_id    varchar,           -- the service the records were imported for (null:
                                     -- several, an area-wide file; or a Marac file)
    rows_in_file  integer not null,
    rows_added    integer not null,  -- cases new to the store
    rows_replaced integer not null   -- cases that replaced the same case from an earlier import
);

-- Financial years run April to March: 31 March 2025 is in 2024-25, 1 April 2025 in 2025-26.
create macro store.fy_start_year(d) as year(d) - (month(d) < 4)::integer;
create macro store.fy_label(y) as
    y::varchar || '-' || lpad(((y + 1) % 100)::varchar, 2, '0');
create macro store.fy_quarter(d) as ((month(d) + 8) % 12) // 3 + 1;

-- The Wilson score 95% interval for k of n, in percent (as service_insights/stats.py):
-- finding rules test the interval, not only the point estimate. Null without a base.
-- At k = 0 and k = n the interval's end is exactly 0 or 100 (computed, it came out a
-- hair inside, so 100% read as below a comparator at 100%).
create macro main.wilson_lower(k, n) as case when n > 0 and k <= 0 then 0.0
    when n > 0 then 100 * greatest(0.0,
    (k::double / n + 3.841459 / (2 * n)
     - 1.959964 * sqrt((k::double / n) * (1 - k::double / n) / n + 3.841459 / (4.0 * n * n)))
    / (1 + 3.841459 / n)) end;
create macro main.wilson_upper(k, n) as case when n > 0 and k >= n then 100.0
    when n > 0 then 100 * least(1.0,
    (k::double / n + 3.841459 / (2 * n)
     + 1.959964 * sqrt((k::double / n) * (1 - k::double / n) / n + 3.841459 / (4.0 * n * n)))
    / (1 + 3.841459 / n)) end;

create view main.areas as select * from store.areas;

create view main.services as
select s.service_id, s.name, s.service_type, s.area_code,
       a.name as area_name, a.region, s.idva_fte, s.admin_fte
from store.services s
left join store.areas a using (area_code);

-- The keyed relations carry record_key for the cell-key pass (catalogue/keying.py); the
-- views analysts' queries read (main.cases, main.marac_referrals) leave it out.
--
-- Schema 8: each derived column is defined once, here, in a *_derived view, and
-- db.derive() writes the view's rows into the table store.*_keyed after every build and
-- import (in date order), so a chart scans one table. Reading the views directly joined
-- three tables and formatted financial-year labels on every row of every chart: 4 times
-- the DuckDB time over the whole catalogue at 1M cases, 10 times on the Marac charts
-- (benchmarks/run.py --only queries).
create view store.cases_derived as
select
    c.*,
    s.area_code,
    store.fy_label(store.fy_start_year(c.referral_date))            as financial_year,
    store.fy_quarter(c.referral_date)                               as fy_quarter,
    store.fy_label(store.fy_start_year(c.referral_date))
        || ' Q' || store.fy_quarter(c.referral_date)::varchar       as quarter_label,
    date_trunc('quarter', c.referral_date)::date                    as quarter_start,
    c.children_in_household > 0                                     as has_children,
    c.dash_score >= 14                                              as is_high_risk,
    case
        when c.children_in_household = 0 or c.social_care = 'unknown' then null
        else c.social_care <> 'none'
    end                                                             as is_known_to_social_care,
    c.exit_date is not null                                         as is_closed,
    c.gender = 'male'                                               as is_male,
    c.ethnicity in ('black', 'asian', 'mixed', 'other')             as is_minoritised,
    -- Schema 7: any of the three complex needs; blank only when none is recorded.
    case when c.mental_health_need or c.substance_use_need or c.housing_need then true
         when c.mental_health_need is null and c.substance_use_need is null
              and c.housing_need is null then null
         else false end                                             as has_complex_needs,
    case when c.intake_date is not null and c.exit_date is not null
         then date_diff('day', c.intake_date, c.exit_date) end      as days_supported,
    -- Schema 7 (issue 15), each defined here once: the wait from referral to first
    -- contact (intake), and whether a closed case has any outcome recorded at exit.
    date_diff('day', c.referral_date, c.intake_date)                as days_to_intake,
    c.exit_date is not null and (c.abuse_ceased is not null or c.risk_reduced is not null
        or c.feels_safer is not null or c.quality_of_life_improved is not null)
                                                                    as has_exit_outcomes,
    -- Schema 7, missed Marac re-referrals (db.RETURNS_SQL): a return to the service within
    -- 12 months of a Marac referral, and, of those at high risk (DASH 14+), one not
    -- referred back to Marac.
    coalesce(cr.returned_after_marac, false)                        as is_return_after_marac,
    coalesce(cr.returned_after_marac and not cr.referred_back_to_marac
             and c.dash_score >= 14, false)                         as is_missed_rereferral
from store.cases c
left join store.services s using (service_id)
left join store.case_returns cr using (case_id);

create table store.cases_keyed as select * from store.cases_derived limit 0;

create view main.cases as select * exclude (record_key, linkage_key) from store.cases_keyed;

-- A repeat is a referral for the same victim (client_key) at the same Marac within 365
-- days of their previous referral (SafeLives). Later referrals are new referrals.
-- Referrals for one victim at one Marac on one day are one referral (schema 7): only the
-- first is in the view.
create view store.marac_referrals_derived as
with ordered as (
    select r.*, s.* exclude (referral_id), l.* exclude (referral_id)
    from store.marac_referrals r
    left join store.marac_sequence s using (referral_id)
    left join store.marac_links l using (referral_id)
)
select
    o.*,
    date_diff('day', o.previous_meeting_date, o.meeting_date)       as days_since_previous,
    coalesce(date_diff('day', o.previous_meeting_date, o.meeting_date) <= 365, false)
                                                                    as is_repeat,
    o.referring_agency <> 'police'                                  as is_partner_agency,
    -- SafeLives' refinement (schema 6): a repeat for the same victim and perpetrator.
    o.perpetrator_key is not null                                   as has_perpetrator,
    coalesce(date_diff('day', o.previous_same_perpetrator_date, o.meeting_date) <= 365, false)
                                                                    as is_repeat_same_perpetrator,
    o.linkage_key is not null                                       as has_linkage_key,
    -- Schema 7: the store holds the full 12 months before this meeting for its Marac
    -- area, so whether it is a repeat is known (catalogue/lookback.py).
    coalesce(o.meeting_date >= o.lookback_complete_from, false)     as has_full_lookback,
    store.fy_label(store.fy_start_year(o.meeting_date))             as financial_year,
    store.fy_quarter(o.meeting_date)                                as fy_quarter,
    store.fy_label(store.fy_start_year(o.meeting_date))
        || ' Q' || store.fy_quarter(o.meeting_date)::varchar        as quarter_label,
    date_trunc('quarter', o.meeting_date)::date                     as quarter_start
from ordered o
where not coalesce(o.same_day_duplicate, false);

create table store.marac_referrals_keyed as
select * from store.marac_referrals_derived limit 0;

create view main.marac_referrals as
select * exclude (record_key, perpetrator_key, linkage_key, same_day_duplicate)
from store.marac_referrals_keyed;
