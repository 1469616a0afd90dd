/*---
title: Who refers cases to Marac
description: The share of Marac referrals heard in the period made by each agency, to show whether partner agencies as well as the police are referring.
page: marac
order: 30
chart: bar
x: agency
y: pct_referrals
labels:
  agency: Referring agency
  referrals: Referrals heard
  all_referrals: All referrals heard
  pct_referrals: Share of referrals
counts: [referrals]
rates:
  pct_referrals: {count: referrals, base: all_referrals}
x_order: [Police, Idva, "Children's social care", Health, Housing, Probation, Other]
x_label: Agency that made the referral
y_label: Share of Marac referrals (%)
params: [period_start, period_end]
source: Service Insights; national figure from the SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: Shares add up to 100% across agencies. Nationally, 36.1% of Marac referrals came from partner agencies (any agency but the police).
reference:
  points:
    Police: police_share_national
---*/
with agencies(referring_agency, agency, position) as (
    values
        ('police',                'Police',                  1),
        ('idva',                  'Idva',                    2),
        ('childrens_social_care', 'Children''s social care', 3),
        ('health',                'Health',                  4),
        ('housing',               'Housing',                 5),
        ('probation',             'Probation',               6),
        ('other',                 'Other',                   7)
),
period_referrals as (
    select referring_agency
    from marac_referrals
    where meeting_date between $period_start and $period_end
),
agency_counts as (
    select a.agency, a.position, count(r.referring_agency) as referrals
    from agencies a
    left join period_referrals r using (referring_agency)
    group by a.agency, a.position
)
select
    agency,
    referrals,
    cast(sum(referrals) over () as bigint)                          as all_referrals,
    round(100.0 * referrals / nullif(sum(referrals) over (), 0), 1) as pct_referrals
from agency_counts
order by position
