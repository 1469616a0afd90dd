/*---
title: High-risk returns not referred back to Marac
description: Many of a service's clients who came back at high risk within 12 months of a Marac referral were not referred to Marac again.
page: findings
order: 70
chart: finding
labels:
  missed_returns: Returns at high risk not referred back
  high_risk_returns: returns at high risk within 12 months of a Marac referral
  pct_missed: Share not referred back to Marac
counts: [missed_returns]
rates:
  pct_missed: {count: missed_returns, base: high_risk_returns}
params: [period_start, period_end, missed_rereferral_threshold]
measure: {pct_missed: missed_rereferrals}
finding:
  subject: service_name
  message: "{pct_missed}% of the clients who came back to {service_name} at high risk (DASH 14 or more) within 12 months of a Marac referral were not referred back to Marac ({missed_returns} of {high_risk_returns})."
  recommendation: "Check every new case against the last 12 months of Marac referrals: a victim heard at Marac in the past year who returns with a new incident meets the repeat criteria and should be referred back, whatever the new DASH score. Agree with the Marac coordinator how the service flags these returns."
  evidence: "The SafeLives Marac near-miss review found repeat incidents that were not referred back to Marac though they met the criteria, for a victim who was later heard four times at two Maracs; SafeLives defines a repeat as any further incident within 12 months of the last referral."
  confidence: pct_missed
source: Service Insights rule; SafeLives Marac near-miss review (practice blog) and SafeLives repeat criteria
notes: "Fires when the 95% interval for the share of high-risk returns (a new case at DASH 14 or more within 12 months after a Marac referral from the service for the same client) that were not referred back to Marac lies wholly above the threshold (missed_rereferral_threshold in data/reference.yaml, default 20%). See the Marac page's chart for what the data can and cannot show."
---*/
with per_service as (
    select
        s.name                                                   as service_name,
        count(*) filter (where {{measure.missed_rereferrals.numerator}})   as missed_returns,
        count(*) filter (where {{measure.missed_rereferrals.denominator}}) as high_risk_returns
    from cases c
    join services s using (service_id)
    where c.referral_date between $period_start and $period_end
    group by s.name
)
select
    service_name,
    missed_returns,
    high_risk_returns,
    round(100.0 * missed_returns / high_risk_returns, 1) as pct_missed
from per_service
where wilson_lower(missed_returns, high_risk_returns) > $missed_rereferral_threshold
order by service_name
