/*---
title: Waits, length of support and exit coverage
description: How long clients referred in the period waited from referral to first contact (intake), how long cases closed in the period were supported, and the share of those closed cases with outcomes recorded.
page: overview
order: 5
chart: kpi
y: [median_days_to_intake, p90_days_to_intake, median_days_supported, pct_exit_coverage]
unit: days
labels:
  median_days_to_intake: Median days from referral to first contact
  p90_days_to_intake: 90% of clients seen within (days)
  median_days_supported: Median days supported (closed cases)
  pct_exit_coverage: Closed cases with outcomes recorded
  cases_with_intake: Referrals in the period with an intake date
  closed_cases: Cases closed in the period
  closed_with_outcomes: Number of closed cases with outcomes recorded
  supported_cases: Cases closed in the period with an intake date
counts: [closed_with_outcomes]
measures:
  median_days_to_intake: cases_with_intake
  p90_days_to_intake: cases_with_intake
  median_days_supported: supported_cases
quantiles:
  median_days_to_intake: 0.5
  p90_days_to_intake: 0.9
  median_days_supported: 0.5
rates:
  pct_exit_coverage: {count: closed_with_outcomes, base: closed_cases}
measure:
  pct_exit_coverage: exit_coverage
  median_days_to_intake: median_days_to_intake
  p90_days_to_intake: p90_days_to_intake
  median_days_supported: median_days_supported
params: [period_start, period_end]
notes: "Wait: days from the referral date to the intake date, for referrals in the period that have had an intake. Days supported: intake to exit, for cases closed (exit date) in the period. Exit coverage: closed cases in the period with at least one outcome recorded at exit; an outcome rate describes only these. A median needs 20 cases and a 90th percentile 100, so that neither is close to one client's own figure."
---*/
with waits as (
    select
        count(*) filter (where {{measure.median_days_to_intake.denominator}}) as cases_with_intake,
        {{measure.median_days_to_intake.statistic}}                          as median_days_to_intake,
        {{measure.p90_days_to_intake.statistic}}                             as p90_days_to_intake
    from cases
    where referral_date between $period_start and $period_end
),
closed as (
    select
        count(*) filter (where {{measure.exit_coverage.denominator}}) as closed_cases,
        count(*) filter (where {{measure.exit_coverage.numerator}})   as closed_with_outcomes,
        count(*) filter (where {{measure.median_days_supported.denominator}}) as supported_cases,
        {{measure.median_days_supported.statistic}}  as median_days_supported
    from cases
    where exit_date between $period_start and $period_end
)
select
    w.cases_with_intake,
    w.median_days_to_intake,
    w.p90_days_to_intake,
    c.closed_cases,
    c.closed_with_outcomes,
    c.supported_cases,
    c.median_days_supported,
    round(100.0 * closed_with_outcomes / nullif(closed_cases, 0), 1) as pct_exit_coverage
from waits w
cross join closed c
