/*---
title: How long clients experienced abuse before getting help
description: The share of clients by how many months they had experienced abuse before this referral, to show whether victims are reached early.
page: overview
order: 30
chart: bar
x: duration
y: pct_cases
labels:
  duration: Months of abuse before referral
  cases: Cases
  cases_with_duration: Cases with the length of abuse recorded
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: cases_with_duration}
x_order: [Under 12, 12 to 35, 36 to 59, 60 to 119, 120 or more]
x_label: Months of abuse before the referral
y_label: Share of cases (%)
params: [period_start, period_end]
notes: Among cases referred in the period where the length of abuse before the referral is known. 120 months is ten years; long durations suggest victims are not being reached early.
---*/
with durations(duration, low_months, high_months) as (
    values
        ('Under 12',     0,   11),
        ('12 to 35',    12,   35),
        ('36 to 59',    36,   59),
        ('60 to 119',   60,  119),
        ('120 or more', 120, null)
),
period_cases as (
    select abuse_months
    from cases
    where referral_date between $period_start and $period_end
      and {{measure.long_abuse.denominator}}
),
duration_counts as (
    select d.duration, d.low_months, count(p.abuse_months) as cases
    from durations d
    left join period_cases p
        on p.abuse_months >= d.low_months
       and (d.high_months is null or p.abuse_months <= d.high_months)
    group by d.duration, d.low_months
)
select
    duration,
    cases,
    cast(sum(cases) over () as bigint)                      as cases_with_duration,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from duration_counts
order by low_months
