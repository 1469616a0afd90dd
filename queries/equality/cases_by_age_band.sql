/*---
title: Age of clients
description: The share of cases referred in the period by the client's age band, to show whether young and older victims are reaching the service.
page: equality
order: 20
chart: bar
x: age_group
y: pct_cases
labels:
  age_group: Age band
  cases: Cases
  all_cases: All cases referred
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: all_cases}
x_order: [16 to 17, 18 to 20, 21 to 30, 31 to 40, 41 to 50, 51 to 60, 61 and over, Not recorded]
x_label: Client's age at referral (years)
y_label: Share of cases (%)
params: [period_start, period_end]
source: Service Insights; national figure from the SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: Shares add up to 100% across all cases referred in the period, including those where age was not recorded. Nationally, 1.3% of Marac victims are aged 16 to 17.
reference:
  points:
    16 to 17: age_16_17_national
---*/
with age_bands(age_band, age_group, position) as (
    values
        ('16-17',        '16 to 17',     1),
        ('18-20',        '18 to 20',     2),
        ('21-30',        '21 to 30',     3),
        ('31-40',        '31 to 40',     4),
        ('41-50',        '41 to 50',     5),
        ('51-60',        '51 to 60',     6),
        ('61+',          '61 and over',  7),
        ('not_recorded', 'Not recorded', 8)
),
period_cases as (
    select age_band
    from cases
    where referral_date between $period_start and $period_end
),
age_counts as (
    select a.age_group, a.position, count(p.age_band) as cases
    from age_bands a
    left join period_cases p using (age_band)
    group by a.age_group, a.position
)
select
    age_group,
    cases,
    cast(sum(cases) over () as bigint)                      as all_cases,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from age_counts
order by position
