/*---
title: Headline figures
description: Cases referred in the period, how many were high risk, had children, and were families known to children's social care, and how many Marac referrals were repeats.
page: home
order: 10
chart: kpi
y: [cases, pct_high_risk, pct_with_children, pct_families_known_to_social_care, pct_marac_repeat]
labels:
  cases: Cases referred
  pct_high_risk: High risk (DASH 14+)
  pct_with_children: Clients with children
  pct_families_known_to_social_care: Families known to children's social care
  pct_marac_repeat: Marac repeat rate
counts: [cases]
rates:
  pct_high_risk: {count: high_risk_cases, base: assessed_cases}
  pct_with_children: {count: cases_with_children, base: cases}
  pct_families_known_to_social_care: {count: families_known, base: families_recorded}
  pct_marac_repeat: {count: repeat_referrals, base: marac_referrals_heard}
params: [period_start, period_end]
notes: High risk is a DASH score of 14 or more, among cases with a DASH recorded. Families known to social care are counted among clients with children whose involvement is recorded. A Marac repeat is a referral within 365 days of the same victim's previous one.
measure:
  cases: cases
  pct_high_risk: high_risk
  pct_with_children: with_children
  pct_families_known_to_social_care: known_to_social_care
  pct_marac_repeat: marac_repeats
---*/
with period_cases as (
    select *
    from cases
    where referral_date between $period_start and $period_end
),
case_figures as (
    select
        count(*) filter (where {{measure.cases.numerator}})                   as cases,
        count(*) filter (where {{measure.high_risk.denominator}})             as assessed_cases,
        count(*) filter (where {{measure.high_risk.numerator}})               as high_risk_cases,
        count(*) filter (where {{measure.with_children.numerator}})           as cases_with_children,
        count(*) filter (where {{measure.known_to_social_care.denominator}})  as families_recorded,
        count(*) filter (where {{measure.known_to_social_care.numerator}})    as families_known
    from period_cases
),
marac_figures as (
    select
        count(*) filter (where {{measure.marac_repeats.denominator}}) as marac_referrals_heard,
        count(*) filter (where {{measure.marac_repeats.numerator}})   as repeat_referrals
    from marac_referrals
    where meeting_date between $period_start and $period_end
)
select
    c.*,
    m.*,
    round(100.0 * high_risk_cases / nullif(assessed_cases, 0), 1)        as pct_high_risk,
    round(100.0 * cases_with_children / nullif(cases, 0), 1)             as pct_with_children,
    round(100.0 * families_known / nullif(families_recorded, 0), 1)      as pct_families_known_to_social_care,
    round(100.0 * repeat_referrals / nullif(marac_referrals_heard, 0), 1) as pct_marac_repeat
from case_figures c
cross join marac_figures m
