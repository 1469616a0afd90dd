/*---
title: Length of support, by risk level
description: The median number of days from intake to exit for cases closed in the period, by risk level at intake.
page: overview
order: 46
chart: bar
x: risk
y: median_days_supported
unit: days
labels:
  risk: Risk level at intake
  median_days_supported: Median days supported
  closed_cases: Cases closed in the period
measures:
  median_days_supported: closed_cases
quantiles:
  median_days_supported: 0.5
x_order: [Standard, Medium, High]
x_label: Risk level at intake
y_label: Median days supported (days)
params: [period_start, period_end]
notes: Days from intake to exit, for cases closed (exit date) in the period, whatever their referral date; half were supported for longer, half for less. A median needs 20 closed cases.
---*/
with risk_levels(risk_level, risk, position) as (
    values
        ('standard', 'Standard', 1),
        ('medium',   'Medium',   2),
        ('high',     'High',     3)
),
closed as (
    select *
    from cases
    where exit_date between $period_start and $period_end
      and risk_level is not null
)
select
    r.risk,
    count(c.risk_level) filter (where {{measure.median_days_supported.denominator}})
                                               as closed_cases,
    {{measure.median_days_supported.statistic}} as median_days_supported
from risk_levels r
left join closed c using (risk_level)
group by r.risk, r.position
order by r.position
