-- The worklist sorted by soonest due date (`sort=due`: due date ascending, cases
-- without one last, then newest) walks this index per (department, status) and merges
-- the walks, as the newest-first lists do (issue 14, item 5; src/store/case_lists.rs).
CREATE INDEX cases_department_status_due ON cases (department, status, due_on, created_at DESC, id DESC);
