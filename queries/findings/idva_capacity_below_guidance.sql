/*---
title: Idva capacity below SafeLives guidance
description: The Idva full-time equivalents registered for an area's services are fewer than SafeLives guidance implies for the number of cases its Marac hears.
page: findings
order: 35
chart: finding
applies_to: areas
unit: FTE
labels:
  referrals: Marac referrals heard in the period
  idva_fte_implied: Idva FTE implied by volume
  idva_fte_registered: Idva FTE registered
  cases_a_year: Marac cases a year
counts: [referrals]
measures:
  idva_fte_implied: referrals
  idva_fte_registered: referrals
  cases_a_year: referrals
params: [period_start, period_end, marac_cases_per_idva_fte]
finding:
  subject: area_name
  message: "The Marac in {area_name} hears about {cases_a_year} cases a year, which SafeLives guidance ({marac_cases_per_idva_fte} cases a year per full-time Idva) puts at {idva_fte_implied} FTE Idvas; the area's services have {idva_fte_registered} FTE registered."
  recommendation: "Check the Idva FTE registered for {area_name}'s services is complete (Import page or `service-insights services add --idva-fte`); if it is, make the case to commissioners for Idva posts in line with the Marac's volume, or review caseloads and waiting times for high-risk victims."
  evidence: "SafeLives recommends about 100 Marac cases a year for each full-time Idva (and one full-time Marac administrator per 400 cases); Idvas carrying far more cannot give high-risk victims the intensive support the model depends on."
  confidence: idva_fte_implied
source: Service Insights rule; SafeLives guidance on Idva capacity for Marac
notes: "Judged for whole Marac areas. Fires when even the lower end of the 95% interval for the Idva FTE the Marac's volume implies (Byar's interval for the count of referrals, scaled to a year and divided by 100) is above the FTE registered for the area's services. Blank FTE counts as none; an area with no FTE registered at all is not judged."
---*/
with days as (
    select (date_diff('day', $period_start, $period_end) + 1) / 365.25 as years
),
registered as (
    select area_code, sum(coalesce(idva_fte, 0))::double as idva_fte,
           count(idva_fte) as services_with_fte
    from services
    group by area_code
),
per_area as (
    select
        a.area_code,
        a.name                           as area_name,
        count(m.referral_id)             as referrals
    from areas a
    left join marac_referrals m
        on m.marac_area = a.area_code
       and m.meeting_date between $period_start and $period_end
    group by a.area_code, a.name
)
select
    p.area_name,
    p.referrals,
    round(p.referrals / d.years)::bigint                         as cases_a_year,
    round(p.referrals / d.years / $marac_cases_per_idva_fte, 1)   as idva_fte_implied,
    round(r.idva_fte, 1)                                          as idva_fte_registered
from per_area p
cross join days d
join registered r using (area_code)
where r.services_with_fte > 0
  and p.referrals > 0
  and p.referrals * power(1 - 1 / (9.0 * p.referrals) - 1.959964 / (3 * sqrt(p.referrals)), 3)
      / d.years / $marac_cases_per_idva_fte > r.idva_fte
order by p.area_name
