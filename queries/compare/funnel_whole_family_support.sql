/*---
title: Whole-family support for families known to social care, by service
description: Each service's share of families known to children's social care who were offered whole-family support, against how many such families it supported, inside the range chance alone would give around the comparator's rate (the centre line).
page: compare
order: 30
chart: funnel
x: service_name
y: pct_offered
labels:
  service_name: Service
  offered_families: Families offered whole-family support
  known_families: Families known to social care (offer recorded)
  pct_offered: Offered whole-family support
counts: [offered_families]
rates:
  pct_offered: {count: offered_families, base: known_families}
y_label: Families offered whole-family support (%)
params: [period_start, period_end]
measure: whole_family_support
---*/
select
    s.name                                                             as service_name,
    count(*) filter (where {{measure.whole_family_support.numerator}})   as offered_families,
    count(*) filter (where {{measure.whole_family_support.denominator}}) as known_families,
    round(100.0 * count(*) filter (where {{measure.whole_family_support.numerator}})
          / nullif(count(*) filter (where {{measure.whole_family_support.denominator}}), 0), 1) as pct_offered
from cases c
join services s using (service_id)
where c.referral_date between $period_start and $period_end
group by s.name
order by s.name
