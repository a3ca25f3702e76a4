-- planning: the plan a generated task was made for (planning-plans.generate), so a plan's tasks can be listed. A
-- removed plan leaves its tasks in place, no longer linked.
ALTER TABLE planning_entities ADD COLUMN plan_id uuid REFERENCES planning_plans (id) ON DELETE SET NULL;
CREATE INDEX planning_entities_plan ON planning_entities (plan_id) WHERE plan_id IS NOT NULL;
