/*---
title: Who the abuse came from
description: The share of cases referred in the period by the person's relationship to the client who was abusing them.
page: overview
order: 50
chart: bar
x: perpetrator_relationship
y: pct_cases
labels:
  perpetrator_relationship: Relationship to the client
  cases: Cases
  cases_recorded: Cases with the relationship recorded
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: cases_recorded}
x_order: [Current partner, Ex-partner, Family member, Someone else]
x_label: Person abusing the client
y_label: Share of cases (%)
params: [period_start, period_end]
notes: Among cases referred in the period where the relationship is recorded.
---*/
with relationships(perpetrator, perpetrator_relationship, position) as (
    values
        ('intimate_partner', 'Current partner', 1),
        ('ex_partner',       'Ex-partner',      2),
        ('family_member',    'Family member',   3),
        ('other',            'Someone else',    4)
),
period_cases as (
    select perpetrator
    from cases
    where referral_date between $period_start and $period_end
      and perpetrator is not null
),
relationship_counts as (
    select r.perpetrator_relationship, r.position, count(p.perpetrator) as cases
    from relationships r
    left join period_cases p using (perpetrator)
    group by r.perpetrator_relationship, r.position
)
select
    perpetrator_relationship,
    cases,
    cast(sum(cases) over () as bigint)                      as cases_recorded,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from relationship_counts
order by position
