/*---
title: Marac repeats with the same perpetrator
description: Beside the repeat rate, the SafeLives refinement - the share of referrals, among those whose Marac recorded the perpetrator, that were repeats for the same victim and the same perpetrator.
page: marac
order: 22
chart: kpi
y: [pct_repeat, pct_repeat_same_perpetrator]
labels:
  pct_repeat: Repeat rate (same victim)
  pct_repeat_same_perpetrator: Repeat rate (same victim and perpetrator)
  repeat_referrals: Repeat referrals
  referrals_heard: Referrals heard
  same_perpetrator_repeats: Repeats with the same perpetrator
  referrals_with_perpetrator: Referrals with the perpetrator recorded
counts: [repeat_referrals, same_perpetrator_repeats]
rates:
  pct_repeat: {count: repeat_referrals, base: referrals_heard}
  pct_repeat_same_perpetrator: {count: same_perpetrator_repeats, base: referrals_with_perpetrator}
params: [period_start, period_end]
source: Service Insights; definitions from SafeLives (Marac repeat referrals)
notes: The repeat rate is the dashboard's one definition (a referral within 365 days of the same victim's previous referral at the same Marac; same-day referrals for one victim at one Marac are one referral). The refinement counts a referral as a repeat only when the same victim was heard with the same perpetrator on an earlier day within the 365 days before; it is worked out only where a Marac file gave a perpetrator_ref (perpetrators are pseudonymised per Marac area, so one perpetrator heard at two Maracs is two). Same-day referrals are never a same-perpetrator repeat. A large gap between the two rates means many repeats involve a new perpetrator. Both rates need a full 12-month look-back, so a period starting less than 12 months after the store's data for a Marac area begins is flagged "look-back incomplete".
lookback: marac
measure:
  pct_repeat: marac_repeats
---*/
select
    count(*) filter (where {{measure.marac_repeats.numerator}})                 as repeat_referrals,
    count(*) filter (where {{measure.marac_repeats.denominator}})               as referrals_heard,
    count(*) filter (where has_perpetrator and is_repeat_same_perpetrator)     as same_perpetrator_repeats,
    count(*) filter (where has_perpetrator)                                    as referrals_with_perpetrator,
    round(100.0 * count(*) filter (where {{measure.marac_repeats.numerator}})
          / nullif(count(*) filter (where {{measure.marac_repeats.denominator}}), 0), 1)         as pct_repeat,
    round(100.0 * count(*) filter (where has_perpetrator and is_repeat_same_perpetrator)
          / nullif(count(*) filter (where has_perpetrator), 0), 1)             as pct_repeat_same_perpetrator
from marac_referrals
where meeting_date between $period_start and $period_end
