/*---
title: Marac repeat rate each quarter
description: The share of Marac referrals heard each quarter that were repeats, meaning the same victim had been referred in the previous 12 months.
page: marac
order: 20
chart: line
x: quarter_label
y: pct_repeat
labels:
  quarter_label: Quarter
  repeat_referrals: Repeat referrals
  referrals_heard: Referrals heard
  pct_repeat: Repeat rate
counts: [repeat_referrals]
rates:
  pct_repeat: {count: repeat_referrals, base: referrals_heard}
x_label: Quarter of the Marac meeting (financial year, April to March)
y_label: Referrals that were repeats (%)
params: [trend_start, period_end]
source: Service Insights; national figure from the SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: A repeat is a referral heard within 365 days (inclusive) of the same victim's previous referral at the same Marac, whichever agency referred (SafeLives definition); referrals for one victim at one Marac on one day are one referral. A quarter heard less than 12 months after the store's data for its Marac area begins is marked "look-back incomplete" - repeats of earlier referrals cannot be seen, so its rate is understated. The national repeat rate is 31%. SafeLives expects a Marac's repeat rate to lie between 28% and 40%; a lower rate can mean repeat incidents are not being identified and referred back.
reference:
  line: marac_repeat_national
  band: [marac_repeat_low, marac_repeat_high]
lookback: marac
---*/
select
    quarter_label,
    count(*) filter (where {{measure.marac_repeats.numerator}})   as repeat_referrals,
    count(*) filter (where {{measure.marac_repeats.denominator}}) as referrals_heard,
    round(100.0 * count(*) filter (where {{measure.marac_repeats.numerator}})
          / nullif(count(*) filter (where {{measure.marac_repeats.denominator}}), 0), 1) as pct_repeat
from marac_referrals
where meeting_date between $trend_start and $period_end
group by quarter_label, quarter_start
order by quarter_start
