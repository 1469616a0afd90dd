/*---
title: Whole-family support offered to families known to social care
description: Among clients with children, the share offered whole-family support, for families known to children's social care and for those not known to it.
page: children
order: 40
chart: bar
x: social_care_group
y: pct_offered
labels:
  social_care_group: Family known to children's social care
  offered_families: Families offered whole-family support
  recorded_families: Families with whole-family support recorded
  pct_offered: Offered whole-family support
counts: [offered_families]
rates:
  pct_offered: {count: offered_families, base: recorded_families}
x_order: [Known to social care, Not known to social care, Involvement not known]
x_label: Family's involvement with children's social care
y_label: Share offered whole-family support (%)
params: [period_start, period_end]
notes: Among cases referred in the period with at least one child in the household and a record of whether whole-family support was offered. Known to social care means early help, a child in need or child protection plan, or a looked-after child. When most families are known to social care, most should be offered support that works with the children and the family as a whole.
---*/
with social_care_groups(social_care_group, position) as (
    values
        ('Known to social care',     1),
        ('Not known to social care', 2),
        ('Involvement not known',    3)
),
period_families as (
    select
        case
            when is_known_to_social_care       then 'Known to social care'
            when not is_known_to_social_care   then 'Not known to social care'
            else 'Involvement not known'
        end as social_care_group,
        whole_family_support
    from cases
    where referral_date between $period_start and $period_end
      and {{measure.with_children.numerator}}
      and whole_family_support is not null
),
group_counts as (
    select
        g.social_care_group,
        g.position,
        count(f.whole_family_support)                                       as recorded_families,
        count(f.whole_family_support) filter (where f.whole_family_support) as offered_families
    from social_care_groups g
    left join period_families f using (social_care_group)
    group by g.social_care_group, g.position
)
select
    social_care_group,
    offered_families,
    recorded_families,
    round(100.0 * offered_families / nullif(recorded_families, 0), 1) as pct_offered
from group_counts
order by position
