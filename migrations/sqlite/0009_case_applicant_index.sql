-- A walk-in applicant's resident ID number as a blind index (HMAC under the gateway's
-- index key, never the number), so a case a clerk took in at the window can be matched
-- to the person's account when they log in.
ALTER TABLE cases ADD COLUMN applicant_index TEXT;
CREATE INDEX cases_by_applicant_index ON cases (applicant_index) WHERE applicant_account IS NULL;
