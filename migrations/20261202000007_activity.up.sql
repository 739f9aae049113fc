-- The control plane's activity log: who changed what, when and from where. One row per
-- state-changing action of the REST API, the OAuth pages and the command line (sign-up,
-- sign-in success and failure, password change, account deletion, source, server, key and grant
-- changes, administrator actions, key rotations). Only the control plane reads or writes it;
-- gateways have no privilege on it.
--
-- * No foreign keys: a record outlives what it names. The record of an account deletion must
--   survive the account, and a deleted server's history stays readable to an administrator
--   until the retention purge (`ACTIVITY_RETENTION_DAYS`) removes it.
-- * `actor_id` is the user who acted (null for anonymous requests, the command line and OAuth
--   clients); `user_id` is the account the record belongs to: the actor itself, the owner of
--   what an administrator or an agent changed, or the account a failed sign-in named. A user
--   reads the rows where either is theirs.
-- * Never a secret or a request body: `detail` holds only values the code chose (a source
--   type, a role, which fields of a server changed, counts, public key ids).
create table activity (
    id          bigint      generated always as identity,
    created_at  timestamptz not null default now(),
    actor_kind  text        not null,
    actor_id    uuid,
    user_id     uuid,
    action      text        not null,
    outcome     text        not null default 'success',
    error_code  text,
    source_id   uuid,
    server_id   uuid,
    key_id      uuid,
    grant_id    uuid,
    detail      jsonb       not null default '{}'::jsonb,
    client_addr inet,
    request_id  text,
    constraint activity_pkey primary key (id),
    constraint activity_actor_kind_check
        check (actor_kind in ('user', 'anonymous', 'cli', 'oauth_client')),
    constraint activity_actor_id_check check ((actor_kind = 'user') = (actor_id is not null)),
    constraint activity_action_check check (action ~ '^[a-z][a-z_]{0,62}$'),
    constraint activity_outcome_check check (outcome in ('success', 'failure')),
    constraint activity_error_code_check
        check ((outcome = 'failure') = (error_code is not null) and error_code ~ '^[a-z][a-z_]{0,62}$'),
    constraint activity_detail_check check (jsonb_typeof(detail) = 'object'),
    constraint activity_request_id_check check (char_length(request_id) <= 128)
);
-- A user's own records, newest first (as owner, and as actor for administrators' actions).
create index activity_user_idx on activity (user_id, created_at desc, id desc) where user_id is not null;
create index activity_actor_idx on activity (actor_id, created_at desc, id desc) where actor_id is not null;
-- Everyone's records for administrators, and the retention purge.
create index activity_created_at_idx on activity (created_at desc, id desc);
