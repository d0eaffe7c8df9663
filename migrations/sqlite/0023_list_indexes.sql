-- Lists that stay fast at a million cases (issue 14, item 5): an index for each list's
-- filter and order, walked from a keyset cursor (`(created_at, id) < ($t, $i)`), so
-- any page costs what the first does. A list over several departments or statuses is
-- one walk per (department, status), merged (src/store/case_lists.rs). Measured with
-- EXPLAIN ANALYZE at 1,000,000 cases (ARCHITECTURE.md, "Lists").

-- "my cases": the applicant's own, newest first (replaces (applicant_account, created_at))
DROP INDEX IF EXISTS cases_applicant;
CREATE INDEX cases_applicant_time ON cases (applicant_account, created_at DESC, id DESC);
-- … and the cases of the enterprise an applicant acts for
CREATE INDEX cases_enterprise_time ON cases (applicant_uscc, created_at DESC, id DESC)
    WHERE applicant_kind = 'enterprise';

-- worklists, desks and the department API: per department and status (replaces
-- (department, status)), and per department for lists of every status
DROP INDEX IF EXISTS cases_department_status;
CREATE INDEX cases_department_status_time ON cases (department, status, created_at DESC, id DESC);
CREATE INDEX cases_department_time ON cases (department, created_at DESC, id DESC);

-- deliveries, oldest first: per state, and per department and state (which also serves
-- a pull department's inbox lease: its pending events in order)
CREATE INDEX outbox_state_time ON outbox (state, created_at, id);
CREATE INDEX outbox_department_state_time ON outbox (department, state, created_at, id);
