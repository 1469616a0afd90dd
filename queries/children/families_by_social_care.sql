/*---
title: Families' involvement with children's social care
description: Among clients with children, the share by the highest level of children's social-care involvement with the family, from none to a child being looked after.
page: children
order: 30
chart: bar
x: social_care_level
y: pct_families
labels:
  social_care_level: Children's social-care involvement
  families: Families
  families_with_children: Number of clients with children
  pct_families: Share of families
counts: [families]
rates:
  pct_families: {count: families, base: families_with_children}
x_order: [None, Early help, Child in need, Child protection, Looked after, Not known]
x_label: Highest level of children's social-care involvement
y_label: Share of clients with children (%)
params: [period_start, period_end]
notes: Among cases referred in the period with at least one child in the household; "Not known" includes families where involvement was not recorded. Nationally, 54% of children exposed to domestic abuse were known to children's social care (CAADA, In plain sight, 2014).
---*/
with period_families as (
    select
        case coalesce(social_care, 'unknown')
            when 'none'             then 'None'
            when 'early_help'       then 'Early help'
            when 'child_in_need'    then 'Child in need'
            when 'child_protection' then 'Child protection'
            when 'looked_after'     then 'Looked after'
            else 'Not known'
        end as social_care_level
    from cases
    where referral_date between $period_start and $period_end
      and {{measure.with_children.numerator}}
),
levels(social_care_level, position) as (
    values
        ('None',             1),
        ('Early help',       2),
        ('Child in need',    3),
        ('Child protection', 4),
        ('Looked after',     5),
        ('Not known',        6)
),
level_counts as (
    select l.social_care_level, l.position, count(f.social_care_level) as families
    from levels l
    left join period_families f using (social_care_level)
    group by l.social_care_level, l.position
)
select
    social_care_level,
    families,
    cast(sum(families) over () as bigint)                         as families_with_children,
    round(100.0 * families / nullif(sum(families) over (), 0), 1) as pct_families
from level_counts
order by position
