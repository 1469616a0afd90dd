/*---
title: Typical length of abuse before getting help, by risk level
description: The middle (median) number of months clients had experienced abuse before this referral, for each risk level at intake.
page: overview
order: 40
chart: bar
x: risk
y: median_abuse_months
unit: months
labels:
  risk: Risk level at intake
  median_abuse_months: Median months of abuse before referral
  cases_with_duration: Cases with the length of abuse recorded
measures:
  median_abuse_months: cases_with_duration
x_order: [Standard, Medium, High]
x_label: Risk level at intake
y_label: Median months of abuse before referral
params: [period_start, period_end]
notes: Among cases referred in the period with a risk level and the length of abuse recorded. Half of clients had experienced abuse for longer than the median, half for less.
---*/
with risk_levels(risk_level, risk, position) as (
    values
        ('standard', 'Standard', 1),
        ('medium',   'Medium',   2),
        ('high',     'High',     3)
),
period_cases as (
    select risk_level, abuse_months
    from cases
    where referral_date between $period_start and $period_end
      and {{measure.long_abuse.denominator}}
      and risk_level is not null
)
select
    r.risk,
    count(p.abuse_months)                     as cases_with_duration,
    round(median(p.abuse_months), 1)          as median_abuse_months
from risk_levels r
left join period_cases p using (risk_level)
group by r.risk, r.position
order by r.position
