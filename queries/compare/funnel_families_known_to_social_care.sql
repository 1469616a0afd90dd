/*---
title: Families known to children's social care, by service
description: Each service's share of clients with children whose family is known to children's social care, against how many families it supported, inside the range chance alone would give around the comparator's rate (the centre line).
page: compare
order: 20
chart: funnel
x: service_name
y: pct_known
labels:
  service_name: Service
  known_families: Families known to social care
  families: Families with children (involvement recorded)
  pct_known: Families known to social care
counts: [known_families]
rates:
  pct_known: {count: known_families, base: families}
y_label: Families known to children's social care (%)
params: [period_start, period_end]
notes: Known to social care means early help, a child in need or child protection plan, or a looked-after child. Families whose involvement is not known are left out of the base.
measure: known_to_social_care
---*/
select
    s.name                                                     as service_name,
    count(*) filter (where {{measure.known_to_social_care.numerator}})   as known_families,
    count(*) filter (where {{measure.known_to_social_care.denominator}}) as families,
    round(100.0 * count(*) filter (where {{measure.known_to_social_care.numerator}})
          / nullif(count(*) filter (where {{measure.known_to_social_care.denominator}}), 0), 1) as pct_known
from cases c
join services s using (service_id)
where c.referral_date between $period_start and $period_end
group by s.name
order by s.name
