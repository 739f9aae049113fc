-- Wrong redemptions of an authorization code (a wrong PKCE verifier, client, redirect URI or
-- resource). They no longer spend the code, so the client's own redemption still works; the
-- count bounds guessing: after a few the code is deleted.
alter table oauth_codes add column failed_attempts integer not null default 0;
