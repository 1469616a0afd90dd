/*---
title: Closed cases with outcomes recorded (exit coverage)
description: Of the cases closed in the period, the share with at least one outcome recorded at exit, by risk level at intake; outcome rates describe only these cases.
page: risk
order: 29
chart: bar
x: risk
y: pct_exit_coverage
labels:
  risk: Risk level at intake
  closed_with_outcomes: Closed cases with any outcome recorded
  closed_cases: Cases closed in the period
  pct_exit_coverage: Share of closed cases with outcomes recorded
counts: [closed_with_outcomes]
rates:
  pct_exit_coverage: {count: closed_with_outcomes, base: closed_cases}
x_order: [Standard, Medium, High]
x_label: Risk level at intake
y_label: Closed cases with outcomes recorded (%)
params: [period_start, period_end]
notes: Cases closed (exit date) in the period with at least one of abuse ceased, risk reduced, feels safer or quality of life improved recorded. Where coverage is low, outcome rates may not describe the service's clients as a whole.
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
    count(c.risk_level) filter (where {{measure.exit_coverage.numerator}})   as closed_with_outcomes,
    count(c.risk_level) filter (where {{measure.exit_coverage.denominator}}) as closed_cases,
    round(100.0 * count(c.risk_level) filter (where {{measure.exit_coverage.numerator}})
          / nullif(count(c.risk_level) filter (where {{measure.exit_coverage.denominator}}), 0), 1) as pct_exit_coverage
from risk_levels r
left join closed c using (risk_level)
group by r.risk, r.position
order by r.position
