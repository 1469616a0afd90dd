/*---
title: Marac cases per 10,000 adult females
description: How many cases the Marac heard in the period for every 10,000 women and girls aged 16 and over living in the area, counted over a full year.
page: marac
order: 10
chart: kpi
y: [cases_per_10000]
unit: per 10,000 adult females
labels:
  cases_per_10000: Marac cases a year per 10,000 adult females
  marac_referrals_heard: Marac referrals heard
measures:
  cases_per_10000: marac_referrals_heard
params: [period_start, period_end]
source: Service Insights; national figures from the SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: Referrals heard (repeats included) in the period, divided by the adult female (16+) population of the selected areas and scaled to a year, so a quarter compares with a year. SafeLives expects about 40 cases per 10,000 adult females; the national figure is 47. When single services are selected, only the referrals their cases led to are counted, against the whole population of their areas.
reference:
  line: marac_per_10k_expected
---*/
with referrals_heard as (
    select count(*) as marac_referrals_heard
    from marac_referrals
    where meeting_date between $period_start and $period_end
),
population as (
    select sum(adult_female_population) as adult_female_population
    from areas
)
select
    r.marac_referrals_heard,
    round(
        10000.0 * r.marac_referrals_heard / nullif(p.adult_female_population, 0)
            * 365.25 / (date_diff('day', $period_start, $period_end) + 1),
        1
    ) as cases_per_10000
from referrals_heard r
cross join population p
