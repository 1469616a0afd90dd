/*---
title: Ethnicity of clients
description: The share of cases referred in the period by the client's ethnic group, to show whether Black, Asian and racially minoritised victims are reaching the service.
page: equality
order: 30
chart: bar
x: ethnic_group
y: pct_cases
labels:
  ethnic_group: Ethnic group
  cases: Cases
  all_cases: All cases referred
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: all_cases}
x_order: [White, Black, Asian, Mixed, Other ethnic group, Not recorded]
x_label: Client's ethnic group
y_label: Share of cases (%)
params: [period_start, period_end]
source: Service Insights; national figure from the SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: Shares add up to 100% across all cases referred in the period, including those where ethnicity was not recorded. Black, Asian, Mixed and Other ethnic groups together are the racially minoritised victims; nationally they are 14.1% of Marac victims.
---*/
with ethnic_groups(ethnicity, ethnic_group, position) as (
    values
        ('white',        'White',              1),
        ('black',        'Black',              2),
        ('asian',        'Asian',              3),
        ('mixed',        'Mixed',              4),
        ('other',        'Other ethnic group', 5),
        ('not_recorded', 'Not recorded',       6)
),
period_cases as (
    select ethnicity
    from cases
    where referral_date between $period_start and $period_end
),
ethnicity_counts as (
    select e.ethnic_group, e.position, count(p.ethnicity) as cases
    from ethnic_groups e
    left join period_cases p using (ethnicity)
    group by e.ethnic_group, e.position
)
select
    ethnic_group,
    cases,
    cast(sum(cases) over () as bigint)                      as all_cases,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from ethnicity_counts
order by position
