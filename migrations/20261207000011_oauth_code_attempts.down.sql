-- Back to codes without a count of wrong redemptions.
alter table oauth_codes drop column failed_attempts;
