/*---
title: High-risk returns not referred back to Marac
description: Of the clients who came back to the service in the period (a new case) within 12 months of a Marac referral, at high risk (DASH 14 or more), the share whose new case was not referred to Marac again.
page: marac
order: 25
chart: kpi
y: [pct_missed]
labels:
  pct_missed: Returns at high risk not referred back to Marac
  missed_returns: Returns at high risk not referred back
  high_risk_returns: Returns at high risk within 12 months of a Marac referral
counts: [missed_returns]
rates:
  pct_missed: {count: missed_returns, base: high_risk_returns}
params: [period_start, period_end]
measure: missed_rereferrals
source: Service Insights; the question is from the SafeLives Marac near-miss review (repeat incidents not referred back to Marac though they met the criteria)
notes: "A return is a new case at the same service for the same client (client_key), referred in the period, within 365 days after a Marac meeting that heard a referral from that service for that client, with a DASH score of 14 or more on the new case. It is missed when the new case is not marked as referred to Marac and no Marac referral from the service for the client was heard from the new case's referral date to 365 days after it. What the data can show - returns to the same service only, as the service recorded them. What it cannot - a new incident that did not bring the client back to the service (police call-outs, other agencies), a return to another service (that needs the linkage key), a return assessed below 14 on the DASH or not assessed (SafeLives asks for any new incident within 12 months to be re-referred, whatever the score), a Marac referral made by another agency for the same victim that the Marac file does not link to the service's case, or a referral heard after the data ends."
---*/
select
    count(*) filter (where {{measure.missed_rereferrals.numerator}})   as missed_returns,
    count(*) filter (where {{measure.missed_rereferrals.denominator}}) as high_risk_returns,
    round(100.0 * count(*) filter (where {{measure.missed_rereferrals.numerator}})
          / nullif(count(*) filter (where {{measure.missed_rereferrals.denominator}}), 0), 1)
                                                                               as pct_missed
from cases
where referral_date between $period_start and $period_end
