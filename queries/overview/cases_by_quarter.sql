/*---
title: Cases referred each quarter
description: How many cases were referred to the service in each quarter of the last two years, to show whether demand is rising or falling.
page: overview
order: 10
chart: line
x: quarter_label
y: cases
labels:
  quarter_label: Quarter
  cases: Cases referred in the quarter
counts: [cases]
x_label: Quarter (financial year, April to March)
y_label: Cases referred
params: [trend_start, period_end]
notes: Cases are counted in the quarter of their referral date. The trend covers the two years up to the end of the selected period.
---*/
select
    quarter_label,
    count(*) as cases
from cases
where referral_date between $trend_start and $period_end
group by quarter_label, quarter_start
order by quarter_start
