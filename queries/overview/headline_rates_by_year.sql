/*---
title: Headline measures by financial year
description: The share of cases at high risk, with children, families known to children's social care, families known to social care offered whole-family support, closed cases with outcomes recorded, and Marac repeats and partner-agency referrals, for each of the five financial years to the end of the period.
page: overview
order: 90
chart: line
x: financial_year
series: measure
y: pct
unit: "%"
labels:
  financial_year: Financial year
  measure: Measure
  n: Cases or referrals with the characteristic
  base: Cases or referrals it is a share of
  pct: Share (%)
  polarity: Which direction is better
rates:
  pct: {count: n, base: base}
series_order: [High risk (DASH 14+), Clients with children, Families known to children's social care, Families known to social care offered whole-family support, Closed cases with outcomes recorded, Marac repeat rate, Marac referrals from partner agencies]
x_label: Financial year (April to March)
y_label: Share (%)
params: [period_end]
notes: "Annual figures for the five financial years ending with the one the period ends in (the last may be part of a year). Each year's recent-trend marker on Home uses these protected counts (Fingertips' method: chi-squared test for trend on the last five years). Definitions as on Home: high risk is a DASH of 14 or more among cases with a DASH; definitions as in data/measures.yaml (the whole-family offer among families known to social care with the offer recorded); outcomes coverage is of cases closed in the year; Marac figures are by meeting date."
---*/
with years as (
    select make_date(year($period_end) - (month($period_end) < 4)::integer - 4, 4, 1) as first_day
),
case_years as (
    select
        financial_year,
        count(*) filter (where {{measure.with_children.denominator}})                 as cases,
        count(*) filter (where {{measure.high_risk.denominator}})                     as assessed_cases,
        count(*) filter (where {{measure.high_risk.numerator}})                       as high_risk_cases,
        count(*) filter (where {{measure.with_children.numerator}})                   as cases_with_children,
        count(*) filter (where {{measure.known_to_social_care.denominator}})          as families_recorded,
        count(*) filter (where {{measure.known_to_social_care.numerator}})            as families_known,
        count(*) filter (where {{measure.whole_family_support.denominator}})          as families_offer_recorded,
        count(*) filter (where {{measure.whole_family_support.numerator}})            as families_offered
    from cases, years
    where referral_date between years.first_day and $period_end
    group by financial_year
),
exit_years as (
    select
        (year(exit_date) - (month(exit_date) < 4)::integer)::varchar || '-'
            || lpad(((year(exit_date) - (month(exit_date) < 4)::integer + 1) % 100)::varchar, 2, '0')
                                                                    as financial_year,
        count(*) filter (where {{measure.exit_coverage.denominator}})                 as closed_cases,
        count(*) filter (where {{measure.exit_coverage.numerator}})                   as closed_with_outcomes
    from cases, years
    where exit_date between years.first_day and $period_end
    group by 1
),
marac_years as (
    select
        financial_year,
        count(*) filter (where {{measure.marac_repeats.denominator}})       as referrals,
        count(*) filter (where {{measure.marac_repeats.numerator}})         as repeats,
        count(*) filter (where {{measure.partner_referrals.numerator}})     as partner_referrals
    from marac_referrals, years
    where meeting_date between years.first_day and $period_end
    group by financial_year
),
rows_ as (
    select financial_year, 1 as position, {{measure.high_risk.label}} as measure, 'none' as polarity,
           high_risk_cases as n, assessed_cases as base from case_years
    union all
    select financial_year, 2, {{measure.with_children.label}}, 'none', cases_with_children, cases
    from case_years
    union all
    select financial_year, 3, {{measure.known_to_social_care.label}}, 'none',
           families_known, families_recorded from case_years
    union all
    select financial_year, 4, {{measure.whole_family_support.label}}, 'higher',
           families_offered, families_offer_recorded from case_years
    union all
    select financial_year, 5, {{measure.exit_coverage.label}}, 'higher',
           closed_with_outcomes, closed_cases from exit_years
    union all
    select financial_year, 6, {{measure.marac_repeats.label}}, 'none', repeats, referrals from marac_years
    union all
    select financial_year, 7, {{measure.partner_referrals.label}}, 'higher',
           partner_referrals, referrals from marac_years
)
select
    financial_year,
    measure,
    polarity,
    n,
    base,
    round(100.0 * n / nullif(base, 0), 1) as pct
from rows_
order by position, financial_year
