/*---
title: Abuse stopped by type of abuse
description: Of the cases closed in the period, the share where the abuse had stopped by the time support ended, for clients who were experiencing each type of abuse when they were taken on.
page: risk
order: 40
chart: bar
x: abuse_type
y: pct_ceased
labels:
  abuse_type: Type of abuse at intake
  ceased_cases: Closed cases where the abuse stopped
  recorded_cases: Closed cases with this type of abuse and the outcome recorded
  pct_ceased: Abuse stopped
counts: [ceased_cases]
rates:
  pct_ceased: {count: ceased_cases, base: recorded_cases}
x_order: [Physical, Sexual, Coercive control, Stalking, Economic]
x_label: Type of abuse the client was experiencing at intake
y_label: Share of closed cases where the abuse stopped (%)
params: [period_start, period_end]
notes: Cases are counted in the period in which they closed (exit date). A client can experience several types of abuse, so a case can appear in more than one bar. "Abuse ceased" is recorded once for all types of abuse, not for each type separately.
---*/
with closed_cases as (
    select abuse_physical, abuse_sexual, abuse_coercive_control, abuse_stalking,
           abuse_economic, abuse_ceased
    from cases
    where exit_date between $period_start and $period_end
      and abuse_ceased is not null
),
abuse_at_intake as (
    select 1 as position, 'Physical' as abuse_type, abuse_physical as present, abuse_ceased
    from closed_cases
    union all
    select 2, 'Sexual', abuse_sexual, abuse_ceased
    from closed_cases
    union all
    select 3, 'Coercive control', abuse_coercive_control, abuse_ceased
    from closed_cases
    union all
    select 4, 'Stalking', abuse_stalking, abuse_ceased
    from closed_cases
    union all
    select 5, 'Economic', abuse_economic, abuse_ceased
    from closed_cases
),
type_counts as (
    select
        position,
        abuse_type,
        count(*) filter (where present)                 as recorded_cases,
        count(*) filter (where present and abuse_ceased) as ceased_cases
    from abuse_at_intake
    group by position, abuse_type
)
select
    abuse_type,
    ceased_cases,
    recorded_cases,
    round(100.0 * ceased_cases / nullif(recorded_cases, 0), 1) as pct_ceased
from type_counts
order by position
