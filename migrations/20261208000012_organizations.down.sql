-- Back to one account per object: a personal organization's objects return to its account, a
-- team organization's to its earliest owner. Grants that are not their server's owner's, and
-- duplicates per (server, client), cannot exist in the old shape and are dropped.

create temporary table org_account on commit drop as
    select o.id as organization_id,
           coalesce(o.personal_user_id,
                    (select m.user_id from organization_members m
                      where m.organization_id = o.id and m.role = 'owner'
                      order by m.created_at, m.user_id limit 1)) as user_id
    from organizations o;
-- A team organization without an owner has nobody to return its objects to.
delete from organizations o using org_account a where a.organization_id = o.id and a.user_id is null;

drop index activity_organization_idx;
alter table activity drop column organization_id;
drop index tool_calls_server_user_called_at_idx;
alter table tool_calls drop column user_id;
drop table organization_invitations;

create or replace function record_endpoint_release() returns trigger
language plpgsql as $$
begin
    if tg_op = 'UPDATE' then
        if old.deleted_at is null and new.deleted_at is not null then
            insert into endpoint_releases (endpoint_host, user_id) values (old.endpoint_host, old.user_id);
        end if;
        return new;
    end if;
    if old.deleted_at is null then
        insert into endpoint_releases (endpoint_host, user_id) values (old.endpoint_host, old.user_id);
    end if;
    return old;
end;
$$;

drop trigger mcp_servers_end_unlisted_grants on mcp_servers;
drop function end_grants_of_unlisted_members();
drop trigger mcp_server_members_end_grants on mcp_server_members;
drop function end_grants_of_unlisted_member();
drop trigger organization_members_end_grants on organization_members;
drop function end_grants_of_lowered_member();
drop function role_rank(text);
drop table mcp_server_members;

alter table oauth_grants drop constraint oauth_grants_member_fkey;
alter table oauth_grants drop constraint oauth_grants_server_fkey;
drop index oauth_grants_member_idx;
alter table mcp_servers drop column member_access;

alter table mcp_server_sources drop constraint mcp_server_sources_server_fkey;
alter table mcp_server_sources drop constraint mcp_server_sources_source_fkey;
alter table mcp_server_keys drop constraint mcp_server_keys_server_fkey;
alter table sources drop constraint sources_organization_fkey;
alter table sources drop constraint sources_id_organization_id_key;
alter table mcp_servers drop constraint mcp_servers_organization_fkey;
alter table mcp_servers drop constraint mcp_servers_id_organization_id_key;

update sources t set organization_id = a.user_id from org_account a where a.organization_id = t.organization_id;
update mcp_servers t set organization_id = a.user_id from org_account a where a.organization_id = t.organization_id;
update mcp_server_sources t set organization_id = a.user_id from org_account a where a.organization_id = t.organization_id;
update mcp_server_keys t set organization_id = a.user_id from org_account a where a.organization_id = t.organization_id;
update endpoint_releases t set organization_id = a.user_id from org_account a where a.organization_id = t.organization_id;

alter table sources rename column organization_id to user_id;
alter table mcp_servers rename column organization_id to user_id;
alter table mcp_server_sources rename column organization_id to user_id;
alter table mcp_server_keys rename column organization_id to user_id;
alter table endpoint_releases rename column organization_id to user_id;
alter index sources_organization_id_created_at_idx rename to sources_user_id_created_at_idx;
alter index mcp_servers_organization_id_created_at_idx rename to mcp_servers_user_id_created_at_idx;
alter table mcp_server_keys drop column created_by;

alter table sources
    add constraint sources_id_user_id_key unique (id, user_id),
    add constraint sources_user_id_fkey foreign key (user_id) references users (id) on delete cascade;
alter table mcp_servers
    add constraint mcp_servers_id_user_id_key unique (id, user_id),
    add constraint mcp_servers_user_id_fkey foreign key (user_id) references users (id) on delete cascade;
alter table mcp_server_sources
    add constraint mcp_server_sources_server_fkey foreign key (server_id, user_id)
        references mcp_servers (id, user_id) on delete cascade,
    add constraint mcp_server_sources_source_fkey foreign key (source_id, user_id)
        references sources (id, user_id) on delete cascade;
alter table mcp_server_keys
    add constraint mcp_server_keys_server_fkey foreign key (server_id, user_id)
        references mcp_servers (id, user_id) on delete cascade;

delete from oauth_grants g using mcp_servers s where s.id = g.server_id and s.user_id <> g.user_id;
alter table oauth_grants drop constraint oauth_grants_server_client_user_key;
alter table oauth_grants add constraint oauth_grants_server_client_key unique (server_id, client_id);
alter table oauth_grants drop column organization_id;
alter table oauth_grants add constraint oauth_grants_server_fkey foreign key (server_id, user_id)
    references mcp_servers (id, user_id) on delete cascade;

drop trigger users_create_personal_organization on users;
drop function create_personal_organization();
drop trigger organization_members_personal_check on organization_members;
drop function check_personal_membership();
drop table organization_members;
drop table organizations;
