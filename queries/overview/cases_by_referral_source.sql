/*---
title: Who refers clients to the service
description: The share of cases referred in the period by each referral source, to show which agencies send clients and which rarely do.
page: overview
order: 20
chart: bar
x: source
y: pct_cases
labels:
  source: Referral source
  cases: Cases referred from this source
  all_cases: All cases referred
  pct_cases: Share of cases
counts: [cases]
rates:
  pct_cases: {count: cases, base: all_cases}
x_order: [Police, Self-referral, "Children's social care", Health, Housing, Another domestic abuse service, Other]
x_label: Who made the referral
y_label: Share of cases referred (%)
params: [period_start, period_end]
notes: Shares add up to 100% across all referral sources. A low share from partner agencies (anyone but the police and the client) can mean they do not know about the service.
---*/
with sources(referral_source, source, position) as (
    values
        ('police',                'Police',                          1),
        ('self',                  'Self-referral',                   2),
        ('childrens_social_care', 'Children''s social care',         3),
        ('health',                'Health',                          4),
        ('housing',               'Housing',                         5),
        ('da_service',            'Another domestic abuse service',  6),
        ('other',                 'Other',                           7)
),
period_cases as (
    select referral_source
    from cases
    where referral_date between $period_start and $period_end
),
source_counts as (
    select s.source, s.position, count(p.referral_source) as cases
    from sources s
    left join period_cases p using (referral_source)
    group by s.source, s.position
)
select
    source,
    cases,
    cast(sum(cases) over () as bigint)                      as all_cases,
    round(100.0 * cases / nullif(sum(cases) over (), 0), 1) as pct_cases
from source_counts
order by position
