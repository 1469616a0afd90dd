/*---
title: Marac repeat rate outside the expected range
description: The share of a service's Marac referrals that were repeats lies outside the range SafeLives expects.
page: findings
order: 20
chart: finding
labels:
  referrals: Marac referrals heard
  repeats: Repeat referrals
  pct_repeat: Repeat rate
counts: [repeats]
rates:
  pct_repeat: {count: repeats, base: referrals}
params: [period_start, period_end, marac_repeat_low, marac_repeat_high]
finding:
  subject: service_name
  message: "{pct_repeat}% of the Marac referrals from {service_name} were repeats ({repeats} of {referrals}), {direction} the expected range of {marac_repeat_low}% to {marac_repeat_high}% (nationally {marac_repeat_national}%)."
  recommendation: "{advice}"
  evidence: "SafeLives expects a Marac's repeat rate to lie between 28% and 40% (national figure 31%, 12 months to 30 Sep 2024). A low rate usually means repeat incidents are not being recognised and referred back; a high rate can mean safety plans are not reducing risk."
  confidence: pct_repeat
source: Service Insights rule; SafeLives Marac national dataset and guidance on reviewing Marac data
notes: Fires when the 95% interval for the repeat rate lies wholly below the lower end or wholly above the upper end of the expected range (default 28% to 40%, set in data/reference.yaml). A repeat is a referral within 12 months of the same victim's previous referral at the same Marac (same-day referrals are one referral). Never fires for a service with a referral in the period heard less than 12 months after the store's data for its Marac area begins (look-back incomplete), as repeats before the data begins cannot be seen, so the rate would be understated.
measure: {pct_repeat: marac_repeats}
---*/
with per_service as (
    select
        s.name                                   as service_name,
        count(*) filter (where {{measure.marac_repeats.denominator}}) as referrals,
        count(*) filter (where {{measure.marac_repeats.numerator}})   as repeats,
        bool_and(m.has_full_lookback)            as full_lookback
    from marac_referrals m
    join services s using (service_id)
    where m.meeting_date between $period_start and $period_end
    group by s.name
)
select
    service_name,
    referrals,
    repeats,
    round(100.0 * repeats / referrals, 1) as pct_repeat,
    case when wilson_upper(repeats, referrals) < $marac_repeat_low then 'below'
         else 'above' end                 as direction,
    case when wilson_upper(repeats, referrals) < $marac_repeat_low
         then 'Check that every agency flags a new incident for a victim heard in the last 12 months, so repeats are recognised and referred back to Marac: agree a repeat-identification process with the police and partner agencies, and audit a sample of recent incidents.'
         else 'Review what happens after a case is heard: are actions completed, is an Idva engaged, and are safety plans revisited when new incidents occur? A high repeat rate can show that risk is not being reduced.'
    end                                    as advice
from per_service
where full_lookback
  and (wilson_upper(repeats, referrals) < $marac_repeat_low
       or wilson_lower(repeats, referrals) > $marac_repeat_high)
order by service_name
