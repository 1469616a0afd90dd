/*---
title: Who the service refers to Marac, against national shares
description: Among cases referred to Marac in the period, the share of victims who are male, LGBT+, disabled, Black, Asian or racially minoritised, or aged 16 to 17, to compare with the national Marac figures.
page: marac
order: 40
chart: bar
x: victim_group
y: pct_cases
labels:
  victim_group: Victim group
  group_cases: Marac cases in the group
  recorded_cases: Marac cases with this recorded
  pct_cases: Share of Marac cases
counts: [group_cases]
rates:
  pct_cases: {count: group_cases, base: recorded_cases}
x_order: [Male, LGBT+, Disabled, "Black, Asian or minoritised", Aged 16 to 17]
x_label: Victim group
y_label: Share of cases referred to Marac (%)
params: [period_start, period_end]
source: Service Insights; national figures from the SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: "Cases referred in the period that were referred to Marac; each bar's base leaves out cases where that characteristic was not recorded. National shares of Marac cases: male 6.4%, LGBT+ 1.6%, disabled 10.1%, Black, Asian or racially minoritised 14.1%, aged 16 to 17 1.3%. A share well below the national one suggests these victims are not being identified or referred."
reference:
  points:
    Male: male_national
    LGBT+: lgbt_national
    Disabled: disability_national
    "Black, Asian or minoritised": minoritised_national
    Aged 16 to 17: age_16_17_national
---*/
with marac_cases as (
    select *
    from cases
    where referral_date between $period_start and $period_end
      and marac_referred
),
group_counts as (
    select 1 as position, 'Male' as victim_group,
           count(*) filter (where {{measure.male_clients.numerator}})   as group_cases,
           count(*) filter (where {{measure.male_clients.denominator}}) as recorded_cases
    from marac_cases
    union all
    select 2, 'LGBT+',
           count(*) filter (where {{measure.lgbt_clients.numerator}}),
           count(*) filter (where {{measure.lgbt_clients.denominator}})
    from marac_cases
    union all
    select 3, 'Disabled',
           count(*) filter (where {{measure.disabled_clients.numerator}}),
           count(*) filter (where {{measure.disabled_clients.denominator}})
    from marac_cases
    union all
    select 4, 'Black, Asian or minoritised',
           count(*) filter (where {{measure.minoritised_clients.numerator}}),
           count(*) filter (where {{measure.minoritised_clients.denominator}})
    from marac_cases
    union all
    select 5, 'Aged 16 to 17',
           count(*) filter (where age_band = '16-17'),
           count(*) filter (where age_band <> 'not_recorded')
    from marac_cases
)
select
    victim_group,
    group_cases,
    recorded_cases,
    round(100.0 * group_cases / nullif(recorded_cases, 0), 1) as pct_cases
from group_counts
order by position
