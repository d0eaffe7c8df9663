-- The worklist sorted by soonest due date (`sort=due`: due date ascending, cases
-- without one last, then newest) is one walk per (department, status), merged, as the
-- newest-first lists are (issue 14, item 5; src/store/case_lists.rs). On PostgreSQL this
-- index gives each walk in order; SQLite's index keeps NULLs first, so here it narrows
-- each walk and the walk's rows are sorted.
CREATE INDEX cases_department_status_due ON cases (department, status, due_on, created_at DESC, id DESC);
