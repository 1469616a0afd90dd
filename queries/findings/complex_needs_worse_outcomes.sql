/*---
title: Clients with complex needs fare worse
description: A service's clients with a mental health, substance use or housing need engage less, or leave with their risk reduced less often, than its other clients.
page: findings
order: 60
chart: finding
labels:
  measure: Engagement or outcome
  complex_cases: cases of clients with complex needs
  complex_achieved: Cases of clients with complex needs engaged or with the outcome
  other_cases: cases of other clients
  other_achieved: Cases of other clients engaged or with the outcome
  pct_complex: The rate among clients with complex needs
  pct_other: The rate among other clients
counts: [complex_achieved, other_achieved]
rates:
  pct_complex: {count: complex_achieved, base: complex_cases}
  pct_other: {count: other_achieved, base: other_cases}
params: [period_start, period_end, complex_needs_gap]
finding:
  subject: service_name
  title: "Clients with complex needs {measure_heading}"
  message: "At {service_name}, {measure_text} for {pct_complex}% of clients with complex needs (mental health, substance use or housing) against {pct_other}% of its other clients ({complex_achieved} of {complex_cases} against {other_achieved} of {other_cases})."
  recommendation: "Look at how the service works with clients who have mental health, substance use or housing needs: agree joint working and information sharing with mental health, drug and alcohol and housing services, and consider a specialist worker or a longer, more flexible offer for these clients."
  evidence: "The SafeLives Marac near-miss review found a victim heard four times at two Maracs whose substance use and mental health needs were known to services that shared little; its recommendations include reviewing how complex cases are heard. SafeLives' refuge Insights data found 53% of refuge clients had mental health needs."
  confidence: pct_complex
source: Service Insights rule; SafeLives Marac near-miss review (practice blog) and refuge services Insights dataset
notes: "Fires when, for engagement (an intake date, of cases referred in the period) or for risk reduced at exit (of cases closed in the period with it recorded), the 95% interval for clients with complex needs lies wholly below the interval for the service's other clients and the gap is at least the threshold (complex_needs_gap in data/reference.yaml, default 15 points). Judged on the counts the viewer sees (perturbed for other services). Cases with none of the three needs recorded are left out."
---*/
with known as (
    select service_id, has_complex_needs, referral_date, intake_date, exit_date, risk_reduced
    from cases
    where has_complex_needs is not null
),
measures as (
    select service_id, has_complex_needs, 'engagement' as measure,
           intake_date is not null as achieved
    from known where referral_date between $period_start and $period_end
    union all
    select service_id, has_complex_needs, 'risk reduced', risk_reduced
    from known where exit_date between $period_start and $period_end
),
per_service as (
    select
        s.name                                                                as service_name,
        m.measure,
        count(m.achieved) filter (where m.has_complex_needs)                  as complex_cases,
        count(*) filter (where m.has_complex_needs and m.achieved)            as complex_achieved,
        count(m.achieved) filter (where not m.has_complex_needs)              as other_cases,
        count(*) filter (where not m.has_complex_needs and m.achieved)        as other_achieved
    from measures m
    join services s using (service_id)
    group by s.name, m.measure
)
select
    service_name,
    measure,
    case when measure = 'engagement' then 'an intake was recorded (the client engaged)'
         else 'risk was reduced at exit' end                                 as measure_text,
    case when measure = 'engagement' then 'engage less'
         else 'have their risk reduced less often' end                       as measure_heading,
    complex_cases,
    complex_achieved,
    other_cases,
    other_achieved,
    round(100.0 * complex_achieved / nullif(complex_cases, 0), 1)           as pct_complex,
    round(100.0 * other_achieved / nullif(other_cases, 0), 1)               as pct_other
from per_service
where wilson_upper(complex_achieved, complex_cases) < wilson_lower(other_achieved, other_cases)
  and 100.0 * other_achieved / nullif(other_cases, 0)
      - 100.0 * complex_achieved / nullif(complex_cases, 0) >= $complex_needs_gap
order by service_name, measure
