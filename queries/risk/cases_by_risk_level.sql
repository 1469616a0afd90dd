/*---
title: Risk level at intake
description: The share of cases referred in the period assessed as standard, medium or high risk when the client was taken on.
page: risk
order: 10
chart: bar
x: risk
y: pct_cases
labels:
  risk: Risk level at intake
  cases: Cases
  assessed_cases: Cases with a risk level recorded
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: assessed_cases}
x_order: [Standard, Medium, High]
x_label: Risk level at intake
y_label: Share of cases (%)
params: [period_start, period_end]
notes: Among cases referred in the period with a risk level recorded. The risk level is the practitioner's judgement, so a client can be high risk with a DASH score below 14.
---*/
with risk_levels(risk_level, risk, position) as (
    values
        ('standard', 'Standard', 1),
        ('medium',   'Medium',   2),
        ('high',     'High',     3)
),
period_cases as (
    select risk_level
    from cases
    where referral_date between $period_start and $period_end
      and risk_level is not null
),
risk_counts as (
    select r.risk, r.position, count(p.risk_level) as cases
    from risk_levels r
    left join period_cases p using (risk_level)
    group by r.risk, r.position
)
select
    risk,
    cases,
    cast(sum(cases) over () as bigint)                      as assessed_cases,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from risk_counts
order by position
