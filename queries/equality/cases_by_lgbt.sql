/*---
title: LGBT+ clients
description: The share of cases referred in the period where the client identifies as LGBT+, and how often this was not recorded.
page: equality
order: 50
chart: bar
x: lgbt_answer
y: pct_cases
labels:
  lgbt_answer: Identifies as LGBT+
  cases: Cases
  all_cases: All cases referred
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: all_cases}
x_order: ["Yes", "No", Not recorded]
x_label: Client identifies as LGBT+
y_label: Share of cases (%)
params: [period_start, period_end]
source: Service Insights; national figure from the SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: Shares add up to 100% across all cases referred in the period. Nationally, 1.6% of Marac victims are LGBT+. A large "Not recorded" share makes the figure hard to read; asking every client improves it.
reference:
  points:
    "Yes": lgbt_national
---*/
with answers(lgbt, lgbt_answer, position) as (
    values
        ('yes',          'Yes',          1),
        ('no',           'No',           2),
        ('not_recorded', 'Not recorded', 3)
),
period_cases as (
    select lgbt
    from cases
    where referral_date between $period_start and $period_end
),
answer_counts as (
    select a.lgbt_answer, a.position, count(p.lgbt) as cases
    from answers a
    left join period_cases p using (lgbt)
    group by a.lgbt_answer, a.position
)
select
    lgbt_answer,
    cases,
    cast(sum(cases) over () as bigint)                      as all_cases,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from answer_counts
order by position
