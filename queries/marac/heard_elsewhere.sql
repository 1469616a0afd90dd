/*---
title: Victims known elsewhere in the previous 12 months
description: Of the Marac referrals heard in the period whose victim carries the linkage key, the share also heard at another Marac, and the share also supported by another domestic-abuse service, in the 12 months before the meeting.
page: marac
order: 40
chart: bar
x: known_elsewhere
y: pct_referrals
labels:
  known_elsewhere: Also known
  referrals: Referrals
  linked_referrals: Referrals with the linkage key
  pct_referrals: Share of referrals with the linkage key
counts: [referrals]
rates:
  pct_referrals: {count: referrals, base: linked_referrals}
x_order: [Heard at another Marac, Supported by another service]
x_label: Where else the victim was known in the 12 months before the meeting
y_label: Referrals with the linkage key (%)
params: [period_start, period_end]
source: Service Insights (the optional linkage key, SI_LINKAGE_KEY); the question is the first recommendation of the SafeLives Marac near-miss review
notes: Needs the deployment's linkage key (off by default; it needs a data-sharing agreement) - without it there are no referrals with the key and the chart is empty. It finds a victim only where both records carry the same NHS number, or the same surname and date of birth, imported into this dashboard; it cannot see Maracs or services that do not import here, records with neither identifier, a name spelt differently or changed, or one record with an NHS number and the other with only name and date of birth. "Another Marac" is another Marac area; "another service" is a case open at any service other than the one that referred, at some point in the 365 days up to the meeting.
---*/
with linked as (
    select *
    from marac_referrals
    where meeting_date between $period_start and $period_end and has_linkage_key
),
kinds(known_elsewhere, position) as (
    values ('Heard at another Marac', 1), ('Supported by another service', 2)
)
select
    k.known_elsewhere,
    count(*) filter (where (k.position = 1 and l.heard_at_other_marac_12m)
                        or (k.position = 2 and l.supported_by_other_service_12m)) as referrals,
    count(l.referral_id)                                                      as linked_referrals,
    round(100.0 * count(*) filter (where (k.position = 1 and l.heard_at_other_marac_12m)
                        or (k.position = 2 and l.supported_by_other_service_12m))
          / nullif(count(l.referral_id), 0), 1)                              as pct_referrals
from kinds k
left join linked l on true
group by k.known_elsewhere, k.position
order by k.position
