/*---
title: Age of the youngest child
description: Among clients with children, the share by the age of the youngest child in the household, to show how many families have babies and young children.
page: children
order: 20
chart: bar
x: youngest_child_age
y: pct_families
labels:
  youngest_child_age: Age of the youngest child
  families: Families
  families_with_children: Number of clients with children
  pct_families: Share of families
counts: [families]
rates:
  pct_families: {count: families, base: families_with_children}
x_order: [Under 5, 5 to 10, 11 to 15, 16 to 17, Not recorded]
x_label: Age of the youngest child in the household (years)
y_label: Share of clients with children (%)
params: [period_start, period_end]
notes: Among cases referred in the period with at least one child in the household. "Not recorded" means the service did not record the child's age.
---*/
with age_bands(youngest_child_age_band, youngest_child_age, position) as (
    values
        ('0-4',          'Under 5',      1),
        ('5-10',         '5 to 10',      2),
        ('11-15',        '11 to 15',     3),
        ('16-17',        '16 to 17',     4),
        ('not_recorded', 'Not recorded', 5)
),
period_families as (
    select coalesce(youngest_child_age_band, 'not_recorded') as youngest_child_age_band
    from cases
    where referral_date between $period_start and $period_end
      and {{measure.with_children.numerator}}
),
age_counts as (
    select a.youngest_child_age, a.position, count(f.youngest_child_age_band) as families
    from age_bands a
    left join period_families f using (youngest_child_age_band)
    group by a.youngest_child_age, a.position
)
select
    youngest_child_age,
    families,
    cast(sum(families) over () as bigint)                         as families_with_children,
    round(100.0 * families / nullif(sum(families) over (), 0), 1) as pct_families
from age_counts
order by position
