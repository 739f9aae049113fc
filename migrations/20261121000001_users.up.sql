-- Accounts of the control plane, compatible with the seed schema (DATABASE_SETUP).
-- gen_random_uuid() is built into PostgreSQL 13 and later: no extension needed.

create function set_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

create table users (
    id              uuid        not null default gen_random_uuid(),
    email           text        not null,
    hashed_password text        not null,
    role            text        not null default 'user',
    -- Bumped when the password changes: every session token carries the version it was issued
    -- under, so all earlier tokens stop working at once.
    token_version   integer     not null default 0,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint users_pkey primary key (id),
    constraint users_role_check check (role in ('user', 'admin')),
    constraint users_email_check check (char_length(email) between 3 and 254 and email = lower(email)),
    constraint users_hashed_password_check check (hashed_password like '$2%')
);

-- Unique regardless of letter case; the application stores emails lower-cased as well.
create unique index users_email_key on users (lower(email));

create trigger users_set_updated_at
    before update on users
    for each row execute function set_updated_at();

-- Session tokens revoked before their expiry (signout). Rows past `expires_at` are useless and
-- are deleted by the control plane's cleanup task.
create table revoked_tokens (
    jti        uuid        not null,
    user_id    uuid        not null,
    expires_at timestamptz not null,
    constraint revoked_tokens_pkey primary key (jti),
    constraint revoked_tokens_user_id_fkey foreign key (user_id) references users (id) on delete cascade
);

create index revoked_tokens_expires_at_idx on revoked_tokens (expires_at);
create index revoked_tokens_user_id_idx on revoked_tokens (user_id);
