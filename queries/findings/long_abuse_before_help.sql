/*---
title: Victims living with abuse for years before help
description: Most of the service's clients had lived with the abuse for three years or more before they were referred.
page: findings
order: 60
chart: finding
labels:
  clients: clients with the length of abuse recorded
  long_abuse: Clients abused for 3 years or more
  pct_long: Share abused for 3 years or more
  median_months: Median months of abuse before referral
counts: [long_abuse]
rates:
  pct_long: {count: long_abuse, base: clients}
measures:
  median_months: clients
params: [period_start, period_end, long_abuse_months, long_abuse_share_threshold]
finding:
  subject: service_name
  message: "{pct_long}% of {service_name}'s clients had lived with the abuse for 3 years or more before referral (median {median_months} months)."
  recommendation: Work with the agencies victims see first (GPs, A&E, maternity, housing, schools) so that abuse is identified and referred earlier, and look at which referral routes bring clients in late.
  evidence: "SafeLives (Getting it right first time, 2015) found victims at high risk live with abuse for 2.3 years, and at medium risk 3 years, on average before getting effective help, and most had been in contact with public services in the year before. Earlier identification shortens harm to victims and their children."
  confidence: pct_long
source: Service Insights rule; SafeLives, Getting it right first time, 2015
notes: Fires when the 95% interval for the share of clients abused for 3 years or more (set in data/reference.yaml) lies wholly above the threshold (default half). Cases with the length of abuse not recorded are left out.
measure: {pct_long: long_abuse}
---*/
with per_service as (
    select
        s.name                                                          as service_name,
        count(*) filter (where {{measure.long_abuse.denominator}}) as clients,
        count(*) filter (where {{measure.long_abuse.numerator}})   as long_abuse,
        median(c.abuse_months)                                          as median_months
    from cases c
    join services s using (service_id)
    where c.referral_date between $period_start and $period_end
    group by s.name
)
select
    service_name,
    clients,
    long_abuse,
    round(100.0 * long_abuse / nullif(clients, 0), 1) as pct_long,
    round(median_months, 0)                           as median_months
from per_service
where wilson_lower(long_abuse, clients) > $long_abuse_share_threshold
order by service_name
