/*---
title: Wait from referral to first contact, by risk level
description: The median and 90th-percentile number of days from referral to intake (first contact) for clients referred in the period, by risk level at intake.
page: overview
order: 45
chart: grouped_bar
x: risk
series: statistic
y: days_to_intake
unit: days
labels:
  risk: Risk level at intake
  statistic: Statistic
  days_to_intake: Days from referral to first contact
  cases_with_intake: Cases with an intake date
measures:
  days_to_intake: cases_with_intake
quantiles:
  days_to_intake: {by: statistic, values: {Median: 0.5, 90th percentile: 0.9}}
x_order: [Standard, Medium, High]
series_order: [Median, 90th percentile]
x_label: Risk level at intake
y_label: Days from referral to first contact (days)
params: [period_start, period_end]
notes: Half of clients were seen within the median, nine in ten within the 90th percentile. Cases referred in the period with an intake date; a median needs 20 cases and a 90th percentile 100.
---*/
with risk_levels(risk_level, risk, position) as (
    values
        ('standard', 'Standard', 1),
        ('medium',   'Medium',   2),
        ('high',     'High',     3)
),
statistics(statistic, q, stat_position) as (
    values ('Median', 0.5, 1), ('90th percentile', 0.9, 2)
),
period_cases as (
    select *
    from cases
    where referral_date between $period_start and $period_end
      and risk_level is not null
),
by_level as (
    select
        r.risk,
        r.position,
        count(p.risk_level) filter (where {{measure.median_days_to_intake.denominator}})
                                                    as cases_with_intake,
        {{measure.median_days_to_intake.statistic}} as median_days,
        {{measure.p90_days_to_intake.statistic}}    as p90_days
    from risk_levels r
    left join period_cases p using (risk_level)
    group by r.risk, r.position
)
select
    b.risk,
    s.statistic,
    b.cases_with_intake,
    case when s.q = 0.5 then b.median_days else b.p90_days end as days_to_intake
from by_level b
cross join statistics s
order by b.position, s.stat_position
