/*---
title: Marac referrals from partner agencies
description: The share of Marac referrals heard in the period that came from an agency other than the police.
page: marac
order: 15
chart: kpi
y: [pct_partner]
labels:
  pct_partner: Referrals from partner agencies (not police)
  partner_referrals: Referrals from partner agencies
  referrals_heard: Marac referrals heard
counts: [partner_referrals]
rates:
  pct_partner: {count: partner_referrals, base: referrals_heard}
params: [period_start, period_end]
reference:
  line: partner_agency_national
source: Service Insights; national figure from the SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: Partner agencies are every referrer other than the police (Idva services, children's social care, health, housing, probation and others). Nationally 36.1% of referrals come from partner agencies; a much lower share suggests victims who never contact the police are being missed.
measure: partner_referrals
---*/
select
    count(*) filter (where {{measure.partner_referrals.numerator}})   as partner_referrals,
    count(*) filter (where {{measure.partner_referrals.denominator}}) as referrals_heard,
    round(100.0 * count(*) filter (where {{measure.partner_referrals.numerator}})
          / nullif(count(*) filter (where {{measure.partner_referrals.denominator}}), 0), 1) as pct_partner
from marac_referrals
where meeting_date between $period_start and $period_end
