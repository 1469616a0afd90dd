/*---
title: Engagement and outcomes, with and without complex needs
description: For clients with a complex need (mental health, substance use or housing) and for the service's other clients, the share of cases referred in the period that engaged (an intake date), and of the cases closed in the period the share with each outcome at exit.
page: needs
order: 20
chart: grouped_bar
x: measure
series: clients
y: pct_achieved
labels:
  measure: Engagement or outcome
  clients: Clients
  achieved_cases: Cases engaged or with the outcome
  recorded_cases: Cases with it recorded
  pct_achieved: Share of cases
counts: [achieved_cases]
rates:
  pct_achieved: {count: achieved_cases, base: recorded_cases}
x_order: [Engaged, Abuse ceased, Risk reduced, Feels safer, Quality of life improved]
series_order: [With complex needs, No complex needs]
x_label: Engagement (cases referred) and outcomes at exit (cases closed)
y_label: Share of cases (%)
params: [period_start, period_end]
notes: "Engaged: the case has an intake date, of the cases referred in the period. Outcomes: of the cases closed in the period (exit date) with that outcome recorded. Complex needs: a mental health, substance use or housing need recorded at intake; cases with none of the three recorded are left out. The near-miss review found a victim's substance use and mental health needs were known to services that shared little: a gap here suggests those clients need a different offer."
---*/
with groups(has_complex_needs, clients, position) as (
    values (true, 'With complex needs', 1), (false, 'No complex needs', 2)
),
known as (
    select has_complex_needs, referral_date, intake_date, exit_date,
           abuse_ceased, risk_reduced, feels_safer, quality_of_life_improved
    from cases
    where has_complex_needs is not null
),
measures as (
    select has_complex_needs, 1 as measure_position, 'Engaged' as measure,
           intake_date is not null as achieved
    from known where referral_date between $period_start and $period_end
    union all
    select has_complex_needs, 2, 'Abuse ceased', abuse_ceased
    from known where exit_date between $period_start and $period_end
    union all
    select has_complex_needs, 3, 'Risk reduced', risk_reduced
    from known where exit_date between $period_start and $period_end
    union all
    select has_complex_needs, 4, 'Feels safer', feels_safer
    from known where exit_date between $period_start and $period_end
    union all
    select has_complex_needs, 5, 'Quality of life improved', quality_of_life_improved
    from known where exit_date between $period_start and $period_end
),
names(measure_position, measure) as (
    values (1, 'Engaged'), (2, 'Abuse ceased'), (3, 'Risk reduced'), (4, 'Feels safer'),
           (5, 'Quality of life improved')
),
measure_counts as (
    select n.measure, n.measure_position, g.clients, g.position,
           count(m.achieved)                           as recorded_cases,
           count(m.achieved) filter (where m.achieved) as achieved_cases
    from names n
    cross join groups g
    left join measures m
        on m.measure_position = n.measure_position and m.has_complex_needs = g.has_complex_needs
    group by n.measure, n.measure_position, g.clients, g.position
)
select
    measure,
    clients,
    achieved_cases,
    recorded_cases,
    round(100.0 * achieved_cases / nullif(recorded_cases, 0), 1) as pct_achieved
from measure_counts
order by measure_position, position
