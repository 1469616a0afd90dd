/*---
title: Few Marac referrals from partner agencies
description: Most of a service's Marac referrals come from the police, with few from health, housing, children's social care and other partner agencies.
page: findings
order: 40
chart: finding
labels:
  referrals: Marac referrals heard
  partner_referrals: Referrals from partner agencies
  pct_partner: Share from partner agencies
counts: [partner_referrals]
rates:
  pct_partner: {count: partner_referrals, base: referrals}
params: [period_start, period_end, partner_agency_low]
finding:
  subject: service_name
  message: "Only {pct_partner}% of the Marac referrals from {service_name} came from partner agencies rather than the police ({partner_referrals} of {referrals}), against {partner_agency_national}% nationally."
  recommendation: Build referral routes from health, housing, children's social care and specialist services into Marac, for example by offering DASH risk-checklist training and a named contact to the agencies that refer least.
  evidence: Nationally 36.1% of Marac referrals come from partner agencies other than the police (SafeLives Marac national dataset, 12 months to 30 Sep 2024). Victims who never call the police are found through health, housing and other services; a Marac that hears mostly police referrals is likely to be missing them.
  confidence: pct_partner
source: Service Insights rule; SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: Fires when the 95% interval for the share of referrals from partner agencies (any agency other than the police) lies wholly below the threshold (default 25%, set in data/reference.yaml; the national share is 36.1%).
measure: {pct_partner: partner_referrals}
---*/
with per_service as (
    select
        s.name                                          as service_name,
        count(*) filter (where {{measure.partner_referrals.denominator}}) as referrals,
        count(*) filter (where {{measure.partner_referrals.numerator}})   as partner_referrals
    from marac_referrals m
    join services s using (service_id)
    where m.meeting_date between $period_start and $period_end
    group by s.name
)
select
    service_name,
    referrals,
    partner_referrals,
    round(100.0 * partner_referrals / referrals, 1) as pct_partner
from per_service
where wilson_upper(partner_referrals, referrals) < $partner_agency_low
order by service_name
