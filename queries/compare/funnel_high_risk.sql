/*---
title: High-risk cases at intake, by service
description: Each service's share of assessed cases at high risk (DASH 14 or more), against how many cases it assessed, inside the range chance alone would give around the comparator's rate (the centre line).
page: compare
order: 10
chart: funnel
x: service_name
y: pct_high_risk
labels:
  service_name: Service
  high_risk_cases: High-risk cases
  assessed_cases: Cases with a DASH score
  pct_high_risk: High risk (DASH 14+)
counts: [high_risk_cases]
rates:
  pct_high_risk: {count: high_risk_cases, base: assessed_cases}
y_label: Cases at high risk (%)
params: [period_start, period_end]
notes: A service outside the 99.8% limits differs from all services by more than chance would explain; between the 95% and 99.8% limits, it may. Services with fewer than 10 assessed cases are not shown.
measure: high_risk
---*/
select
    s.name                                              as service_name,
    count(*) filter (where {{measure.high_risk.numerator}})   as high_risk_cases,
    count(*) filter (where {{measure.high_risk.denominator}}) as assessed_cases,
    round(100.0 * count(*) filter (where {{measure.high_risk.numerator}})
          / nullif(count(*) filter (where {{measure.high_risk.denominator}}), 0), 1) as pct_high_risk
from cases c
join services s using (service_id)
where c.referral_date between $period_start and $period_end
group by s.name
order by s.name
