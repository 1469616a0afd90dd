/*---
title: Marac repeat rate, by service
description: The share of each service's Marac referrals that were repeats, against how many referrals it made, inside the range chance alone would give around the comparator's rate (the centre line).
page: compare
order: 40
chart: funnel
x: service_name
y: pct_repeat
labels:
  service_name: Service
  repeat_referrals: Repeat referrals
  referrals: Marac referrals heard
  pct_repeat: Repeat rate
counts: [repeat_referrals]
rates:
  pct_repeat: {count: repeat_referrals, base: referrals}
y_label: Marac referrals that were repeats (%)
params: [period_start, period_end]
notes: A repeat is a referral within 12 months of the same victim's previous referral at the same Marac (same-day referrals are one referral); a period less than 12 months after the store's data for a Marac area begins is flagged "look-back incomplete". SafeLives expects 28% to 40%; the national rate is 31%. Referrals not linked to a service are left out.
lookback: marac
measure: marac_repeats
---*/
select
    s.name                                                as service_name,
    count(*) filter (where {{measure.marac_repeats.numerator}})   as repeat_referrals,
    count(*) filter (where {{measure.marac_repeats.denominator}}) as referrals,
    round(100.0 * count(*) filter (where {{measure.marac_repeats.numerator}})
          / nullif(count(*) filter (where {{measure.marac_repeats.denominator}}), 0), 1) as pct_repeat
from marac_referrals m
join services s using (service_id)
where m.meeting_date between $period_start and $period_end
group by s.name
order by s.name
