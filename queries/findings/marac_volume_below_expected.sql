/*---
title: Marac volume below the expected level
description: The Marac in an area hears fewer cases for its adult female population than SafeLives expects.
page: findings
order: 30
chart: finding
applies_to: areas
labels:
  referrals: Marac referrals heard
  person_years: adult female population (person-years in the period)
  per_10000: cases a year per 10,000 adult females
  pct_per_population: referrals per adult female
counts: [referrals]
rates:
  pct_per_population: {count: referrals, base: person_years}
measures:
  per_10000: person_years
params: [period_start, period_end, marac_per_10k_expected]
finding:
  subject: area_name
  message: "The Marac in {area_name} heard {per_10000} cases a year per 10,000 adult females, below the {marac_per_10k_expected} SafeLives expects (nationally {marac_per_10k_national})."
  recommendation: "Find out where high-risk victims in {area_name} are not being referred: compare referrals by agency with the national mix, offer DASH risk-checklist training to agencies that refer few cases, and check that professional judgement and escalation referrals are accepted."
  evidence: SafeLives recommends about 40 Marac cases a year per 10,000 adult females, from the expected prevalence of high-risk domestic abuse; the national figure was 47 in the 12 months to 30 Sep 2024. A Marac well below it is likely to be missing victims at high risk.
  confidence: pct_per_population
source: Service Insights rule; SafeLives Marac national dataset and guidance on reviewing Marac data
notes: Judged for whole Marac areas (choose an area, not single services). Fires when the 95% interval for the annual rate per 10,000 adult females lies wholly below the expected level (default 40, set in data/reference.yaml).
---*/
with days as (
    select (date_diff('day', $period_start, $period_end) + 1) / 365.25 as years
),
per_area as (
    select
        a.name                                       as area_name,
        count(m.referral_id)                         as referrals,
        round(any_value(a.adult_female_population) * any_value(d.years))::bigint as person_years
    from areas a
    cross join days d
    left join marac_referrals m
        on m.marac_area = a.area_code
       and m.meeting_date between $period_start and $period_end
    group by a.name
)
select
    area_name,
    referrals,
    person_years,
    round(100.0 * referrals / person_years, 4)    as pct_per_population,
    round(10000.0 * referrals / person_years, 1)  as per_10000
from per_area
where person_years > 0
  and wilson_upper(referrals, person_years) * 100 < $marac_per_10k_expected
order by area_name
