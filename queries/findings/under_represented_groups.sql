/*---
title: Groups the service under-represents
description: A group of victims makes up a smaller share of the service's clients than of Marac cases nationally, by more than chance would explain.
page: findings
order: 50
chart: finding
labels:
  recorded: clients with this recorded
  in_group: Clients in the group
  pct_in_group: Share of clients in the group
  national_pct: National share
counts: [in_group]
rates:
  pct_in_group: {count: in_group, base: recorded}
measures:
  national_pct: recorded
params: [period_start, period_end, male_national, lgbt_national, disability_national, minoritised_national]
finding:
  subject: service_name
  message: "{pct_in_group}% of {service_name}'s clients were {group_name} ({in_group} of {recorded} with this recorded), against {national_pct}% of Marac cases nationally."
  recommendation: "Review how {group_name} victims reach the service: where referrals come from, whether publicity and referral partners (for example {partners}) reach them, and whether the service is seen as for them."
  evidence: "SafeLives' Marac national dataset (12 months to 30 Sep 2024) gives the share of high-risk victims who are male (6.4%), LGBT+ (1.6%), disabled (10.1%) and Black, Asian or racially minoritised (14.1%). SafeLives' Spotlights found these groups face extra barriers to help and are under-identified by services."
  confidence: pct_in_group
source: Service Insights rule; SafeLives Marac national dataset, 12 months to 30 Sep 2024
notes: The share is the measure data/measures.yaml defines for each group (male_clients, lgbt_clients, disabled_clients, minoritised_clients; the result's measure_id names it), and the comparator's figure is that measure over the comparator. Fires for each group where the 95% interval for the service's share lies wholly below the national share. Cases with the characteristic not recorded are left out of the base. National shares are for Marac cases, the closest published comparison; set them in data/reference.yaml.
---*/
with groups(group_key, group_name, measure_id, national_pct, partners) as (
    values
        ('male',        'male',                                 'male_clients',        $male_national,        'men''s services and GPs'),
        ('lgbt',        'LGBT+',                                'lgbt_clients',        $lgbt_national,        'LGBT+ organisations'),
        ('disability',  'disabled',                             'disabled_clients',    $disability_national,  'disability and adult social care services'),
        ('minoritised', 'Black, Asian or racially minoritised', 'minoritised_clients', $minoritised_national, 'by-and-for organisations')
),
per_service as (
    select
        s.name as service_name,
        g.group_key,
        count(*) filter (where case g.group_key
            when 'male'        then {{measure.male_clients.denominator}}
            when 'lgbt'        then {{measure.lgbt_clients.denominator}}
            when 'disability'  then {{measure.disabled_clients.denominator}}
            else {{measure.minoritised_clients.denominator}} end)     as recorded,
        count(*) filter (where case g.group_key
            when 'male'        then {{measure.male_clients.numerator}}
            when 'lgbt'        then {{measure.lgbt_clients.numerator}}
            when 'disability'  then {{measure.disabled_clients.numerator}}
            else {{measure.minoritised_clients.numerator}} end)       as in_group
    from cases c
    join services s using (service_id)
    cross join groups g
    where c.referral_date between $period_start and $period_end
    group by s.name, g.group_key
)
select
    p.service_name,
    g.group_name,
    g.partners,
    g.measure_id,
    p.recorded,
    p.in_group,
    round(100.0 * p.in_group / nullif(p.recorded, 0), 1) as pct_in_group,
    g.national_pct
from per_service p
join groups g using (group_key)
where wilson_upper(p.in_group, p.recorded) < g.national_pct
order by p.service_name, g.group_name
