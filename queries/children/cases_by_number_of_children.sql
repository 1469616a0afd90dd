/*---
title: Children in clients' households
description: The share of cases referred in the period by how many children live in the client's household, to show how many clients have children.
page: children
order: 10
chart: bar
x: children
y: pct_cases
labels:
  children: Children in the household
  cases: Cases
  all_cases: All cases referred
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: all_cases}
x_order: [None, "1", "2", "3", 4 or more]
x_label: Number of children in the client's household
y_label: Share of cases (%)
params: [period_start, period_end]
notes: Every bar but "None" is a client with children. In Safe's (Exeter) Insights review, 61% of Idva clients had children in or regularly visiting the household.
---*/
with child_counts(children, low_children, high_children) as (
    values
        ('None',      0,    0),
        ('1',         1,    1),
        ('2',         2,    2),
        ('3',         3,    3),
        ('4 or more', 4, null)
),
period_cases as (
    select children_in_household
    from cases
    where referral_date between $period_start and $period_end
),
household_counts as (
    select c.children, c.low_children, count(p.children_in_household) as cases
    from child_counts c
    left join period_cases p
        on p.children_in_household >= c.low_children
       and (c.high_children is null or p.children_in_household <= c.high_children)
    group by c.children, c.low_children
)
select
    children,
    cases,
    cast(sum(cases) over () as bigint)                      as all_cases,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from household_counts
order by low_children
