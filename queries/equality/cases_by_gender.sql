/*---
title: Gender of clients
description: The share of cases referred in the period by the client's gender, to show whether male and non-binary victims are reaching the service.
page: equality
order: 10
chart: bar
x: gender_group
y: pct_cases
labels:
  gender_group: Gender
  cases: Cases
  all_cases: All cases referred
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: all_cases}
x_order: [Female, Male, Non-binary, Not recorded]
x_label: Client's gender
y_label: Share of cases (%)
params: [period_start, period_end]
source: Service Insights; national figure from the SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: Shares add up to 100% across all cases referred in the period, including those where gender was not recorded. Nationally, 6.4% of Marac victims are male.
reference:
  points:
    Male: male_national
---*/
with genders(gender, gender_group, position) as (
    values
        ('female',       'Female',       1),
        ('male',         'Male',         2),
        ('non_binary',   'Non-binary',   3),
        ('not_recorded', 'Not recorded', 4)
),
period_cases as (
    select gender
    from cases
    where referral_date between $period_start and $period_end
),
gender_counts as (
    select g.gender_group, g.position, count(p.gender) as cases
    from genders g
    left join period_cases p using (gender)
    group by g.gender_group, g.position
)
select
    gender_group,
    cases,
    cast(sum(cases) over () as bigint)                      as all_cases,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from gender_counts
order by position
