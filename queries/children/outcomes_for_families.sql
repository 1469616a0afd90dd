/*---
title: Outcomes at exit for families, by whole-family support
description: Of the clients with children whose cases closed in the period, the share where the abuse had stopped, the risk had reduced, the client felt safer and their quality of life had improved, for families offered whole-family support and those not offered it.
page: children
order: 50
chart: grouped_bar
x: outcome
series: support
y: pct_achieved
labels:
  outcome: Outcome at exit
  support: Whole-family support
  achieved_cases: Closed family cases with this outcome
  recorded_cases: Closed family cases with this outcome recorded
  pct_achieved: Share of closed family cases
counts: [achieved_cases]
rates:
  pct_achieved: {count: achieved_cases, base: recorded_cases}
x_order: [Abuse ceased, Risk reduced, Feels safer, Quality of life improved]
series_order: [Offered whole-family support, Not offered]
x_label: Outcome at exit
y_label: Share of closed family cases with the outcome (%)
params: [period_start, period_end]
notes: Clients with at least one child in the household whose case closed (exit date) in the period and whose record says whether whole-family support was offered. Families offered support may differ from the others in other ways too (risk, social-care involvement), so a gap here suggests, rather than proves, that the support made the difference.
---*/
with support_groups(offered, support, position) as (
    values
        (true,  'Offered whole-family support', 1),
        (false, 'Not offered',                  2)
),
closed_families as (
    select whole_family_support, abuse_ceased, risk_reduced, feels_safer,
           quality_of_life_improved
    from cases
    where exit_date between $period_start and $period_end
      and {{measure.with_children.numerator}}
      and whole_family_support is not null
),
outcomes as (
    select whole_family_support, 1 as outcome_position, 'Abuse ceased' as outcome,
           abuse_ceased as achieved
    from closed_families
    union all
    select whole_family_support, 2, 'Risk reduced', risk_reduced
    from closed_families
    union all
    select whole_family_support, 3, 'Feels safer', feels_safer
    from closed_families
    union all
    select whole_family_support, 4, 'Quality of life improved', quality_of_life_improved
    from closed_families
),
outcome_names(outcome_position, outcome) as (
    values (1, 'Abuse ceased'), (2, 'Risk reduced'), (3, 'Feels safer'),
           (4, 'Quality of life improved')
),
outcome_counts as (
    select
        n.outcome,
        n.outcome_position,
        g.support,
        g.position                                   as support_position,
        count(o.achieved)                            as recorded_cases,
        count(o.achieved) filter (where o.achieved)  as achieved_cases
    from outcome_names n
    cross join support_groups g
    left join outcomes o
        on o.outcome = n.outcome and o.whole_family_support = g.offered
    group by n.outcome, n.outcome_position, g.support, g.position
)
select
    outcome,
    support,
    achieved_cases,
    recorded_cases,
    round(100.0 * achieved_cases / nullif(recorded_cases, 0), 1) as pct_achieved
from outcome_counts
order by outcome_position, support_position
