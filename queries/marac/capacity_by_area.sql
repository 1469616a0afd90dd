/*---
title: Idva and Marac administrator capacity against Marac volume
description: For each Marac area, the full-time equivalent (FTE) Idvas and Marac administrators that SafeLives guidance implies for the cases the Marac hears a year, next to the FTE registered for the area's services.
page: marac
order: 15
chart: table
unit: FTE
labels:
  area_name: Marac area
  referrals: Marac referrals heard in the period
  cases_a_year: Marac cases a year
  idva_fte_implied: Idva FTE implied by volume
  idva_fte_registered: Idva FTE registered
  admin_fte_implied: Administrator FTE implied by volume
  admin_fte_registered: Administrator FTE registered
counts: [referrals]
measures:
  cases_a_year: referrals
  idva_fte_implied: referrals
  idva_fte_registered: referrals
  admin_fte_implied: referrals
  admin_fte_registered: referrals
params: [period_start, period_end, marac_cases_per_idva_fte, marac_cases_per_admin_fte]
source: SafeLives guidance (about 100 Marac cases a year per FTE Idva; one FTE Marac administrator per 400 cases); FTE from the services register
notes: "Implied FTE: referrals heard in the period (repeats included), scaled to a year, divided by 100 for Idvas and 400 for administrators (data/reference.yaml). Registered FTE: the sum of idva_fte and admin_fte on the services register for the area's services (blank counts as none; register them with `service-insights services add --idva-fte --admin-fte` or on the Import page). Judged for whole areas: with single services selected, only their referrals are counted."
---*/
with days as (
    select (date_diff('day', $period_start, $period_end) + 1) / 365.25 as years
),
registered as (
    select area_code,
           sum(coalesce(idva_fte, 0))::double  as idva_fte,
           sum(coalesce(admin_fte, 0))::double as admin_fte
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
    round(coalesce(r.idva_fte, 0), 1)                             as idva_fte_registered,
    round(p.referrals / d.years / $marac_cases_per_admin_fte, 1)  as admin_fte_implied,
    round(coalesce(r.admin_fte, 0), 1)                            as admin_fte_registered
from per_area p
cross join days d
left join registered r using (area_code)
order by p.area_name
