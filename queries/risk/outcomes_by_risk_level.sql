/*---
title: Outcomes at exit by risk level
description: Of the cases closed in the period, the share where the abuse had stopped, the risk had reduced, the client felt safer and their quality of life had improved, for each risk level at intake.
page: risk
order: 30
chart: grouped_bar
x: outcome
series: risk
y: pct_achieved
labels:
  outcome: Outcome at exit
  risk: Risk level at intake
  achieved_cases: Closed cases with this outcome
  recorded_cases: Closed cases with this outcome recorded
  pct_achieved: Share of closed cases
counts: [achieved_cases]
rates:
  pct_achieved: {count: achieved_cases, base: recorded_cases}
x_order: [Abuse ceased, Risk reduced, Feels safer, Quality of life improved]
series_order: [Standard, Medium, High]
x_label: Outcome at exit
y_label: Share of closed cases with the outcome (%)
params: [period_start, period_end]
notes: Cases are counted in the period in which they closed (exit date), whatever their referral date. Each bar's base is the closed cases at that risk level with that outcome recorded at exit.
---*/
with risk_levels(risk_level, risk, position) as (
    values
        ('standard', 'Standard', 1),
        ('medium',   'Medium',   2),
        ('high',     'High',     3)
),
closed_cases as (
    select risk_level, abuse_ceased, risk_reduced, feels_safer, quality_of_life_improved
    from cases
    where exit_date between $period_start and $period_end
      and risk_level is not null
),
outcomes as (
    select risk_level, 1 as outcome_position, 'Abuse ceased' as outcome, abuse_ceased as achieved
    from closed_cases
    union all
    select risk_level, 2, 'Risk reduced', risk_reduced
    from closed_cases
    union all
    select risk_level, 3, 'Feels safer', feels_safer
    from closed_cases
    union all
    select risk_level, 4, 'Quality of life improved', quality_of_life_improved
    from closed_cases
),
outcome_names as (
    select distinct outcome_position, outcome
    from outcomes
),
outcome_counts as (
    select
        n.outcome,
        n.outcome_position,
        r.risk,
        r.position                                   as risk_position,
        count(o.achieved)                            as recorded_cases,
        count(o.achieved) filter (where o.achieved)  as achieved_cases
    from outcome_names n
    cross join risk_levels r
    left join outcomes o
        on o.outcome = n.outcome and o.risk_level = r.risk_level
    group by n.outcome, n.outcome_position, r.risk, r.position
)
select
    outcome,
    risk,
    achieved_cases,
    recorded_cases,
    round(100.0 * achieved_cases / nullif(recorded_cases, 0), 1) as pct_achieved
from outcome_counts
order by outcome_position, risk_position
