/*---
title: Victims known elsewhere in the previous 12 months
description: Of the Marac referrals heard in the period whose victim carries the linkage key, the share also heard at another Marac, and the share also supported by another domestic-abuse service, in the 12 months before the meeting.
page: marac
order: 40
chart: kpi
y: [pct_other_marac, pct_other_service]
labels:
  pct_other_marac: Also heard at another Marac
  pct_other_service: Also supported by another service
  other_marac: Referrals also heard at another Marac
  other_service: Referrals also supported by another service
  linked_referrals: Referrals with the linkage key
counts: [other_marac, other_service]
rates:
  pct_other_marac: {count: other_marac, base: linked_referrals}
  pct_other_service: {count: other_service, base: linked_referrals}
params: [period_start, period_end]
source: Service Insights (the optional linkage key, SI_LINKAGE_KEY); the question is the first recommendation of the SafeLives Marac near-miss review
notes: Needs the deployment's linkage key (off by default; it needs a data-sharing agreement) - without it there are no referrals with the key and the chart is empty. It finds a victim only where both records carry the same NHS number, or the same surname and date of birth, imported into this dashboard; it cannot see Maracs or services that do not import here, records with neither identifier, a name spelt differently or changed, or one record with an NHS number and the other with only name and date of birth. "Another Marac" is another Marac area; "another service" is a case open at any service other than the one that referred, at some point in the 365 days up to the meeting.
---*/
select
    count(*) filter (where heard_at_other_marac_12m)                             as other_marac,
    count(*) filter (where supported_by_other_service_12m)                       as other_service,
    count(*)                                                                     as linked_referrals,
    round(100.0 * count(*) filter (where heard_at_other_marac_12m) / nullif(count(*), 0), 1)
                                                                                 as pct_other_marac,
    round(100.0 * count(*) filter (where supported_by_other_service_12m) / nullif(count(*), 0), 1)
                                                                                 as pct_other_service
from marac_referrals
where meeting_date between $period_start and $period_end and has_linkage_key
