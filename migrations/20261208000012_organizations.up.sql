-- Organizations: every source, server and access key belongs to one organization instead of one
-- account. Each account has a personal organization (made here for existing accounts, and by a
-- trigger for new ones), so one person's use is unchanged. Team organizations have members with
-- roles; a grant (an agent's OAuth connection) belongs to the member who approved it and ends in
-- the schema itself when that member leaves.

create table organizations (
    id               uuid        not null default gen_random_uuid(),
    name             text        not null,
    -- Team organizations only; personal ones have none (they are never addressed by slug).
    slug             text,
    -- The account a personal organization belongs to; null for team organizations.
    personal_user_id uuid,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint organizations_pkey primary key (id),
    constraint organizations_personal_user_id_key unique (personal_user_id),
    constraint organizations_personal_user_id_fkey foreign key (personal_user_id)
        references users (id) on delete cascade,
    constraint organizations_name_check check (char_length(name) between 1 and 100),
    constraint organizations_slug_check
        check (slug ~ '^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$'),
    constraint organizations_kind_check check ((personal_user_id is null) = (slug is not null))
);
create unique index organizations_slug_key on organizations (slug);

create trigger organizations_set_updated_at
    before update on organizations
    for each row execute function set_updated_at();

create table organization_members (
    organization_id uuid        not null,
    user_id         uuid        not null,
    role            text        not null,
    created_at      timestamptz not null default now(),
    constraint organization_members_pkey primary key (organization_id, user_id),
    constraint organization_members_organization_fkey foreign key (organization_id)
        references organizations (id) on delete cascade,
    constraint organization_members_user_fkey foreign key (user_id)
        references users (id) on delete cascade,
    constraint organization_members_role_check check (role in ('owner', 'admin', 'member'))
);
create index organization_members_user_id_idx on organization_members (user_id);

-- A personal organization has exactly one member, its account, as owner.
create function check_personal_membership() returns trigger
language plpgsql as $$
declare
    personal uuid;
begin
    select personal_user_id into personal from organizations where id = new.organization_id;
    if personal is not null and (new.user_id <> personal or new.role <> 'owner') then
        raise exception 'a personal organization has only its own account, as owner'
            using errcode = 'check_violation', constraint = 'organization_members_personal_check';
    end if;
    return new;
end;
$$;
create trigger organization_members_personal_check
    before insert or update on organization_members
    for each row execute function check_personal_membership();

-- Every account gets its personal organization when it is made.
create function create_personal_organization() returns trigger
language plpgsql as $$
declare
    org uuid;
begin
    insert into organizations (name, personal_user_id) values ('Personal', new.id) returning id into org;
    insert into organization_members (organization_id, user_id, role) values (org, new.id, 'owner');
    return null;
end;
$$;
create trigger users_create_personal_organization
    after insert on users
    for each row execute function create_personal_organization();

insert into organizations (name, personal_user_id) select 'Personal', id from users;
insert into organization_members (organization_id, user_id, role)
    select id, personal_user_id, 'owner' from organizations;

-- Objects move from their account to its personal organization. Foreign keys that tie them to
-- one account are dropped first and remade on the organization.
alter table mcp_server_sources drop constraint mcp_server_sources_server_fkey;
alter table mcp_server_sources drop constraint mcp_server_sources_source_fkey;
alter table mcp_server_keys drop constraint mcp_server_keys_server_fkey;
alter table oauth_grants drop constraint oauth_grants_server_fkey;
alter table sources drop constraint sources_user_id_fkey;
alter table sources drop constraint sources_id_user_id_key;
alter table mcp_servers drop constraint mcp_servers_user_id_fkey;
alter table mcp_servers drop constraint mcp_servers_id_user_id_key;

-- Access keys remember who made them (the account, before it becomes the organization).
alter table mcp_server_keys add column created_by uuid;
update mcp_server_keys set created_by = user_id;
alter table mcp_server_keys add constraint mcp_server_keys_created_by_fkey
    foreign key (created_by) references users (id) on delete set null;

update sources t set user_id = o.id from organizations o where o.personal_user_id = t.user_id;
update mcp_servers t set user_id = o.id from organizations o where o.personal_user_id = t.user_id;
update mcp_server_sources t set user_id = o.id from organizations o where o.personal_user_id = t.user_id;
update mcp_server_keys t set user_id = o.id from organizations o where o.personal_user_id = t.user_id;
update endpoint_releases t set user_id = o.id from organizations o where o.personal_user_id = t.user_id;

alter table sources rename column user_id to organization_id;
alter table mcp_servers rename column user_id to organization_id;
alter table mcp_server_sources rename column user_id to organization_id;
alter table mcp_server_keys rename column user_id to organization_id;
alter table endpoint_releases rename column user_id to organization_id;
alter index sources_user_id_created_at_idx rename to sources_organization_id_created_at_idx;
alter index mcp_servers_user_id_created_at_idx rename to mcp_servers_organization_id_created_at_idx;

alter table sources
    add constraint sources_organization_fkey foreign key (organization_id)
        references organizations (id) on delete cascade,
    add constraint sources_id_organization_id_key unique (id, organization_id);
alter table mcp_servers
    add constraint mcp_servers_organization_fkey foreign key (organization_id)
        references organizations (id) on delete cascade,
    add constraint mcp_servers_id_organization_id_key unique (id, organization_id);
-- A server and its sources are of one organization: the database refuses any other link.
alter table mcp_server_sources
    add constraint mcp_server_sources_server_fkey foreign key (server_id, organization_id)
        references mcp_servers (id, organization_id) on delete cascade,
    add constraint mcp_server_sources_source_fkey foreign key (source_id, organization_id)
        references sources (id, organization_id) on delete cascade;
alter table mcp_server_keys
    add constraint mcp_server_keys_server_fkey foreign key (server_id, organization_id)
        references mcp_servers (id, organization_id) on delete cascade;

-- Who may connect an agent to a server: every member (`all`) or the members listed on it.
-- Owners and admins may always.
alter table mcp_servers add column member_access text not null default 'all',
    add constraint mcp_servers_member_access_check check (member_access in ('all', 'listed'));

create table mcp_server_members (
    server_id       uuid        not null,
    organization_id uuid        not null,
    user_id         uuid        not null,
    created_at      timestamptz not null default now(),
    constraint mcp_server_members_pkey primary key (server_id, user_id),
    constraint mcp_server_members_server_fkey foreign key (server_id, organization_id)
        references mcp_servers (id, organization_id) on delete cascade,
    -- Leaving the organization takes the person off its servers.
    constraint mcp_server_members_member_fkey foreign key (organization_id, user_id)
        references organization_members (organization_id, user_id) on delete cascade
);
create index mcp_server_members_member_idx on mcp_server_members (organization_id, user_id);

-- A grant is the approving member's, on a server of their organization. Its foreign key to the
-- membership ends it (and, through the announce trigger, its tokens on every gateway) when the
-- member leaves.
alter table oauth_grants add column organization_id uuid;
update oauth_grants g set organization_id = s.organization_id from mcp_servers s where s.id = g.server_id;
alter table oauth_grants alter column organization_id set not null;
alter table oauth_grants
    add constraint oauth_grants_server_fkey foreign key (server_id, organization_id)
        references mcp_servers (id, organization_id) on delete cascade,
    add constraint oauth_grants_member_fkey foreign key (organization_id, user_id)
        references organization_members (organization_id, user_id) on delete cascade;
-- One grant per (server, client, person): two members may connect the same client.
alter table oauth_grants drop constraint oauth_grants_server_client_key;
alter table oauth_grants add constraint oauth_grants_server_client_user_key
    unique (server_id, client_id, user_id);
create index oauth_grants_member_idx on oauth_grants (organization_id, user_id);

-- A member whose role is lowered loses their connections (they approved them under the old
-- role); so does one taken off a `listed` server, or every unlisted member when a server becomes
-- `listed`.
create function role_rank(role text) returns integer
language sql immutable as $$
    select case role when 'owner' then 3 when 'admin' then 2 else 1 end
$$;

create function end_grants_of_lowered_member() returns trigger
language plpgsql as $$
begin
    delete from oauth_grants where organization_id = new.organization_id and user_id = new.user_id;
    return null;
end;
$$;
create trigger organization_members_end_grants
    after update of role on organization_members
    for each row when (role_rank(new.role) < role_rank(old.role))
    execute function end_grants_of_lowered_member();

create function end_grants_of_unlisted_member() returns trigger
language plpgsql as $$
begin
    delete from oauth_grants g
     using mcp_servers s, organization_members m
     where g.server_id = old.server_id and g.user_id = old.user_id
       and s.id = g.server_id and s.member_access = 'listed'
       and m.organization_id = g.organization_id and m.user_id = g.user_id and m.role = 'member';
    return null;
end;
$$;
create trigger mcp_server_members_end_grants
    after delete on mcp_server_members
    for each row execute function end_grants_of_unlisted_member();

create function end_grants_of_unlisted_members() returns trigger
language plpgsql as $$
begin
    delete from oauth_grants g
     using organization_members m
     where g.server_id = new.id
       and m.organization_id = g.organization_id and m.user_id = g.user_id and m.role = 'member'
       and not exists (select 1 from mcp_server_members l
                        where l.server_id = g.server_id and l.user_id = g.user_id);
    return null;
end;
$$;
create trigger mcp_servers_end_unlisted_grants
    after update of member_access on mcp_servers
    for each row when (old.member_access = 'all' and new.member_access = 'listed')
    execute function end_grants_of_unlisted_members();

-- Endpoint releases remember the organization that let the endpoint go.
create or replace function record_endpoint_release() returns trigger
language plpgsql as $$
begin
    if tg_op = 'UPDATE' then
        if old.deleted_at is null and new.deleted_at is not null then
            insert into endpoint_releases (endpoint_host, organization_id)
            values (old.endpoint_host, old.organization_id);
        end if;
        return new;
    end if;
    if old.deleted_at is null then
        insert into endpoint_releases (endpoint_host, organization_id)
        values (old.endpoint_host, old.organization_id);
    end if;
    return old;
end;
$$;

-- Invitations: a one-time link (only its hash is kept) for one email and role.
create table organization_invitations (
    id              uuid        not null default gen_random_uuid(),
    organization_id uuid        not null,
    email           text        not null,
    role            text        not null,
    token_hash      bytea       not null,
    invited_by      uuid,
    created_at      timestamptz not null default now(),
    expires_at      timestamptz not null,
    accepted_at     timestamptz,
    accepted_by     uuid,
    revoked_at      timestamptz,
    constraint organization_invitations_pkey primary key (id),
    constraint organization_invitations_token_hash_key unique (token_hash),
    constraint organization_invitations_organization_fkey foreign key (organization_id)
        references organizations (id) on delete cascade,
    constraint organization_invitations_invited_by_fkey foreign key (invited_by)
        references users (id) on delete set null,
    constraint organization_invitations_accepted_by_fkey foreign key (accepted_by)
        references users (id) on delete set null,
    constraint organization_invitations_email_check
        check (char_length(email) between 3 and 254 and email = lower(email)),
    constraint organization_invitations_role_check check (role in ('owner', 'admin', 'member')),
    constraint organization_invitations_hash_check check (octet_length(token_hash) = 32)
);
create index organization_invitations_organization_idx
    on organization_invitations (organization_id, created_at desc);

-- Calls carry the person whose grant made them (null for access keys and public servers).
alter table tool_calls add column user_id uuid;
update tool_calls c set user_id = g.user_id from oauth_grants g where g.id = c.grant_id;
create index tool_calls_server_user_called_at_idx
    on tool_calls (server_id, user_id, called_at desc, id desc) where user_id is not null;

-- The activity log records which organization an action was in.
alter table activity add column organization_id uuid;
update activity a set organization_id = o.id from organizations o where o.personal_user_id = a.user_id;
create index activity_organization_idx on activity (organization_id, created_at desc, id desc)
    where organization_id is not null;
