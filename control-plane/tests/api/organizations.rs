//! Organizations over REST: invitations are single-use, expire, can be revoked and work only
//! for the invited email; roles limit who may change whom; an organization keeps an owner; a
//! personal organization stays its account's; the activity log is the organization's admins'.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_error, spawn_app};

/// An owner's session and a team organization they own.
struct Team {
    app: TestApp,
    owner: String,
    org: String,
}

impl Team {
    async fn new(pool: PgPool) -> Self {
        let app = spawn_app(pool).await;
        let owner = app.user_token("owner@example.com").await;
        let org = app.api().organization(&owner, "contoso").await;
        Self { app, owner, org }
    }

    /// A path under this organization.
    fn path(&self, rest: &str) -> String {
        format!("/api/v1/organizations/{}{rest}", self.org)
    }

    /// Invites `email` with `role` as the owner; returns the invitation token.
    async fn invite(&self, email: &str, role: &str) -> String {
        self.app
            .api()
            .invite(&self.owner, &self.org, email, role)
            .await
    }

    /// Brings `email` in with `role`; returns their session and user id.
    async fn member(&self, email: &str, role: &str) -> (String, String) {
        self.app
            .api()
            .member(&self.owner, &self.org, email, role)
            .await
    }

    /// `POST /invitations/{token}/accept` as `session`.
    async fn accept(&self, session: &str, invitation: &str) -> reqwest::Response {
        self.app
            .send(
                Method::POST,
                &format!("/api/v1/invitations/{invitation}/accept"),
                session,
            )
            .await
    }

    /// How many people are in the organization.
    async fn member_count(&self) -> i64 {
        sqlx::query_scalar(
            "select count(*) from organization_members where organization_id = $1::uuid",
        )
        .bind(&self.org)
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    /// Sets `user_id`'s role as `session`.
    async fn set_role(&self, session: &str, user_id: &str, role: &str) -> reqwest::Response {
        self.app
            .send_json(
                Method::PUT,
                &self.path(&format!("/members/{user_id}")),
                session,
                &json!({ "role": role }),
            )
            .await
    }

    /// Removes `user_id` (or leaves, for one's own id) as `session`.
    async fn remove(&self, session: &str, user_id: &str) -> reqwest::Response {
        self.app
            .send(
                Method::DELETE,
                &self.path(&format!("/members/{user_id}")),
                session,
            )
            .await
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_invitation_works_once_and_a_second_accept_is_410_invitation_used(pool: PgPool) {
    let team = Team::new(pool).await;
    let invitation = team.invite("ada@example.com", "member").await;
    let ada = team.app.user_token("ada@example.com").await;

    let joined = team.accept(&ada, &invitation).await;
    assert_eq!(joined.status(), StatusCode::OK);
    let joined: Value = joined.json().await.unwrap();
    assert_eq!(joined["id"], team.org.as_str());
    assert_eq!(joined["role"], "member");
    assert_eq!(team.member_count().await, 2);

    let again = team.accept(&ada, &invitation).await;
    assert_error(again, StatusCode::GONE, "invitation_used").await;
    assert_eq!(team.member_count().await, 2, "nobody joins twice");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_expired_invitation_is_410_invitation_expired_and_joins_nobody(pool: PgPool) {
    let team = Team::new(pool).await;
    let invitation = team.invite("ada@example.com", "member").await;
    sqlx::query(
        "update organization_invitations set expires_at = now() - interval '1 second' \
         where organization_id = $1::uuid",
    )
    .bind(&team.org)
    .execute(&team.app.pool)
    .await
    .unwrap();
    let ada = team.app.user_token("ada@example.com").await;

    let refused = team.accept(&ada, &invitation).await;
    assert_error(refused, StatusCode::GONE, "invitation_expired").await;
    assert_eq!(team.member_count().await, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_revoked_invitation_is_410_invitation_revoked_and_joins_nobody(pool: PgPool) {
    let team = Team::new(pool).await;
    let created = team
        .app
        .send_json(
            Method::POST,
            &team.path("/invitations"),
            &team.owner,
            &json!({"email": "ada@example.com", "role": "admin"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let revoked = team
        .app
        .send(
            Method::DELETE,
            &team.path(&format!("/invitations/{}", created["id"].as_str().unwrap())),
            &team.owner,
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let ada = team.app.user_token("ada@example.com").await;

    let refused = team.accept(&ada, created["token"].as_str().unwrap()).await;
    assert_error(refused, StatusCode::GONE, "invitation_revoked").await;
    assert_eq!(team.member_count().await, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_invitation_accepted_by_another_email_is_403_and_joins_nobody(pool: PgPool) {
    let team = Team::new(pool).await;
    let invitation = team.invite("ada@example.com", "member").await;
    let mallory = team.app.user_token("mallory@example.com").await;

    let refused = team.accept(&mallory, &invitation).await;
    assert_error(refused, StatusCode::FORBIDDEN, "invitation_email_mismatch").await;
    assert_eq!(team.member_count().await, 1);

    // The invitation still works for the person it was for.
    let ada = team.app.user_token("ada@example.com").await;
    assert_eq!(
        team.accept(&ada, &invitation).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_invitation_matches_the_email_whatever_its_case(pool: PgPool) {
    let team = Team::new(pool).await;
    let invitation = team.invite("ADA@Example.com", "member").await;
    let ada = team.app.user_token("ada@example.com").await;

    assert_eq!(
        team.accept(&ada, &invitation).await.status(),
        StatusCode::OK
    );
    assert_eq!(team.member_count().await, 2);
    let listed = team
        .app
        .json(Method::GET, &team.path("/invitations"), &team.owner)
        .await;
    assert_eq!(listed["items"][0]["email"], "ada@example.com");
    assert_eq!(listed["items"][0]["status"], "accepted");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_member_can_neither_raise_their_own_role_nor_invite(pool: PgPool) {
    let team = Team::new(pool).await;
    let (ada, ada_id) = team.member("ada@example.com", "member").await;

    for role in ["admin", "owner"] {
        let raised = team.set_role(&ada, &ada_id, role).await;
        assert_error(raised, StatusCode::FORBIDDEN, "role_required").await;
    }
    let invited = team
        .app
        .send_json(
            Method::POST,
            &team.path("/invitations"),
            &ada,
            &json!({"email": "bob@example.com", "role": "member"}),
        )
        .await;
    assert_error(invited, StatusCode::FORBIDDEN, "role_required").await;
    let role: String = sqlx::query_scalar(
        "select role from organization_members where user_id = $1::uuid and organization_id = $2::uuid",
    )
    .bind(&ada_id)
    .bind(&team.org)
    .fetch_one(&team.app.pool)
    .await
    .unwrap();
    assert_eq!(role, "member");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_admin_cannot_invite_an_owner_change_an_owners_role_or_become_owner(pool: PgPool) {
    let team = Team::new(pool).await;
    let (admin, admin_id) = team.member("admin@example.com", "admin").await;
    let owner_id = team.app.api().user_id(&team.owner).await;

    let invite_owner = team
        .app
        .send_json(
            Method::POST,
            &team.path("/invitations"),
            &admin,
            &json!({"email": "bob@example.com", "role": "owner"}),
        )
        .await;
    let body = assert_error(invite_owner, StatusCode::FORBIDDEN, "role_required").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("owner"),
        "the message names the role: {body}"
    );
    let demote_owner = team.set_role(&admin, &owner_id, "member").await;
    assert_error(demote_owner, StatusCode::FORBIDDEN, "role_required").await;
    let remove_owner = team.remove(&admin, &owner_id).await;
    assert_error(remove_owner, StatusCode::FORBIDDEN, "role_required").await;
    let promote_self = team.set_role(&admin, &admin_id, "owner").await;
    assert_error(promote_self, StatusCode::FORBIDDEN, "role_required").await;

    // What an admin may do: invite members and admins.
    let invite_member = team
        .app
        .send_json(
            Method::POST,
            &team.path("/invitations"),
            &admin,
            &json!({"email": "bob@example.com", "role": "member"}),
        )
        .await;
    assert_eq!(invite_member.status(), StatusCode::CREATED);
    let owners: i64 = sqlx::query_scalar(
        "select count(*) from organization_members where organization_id = $1::uuid and role = 'owner'",
    )
    .bind(&team.org)
    .fetch_one(&team.app.pool)
    .await
    .unwrap();
    assert_eq!(owners, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_last_owner_can_neither_leave_nor_step_down(pool: PgPool) {
    let team = Team::new(pool).await;
    let owner_id = team.app.api().user_id(&team.owner).await;
    team.member("ada@example.com", "member").await;

    let leave = team.remove(&team.owner, &owner_id).await;
    assert_error(leave, StatusCode::CONFLICT, "last_owner").await;
    let step_down = team.set_role(&team.owner, &owner_id, "admin").await;
    assert_error(step_down, StatusCode::CONFLICT, "last_owner").await;
    assert_eq!(team.member_count().await, 2);

    // With a second owner, the first may step down.
    let (_, bob_id) = team.member("bob@example.com", "owner").await;
    assert_eq!(
        team.set_role(&team.owner, &owner_id, "admin")
            .await
            .status(),
        StatusCode::OK
    );
    let roles: Vec<(String, String)> = sqlx::query_as(
        "select user_id::text, role from organization_members \
         where organization_id = $1::uuid and role = 'owner'",
    )
    .bind(&team.org)
    .fetch_all(&team.app.pool)
    .await
    .unwrap();
    assert_eq!(roles, [(bob_id, "owner".to_owned())]);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_personal_organization_cannot_be_deleted_left_or_invited_to(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = app.user_token("ada@example.com").await;
    let ada_id = app.api().user_id(&ada).await;
    let listed = app.json(Method::GET, "/api/v1/organizations", &ada).await;
    let personal = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["personal"] == true)
        .expect("a personal organization");
    assert_eq!(personal["role"], "owner");
    let id = personal["id"].as_str().unwrap();

    let deleted = app
        .send(Method::DELETE, &format!("/api/v1/organizations/{id}"), &ada)
        .await;
    assert_error(deleted, StatusCode::CONFLICT, "personal_organization").await;
    let left = app
        .send(
            Method::DELETE,
            &format!("/api/v1/organizations/{id}/members/{ada_id}"),
            &ada,
        )
        .await;
    assert_error(left, StatusCode::CONFLICT, "personal_organization").await;
    let invited = app
        .send_json(
            Method::POST,
            &format!("/api/v1/organizations/{id}/invitations"),
            &ada,
            &json!({"email": "bob@example.com", "role": "member"}),
        )
        .await;
    assert_error(invited, StatusCode::CONFLICT, "personal_organization").await;
    let still: i64 = sqlx::query_scalar(
        "select count(*) from organization_members where organization_id = $1::uuid",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(still, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn slugs_are_unique_and_validated(pool: PgPool) {
    let team = Team::new(pool).await;
    let bob = team.app.user_token("bob@example.com").await;
    let create = |token: String, body: Value| {
        let app = &team.app;
        async move {
            app.send_json(Method::POST, "/api/v1/organizations", &token, &body)
                .await
        }
    };

    let taken = create(bob.clone(), json!({"name": "Other", "slug": "contoso"})).await;
    assert_error(taken, StatusCode::CONFLICT, "slug_taken").await;
    let mine = team.app.api().organization(&bob, "fabrikam").await;
    let renamed = team
        .app
        .send_json(
            Method::PUT,
            &format!("/api/v1/organizations/{mine}"),
            &bob,
            &json!({"slug": "contoso"}),
        )
        .await;
    assert_error(renamed, StatusCode::CONFLICT, "slug_taken").await;

    for bad in [
        json!({"name": "X", "slug": "Contoso"}),
        json!({"name": "X", "slug": "-contoso"}),
        json!({"name": "X", "slug": "con_toso"}),
        json!({"name": "X", "slug": "a".repeat(49)}),
        json!({"name": "X", "slug": ""}),
        json!({"name": "X"}),
        json!({"slug": "nameless"}),
        json!({"name": "  ", "slug": "blank"}),
    ] {
        let refused = create(bob.clone(), bad.clone()).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let teams: i64 =
        sqlx::query_scalar("select count(*) from organizations where personal_user_id is null")
            .fetch_one(&team.app.pool)
            .await
            .unwrap();
    assert_eq!(teams, 2, "contoso and fabrikam only");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_account_owns_at_most_ten_team_organizations_by_default(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = app.user_token("ada@example.com").await;
    for n in 0..10 {
        app.api().organization(&ada, &format!("team-{n}")).await;
    }

    let eleventh = app
        .send_json(
            Method::POST,
            "/api/v1/organizations",
            &ada,
            &json!({"name": "One more", "slug": "team-10"}),
        )
        .await;
    let body = assert_error(eleventh, StatusCode::CONFLICT, "organization_limit_reached").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_ORGANIZATIONS_PER_USER"),
        "{body}"
    );
    let listed = app.json(Method::GET, "/api/v1/organizations", &ada).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        11,
        "ten teams and the personal one"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_sole_owner_of_a_team_with_others_cannot_delete_their_account(pool: PgPool) {
    let team = Team::new(pool).await;
    let (_, ada_id) = team.member("ada@example.com", "admin").await;

    let refused = team
        .app
        .send(Method::DELETE, "/api/v1/me", &team.owner)
        .await;
    let body = assert_error(refused, StatusCode::CONFLICT, "sole_owner").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("contoso"),
        "names the organization: {body}"
    );
    assert_eq!(team.app.me(&team.owner).await.status(), StatusCode::OK);
    assert_eq!(team.member_count().await, 2);

    // Alone in it again, the owner may go, and the organization goes too.
    assert_eq!(
        team.remove(&team.owner, &ada_id).await.status(),
        StatusCode::NO_CONTENT
    );
    let deleted = team
        .app
        .send(Method::DELETE, "/api/v1/me", &team.owner)
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let left: i64 = sqlx::query_scalar("select count(*) from organizations where id = $1::uuid")
        .bind(&team.org)
        .fetch_one(&team.app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_invitation_token_appears_neither_in_the_invitation_list_nor_in_the_activity_log(
    pool: PgPool,
) {
    let team = Team::new(pool).await;
    let pending = team.invite("ada@example.com", "member").await;
    team.member("bob@example.com", "member").await;
    assert!(pending.starts_with("mcpinv_"), "{pending}");

    let listed = team
        .app
        .send(Method::GET, &team.path("/invitations"), &team.owner)
        .await
        .text()
        .await
        .unwrap();
    let activity = team
        .app
        .send(
            Method::GET,
            &format!("/api/v1/activity?organization_id={}&limit=200", team.org),
            &team.owner,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains("ada@example.com"), "{listed}");
    assert!(activity.contains("invitation_accept"), "{activity}");
    for text in [&listed, &activity] {
        assert!(!text.contains(&pending), "token leaked in {text}");
        assert!(!text.contains("mcpinv_"), "a token leaked in {text}");
    }
    let stored: i64 =
        sqlx::query_scalar("select count(*) from activity where detail::text like '%mcpinv_%'")
            .fetch_one(&team.app.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0, "nor in the stored records");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn activity_in_an_organization_is_recorded_with_it_and_read_by_its_admins_only(pool: PgPool) {
    let team = Team::new(pool).await;
    let (admin, _) = team.member("admin@example.com", "admin").await;
    let (member, _) = team.member("ada@example.com", "member").await;
    let outsider = team.app.user_token("eve@example.com").await;
    let source = team
        .app
        .api()
        .source(
            &admin,
            &json!({"type": "box", "organization_id": team.org, "source_metadata": {
                "client_id": "abc123def456", "client_secret": "box-secret",
                "subject_type": "enterprise", "subject_id": "42"}}),
        )
        .await;
    team.app
        .api()
        .server(
            &admin,
            &json!({"name": "Team", "source_ids": [source], "organization_id": team.org}),
        )
        .await;

    let path = format!("/api/v1/activity?organization_id={}&limit=200", team.org);
    let read = team.app.send(Method::GET, &path, &admin).await;
    assert_eq!(read.status(), StatusCode::OK);
    let page: Value = read.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    for action in [
        "organization_create",
        "invitation_create",
        "invitation_accept",
        "source_create",
        "server_create",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(
        items
            .iter()
            .all(|i| i["organization_id"] == team.org.as_str()),
        "only this organization's records: {page}"
    );
    // The owner's own signup and sign-in are not the organization's.
    assert!(!actions.contains(&"signup"), "{actions:?}");

    let member_read = team.app.send(Method::GET, &path, &member).await;
    assert_error(member_read, StatusCode::FORBIDDEN, "role_required").await;
    let outsider_read = team.app.send(Method::GET, &path, &outsider).await;
    assert_eq!(outsider_read.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_invitation_link_can_be_previewed_without_a_session(pool: PgPool) {
    let team = Team::new(pool).await;
    let invitation = team.invite("Ada@Example.com", "admin").await;
    let preview = |token: String| {
        let app = &team.app;
        async move {
            app.request(Method::GET, &format!("/api/v1/invitations/{token}"))
                .send()
                .await
                .unwrap()
        }
    };

    let shown = preview(invitation.clone()).await;
    assert_eq!(shown.status(), StatusCode::OK);
    let shown: Value = shown.json().await.unwrap();
    assert_eq!(shown["organization_name"], "contoso");
    assert_eq!(shown["email"], "ada@example.com");
    assert_eq!(shown["role"], "admin");
    assert_eq!(shown["status"], "pending");
    assert!(
        shown.get("token").is_none() && shown.get("id").is_none(),
        "{shown}"
    );

    let unknown = preview("mcpinv_unknown".to_owned()).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let ada = team.app.user_token("ada@example.com").await;
    assert_eq!(
        team.accept(&ada, &invitation).await.status(),
        StatusCode::OK
    );
    let used: Value = preview(invitation).await.json().await.unwrap();
    assert_eq!(used["status"], "accepted");
}
