/*---
title: Offer whole-family support
description: Most clients have children and most of those families are known to children's social care, yet few of those families are offered support that works with the whole family.
page: findings
order: 10
chart: finding
labels:
  clients: clients referred in the period
  clients_with_children: number of clients with children
  pct_children: Share of clients with children
  families: families with children whose social care involvement is recorded
  pct_known: Share of families known to social care
  known_families_recorded: families known to social care with the offer recorded
  pct_offered: Share of those families offered whole-family support
counts: [clients_with_children, known_families, offered_families]
rates:
  pct_children: {count: clients_with_children, base: clients}
  pct_known: {count: known_families, base: families}
  pct_offered: {count: offered_families, base: known_families_recorded}
params: [period_start, period_end, children_share_threshold, social_care_share_threshold, whole_family_offer_threshold]
finding:
  subject: service_name
  message: "At {service_name}, {pct_children}% of clients had children and {pct_known}% of those families were known to children's social care, but only {pct_offered}% of the families known to social care were offered whole-family support."
  recommendation: Offer whole-family support as a standard part of the service, working with the children and the non-abusing parent together and alongside children's social care, for example through a children and young people's worker in the team.
  evidence: "Safe (Exeter) found from its Insights report that 61% of its Idva clients had children and two thirds of those families were involved with children's social services, and adapted its service to work with whole families. Children living with domestic abuse are often directly harmed too: 62% in CAADA's In plain sight (2014)."
  confidence: pct_known
  compare: pct_offered
source: Service Insights rule; evidence from the Safe (Exeter) service review, 2015, and CAADA, In plain sight, 2014
notes: Fires when the 95% interval for the share of clients with children and for the share of families known to children's social care both lie above the thresholds (default more than half), and the interval for the share of those families offered whole-family support lies below its threshold (default half). Thresholds are in data/reference.yaml.
measure:
  pct_children: with_children
  pct_known: known_to_social_care
  pct_offered: whole_family_support
---*/
with per_service as (
    select
        s.name                                                              as service_name,
        count(*) filter (where {{measure.with_children.denominator}})                as clients,
        count(*) filter (where {{measure.with_children.numerator}})        as clients_with_children,
        count(*) filter (where {{measure.known_to_social_care.denominator}}) as families,
        count(*) filter (where {{measure.known_to_social_care.numerator}})   as known_families,
        count(*) filter (where {{measure.whole_family_support.denominator}}) as known_families_recorded,
        count(*) filter (where {{measure.whole_family_support.numerator}})   as offered_families
    from cases c
    join services s using (service_id)
    where c.referral_date between $period_start and $period_end
    group by s.name
)
select
    service_name,
    clients,
    clients_with_children,
    round(100.0 * clients_with_children / clients, 1)                      as pct_children,
    families,
    known_families,
    round(100.0 * known_families / nullif(families, 0), 1)                 as pct_known,
    known_families_recorded,
    offered_families,
    round(100.0 * offered_families / nullif(known_families_recorded, 0), 1) as pct_offered
from per_service
where wilson_lower(clients_with_children, clients) > $children_share_threshold
  and wilson_lower(known_families, families) > $social_care_share_threshold
  and wilson_upper(offered_families, known_families_recorded) < $whole_family_offer_threshold
order by service_name
