-- Durable notification mail: a notice is written `pending` in the case's transaction and
-- the mail worker sends it, retrying with backoff, until it is `sent`, `failed` (after the
-- last attempt, or refused for good) or `none` (no address, or no SMTP relay).
ALTER TABLE notifications ADD COLUMN email_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN email_next_at TEXT;      -- null: due now
ALTER TABLE notifications ADD COLUMN email_lease_until TEXT;  -- a worker is sending it
ALTER TABLE notifications ADD COLUMN email_error TEXT;        -- what went wrong (a kind, never the address)
CREATE INDEX notifications_mail_due ON notifications (email_next_at) WHERE email_state = 'pending';
