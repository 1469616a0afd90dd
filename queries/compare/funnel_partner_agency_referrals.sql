/*---
title: Marac referrals from partner agencies, by service
description: The share of each service's Marac referrals made by an agency other than the police, against how many referrals it made, inside the range chance alone would give around the comparator's rate (the centre line).
page: compare
order: 50
chart: funnel
x: service_name
y: pct_partner
labels:
  service_name: Service
  partner_referrals: Referrals from partner agencies
  referrals: Marac referrals heard
  pct_partner: Share from partner agencies
counts: [partner_referrals]
rates:
  pct_partner: {count: partner_referrals, base: referrals}
y_label: Referrals from partner agencies (%)
params: [period_start, period_end]
notes: Partner agencies are every referrer other than the police; nationally they make 36.1% of referrals (SafeLives Marac national dataset, 12 months to 30 Sep 2024).
measure: partner_referrals
---*/
select
    s.name                                                        as service_name,
    count(*) filter (where {{measure.partner_referrals.numerator}})   as partner_referrals,
    count(*) filter (where {{measure.partner_referrals.denominator}}) as referrals,
    round(100.0 * count(*) filter (where {{measure.partner_referrals.numerator}})
          / nullif(count(*) filter (where {{measure.partner_referrals.denominator}}), 0), 1) as pct_partner
from marac_referrals m
join services s using (service_id)
where m.meeting_date between $period_start and $period_end
group by s.name
order by s.name
