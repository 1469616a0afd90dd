/*---
title: Clients with complex needs
description: Of the cases referred in the period, the share whose client had a mental health need, a substance use need or a housing need recorded at intake, and the share with any of them.
page: needs
order: 10
chart: bar
x: need
y: pct_cases
labels:
  need: Need
  need_cases: Cases with the need
  recorded_cases: Cases with the need recorded
  pct_cases: Share of cases
counts: [need_cases]
rates:
  pct_cases: {count: need_cases, base: recorded_cases}
x_order: [Mental health, Substance use, Housing, Any complex need]
x_label: Need recorded at intake
y_label: Share of cases with the need (%)
params: [period_start, period_end]
source: Service Insights; SafeLives Insights (53% of refuge clients had mental health needs; recorded mental health disclosure ranges from under 10% to over 60% between services)
notes: "Each bar's base leaves out cases where that need was not recorded (blank). Any complex need is a mental health, substance use or housing need; its base is the cases with at least one of the three recorded. A share far below other services' may mean needs are not being asked about or recorded at intake, not that clients have none."
---*/
with period_cases as (
    select mental_health_need, substance_use_need, housing_need, has_complex_needs
    from cases
    where referral_date between $period_start and $period_end
),
need_counts as (
    select 1 as position, 'Mental health' as need,
           count(*) filter (where mental_health_need) as need_cases,
           count(mental_health_need)                  as recorded_cases
    from period_cases
    union all
    select 2, 'Substance use',
           count(*) filter (where substance_use_need),
           count(substance_use_need)
    from period_cases
    union all
    select 3, 'Housing',
           count(*) filter (where housing_need),
           count(housing_need)
    from period_cases
    union all
    select 4, 'Any complex need',
           count(*) filter (where has_complex_needs),
           count(has_complex_needs)
    from period_cases
)
select
    need,
    need_cases,
    recorded_cases,
    round(100.0 * need_cases / nullif(recorded_cases, 0), 1) as pct_cases
from need_counts
order by position
