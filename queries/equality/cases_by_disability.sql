/*---
title: Clients with a disability
description: The share of cases referred in the period where the client has a disability, and how often this was not recorded.
page: equality
order: 40
chart: bar
x: disability_answer
y: pct_cases
labels:
  disability_answer: Has a disability
  cases: Cases
  all_cases: All cases referred
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: all_cases}
x_order: ["Yes", "No", Not recorded]
x_label: Client has a disability
y_label: Share of cases (%)
params: [period_start, period_end]
source: Service Insights; national figure from the SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: Shares add up to 100% across all cases referred in the period. Nationally, 10.1% of Marac victims have a disability. A large "Not recorded" share makes the figure hard to read; asking every client improves it.
reference:
  points:
    "Yes": disability_national
---*/
with answers(disability, disability_answer, position) as (
    values
        ('yes',          'Yes',          1),
        ('no',           'No',           2),
        ('not_recorded', 'Not recorded', 3)
),
period_cases as (
    select disability
    from cases
    where referral_date between $period_start and $period_end
),
answer_counts as (
    select a.disability_answer, a.position, count(p.disability) as cases
    from answers a
    left join period_cases p using (disability)
    group by a.disability_answer, a.position
)
select
    disability_answer,
    cases,
    cast(sum(cases) over () as bigint)                      as all_cases,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from answer_counts
order by position
