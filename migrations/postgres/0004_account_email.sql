-- The email address from the provider's email claim, for notification mail.
ALTER TABLE accounts ADD COLUMN email TEXT;
