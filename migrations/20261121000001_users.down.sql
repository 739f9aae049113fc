drop table if exists revoked_tokens;
drop table if exists users;
drop function if exists set_updated_at();
