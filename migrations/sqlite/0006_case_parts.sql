-- Joint cases (联办件): each routed department's own conclusion, {department: {result, on}}.
-- The case concludes only when every routed department has concluded.
ALTER TABLE cases ADD COLUMN parts TEXT NOT NULL DEFAULT '{}';
