/*---
title: DASH risk checklist scores
description: The share of cases referred in the period by their DASH risk checklist score, where 14 or more "yes" answers out of 24 means visible high risk.
page: risk
order: 20
chart: bar
x: dash_band
y: pct_cases
labels:
  dash_band: DASH score
  cases: Cases
  assessed_cases: Cases with a DASH score
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: assessed_cases}
x_order: [0-4, 5-9, 10-13, 14-17, 18-24]
x_label: DASH score (number of "yes" answers out of 24)
y_label: Share of cases with a DASH score (%)
params: [period_start, period_end]
notes: Among cases referred in the period where the DASH risk checklist was done. A score of 14 or more (the last two bars) is visible high risk and a reason to refer to Marac.
---*/
with dash_bands(dash_band, low_score, high_score) as (
    values
        ('0-4',    0,  4),
        ('5-9',    5,  9),
        ('10-13', 10, 13),
        ('14-17', 14, 17),
        ('18-24', 18, 24)
),
period_cases as (
    select dash_score
    from cases
    where referral_date between $period_start and $period_end
      and {{measure.high_risk.denominator}}
),
band_counts as (
    select b.dash_band, b.low_score, count(p.dash_score) as cases
    from dash_bands b
    left join period_cases p on p.dash_score between b.low_score and b.high_score
    group by b.dash_band, b.low_score
)
select
    dash_band,
    cases,
    cast(sum(cases) over () as bigint)                      as assessed_cases,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from band_counts
order by low_score
