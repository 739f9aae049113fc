//! The console's organization pages through their forms, as a browser without script would
//! use them: the switcher, creating a team organization, inviting (the link shown once),
//! accepting, and a member's pages that link to nothing the API would refuse them.
//! (The walk in a real browser is in `console_org_browser.rs`.)

use regex::Regex;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

use crate::{
    console::{Person, csrf},
    helpers::spawn_app,
};

/// Creates a team organization through the form; returns its id.
pub async fn organization(person: &Person, name: &str, slug: &str) -> String {
    let page = person
        .post(
            "/organizations",
            "/organizations",
            &[("name", name), ("slug", slug)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let location = page.location.expect("to the organization");
    location.trim_start_matches("/organizations/").to_owned()
}

/// Invites `email` through the form and returns the accept link's path, read from the one
/// page view that shows it.
pub async fn invite(person: &Person, org: &str, email: &str, role: &str) -> String {
    let page = person
        .post(
            &format!("/organizations/{org}"),
            &format!("/organizations/{org}/invitations"),
            &[("email", email), ("role", role)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let shown = person.get(&format!("/organizations/{org}")).await;
    assert!(
        shown.html.contains(&format!("Invitation link for {email}")),
        "{}",
        shown.html
    );
    accept_path(&shown.html).expect("the accept link, this once")
}

fn accept_path(html: &str) -> Option<String> {
    let link = Regex::new(r#"<code id="invite-link">[^<]*?(/invitations/[A-Za-z0-9_\-]+)</code>"#)
        .unwrap();
    link.captures(html).map(|c| c[1].to_owned())
}

/// The option of the organization switcher that is chosen.
fn chosen_org(html: &str) -> String {
    let chosen =
        Regex::new(r#"<option value="([0-9a-f-]{36})" selected>([^<]+)</option>"#).unwrap();
    let found = chosen.captures(html).expect("a chosen organization");
    found[2].to_owned()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_switcher_lists_every_organization_and_sets_where_servers_are_made(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let servers = ada.get("/servers").await;
    assert_eq!(chosen_org(&servers.html), "Personal");

    let contoso = organization(&ada, "Contoso", "contoso").await;
    let servers = ada.get("/servers").await;
    let options = Regex::new(r#"<option value="[0-9a-f-]{36}"[^>]*>([^<]+)</option>"#).unwrap();
    let names: Vec<String> = options
        .captures_iter(&servers.html)
        .map(|c| c[1].to_owned())
        .collect();
    assert_eq!(names, ["Personal", "Contoso"], "personal first");
    assert_eq!(
        chosen_org(&servers.html),
        "Contoso",
        "the new one is current"
    );

    // A server made now is Contoso's.
    let server = ada.server("Shared", &[]).await;
    let token = app.user_token("ada@example.com").await;
    let shown = app
        .json(
            Method::GET,
            &format!("/api/v1/mcp-servers/{server}"),
            &token,
        )
        .await;
    assert_eq!(shown["organization_id"], Value::String(contoso.clone()));

    // Switching back (the switcher's GET form) shows the personal servers only.
    let orgs = app.json(Method::GET, "/api/v1/organizations", &token).await;
    let personal = orgs["items"][0]["id"].as_str().unwrap().to_owned();
    let mine = ada.get(&format!("/servers?org={personal}")).await;
    assert_eq!(chosen_org(&mine.html), "Personal");
    assert!(
        !mine.html.contains("Shared"),
        "Contoso's server is not listed"
    );
    let again = ada.get("/servers").await;
    assert_eq!(
        chosen_org(&again.html),
        "Personal",
        "the choice is remembered"
    );
    let theirs = ada.get(&format!("/servers?org={contoso}")).await;
    assert!(theirs.html.contains("Shared"));

    // Someone else's organization cannot be chosen: the personal one is shown instead.
    let eve = Person::new(&app);
    eve.sign_up("eve@example.com").await;
    let refused = eve.get(&format!("/servers?org={contoso}")).await;
    assert_eq!(chosen_org(&refused.html), "Personal");
    assert!(!refused.html.contains("Contoso") && !refused.html.contains("Shared"));
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_invitation_link_is_shown_once_and_a_reload_makes_no_other(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let org = organization(&ada, "Contoso", "contoso").await;

    let link = invite(&ada, &org, "bob@example.com", "member").await;
    let reload = ada.get(&format!("/organizations/{org}")).await;
    assert_eq!(reload.status, StatusCode::OK);
    assert!(accept_path(&reload.html).is_none(), "shown once");
    assert!(
        !reload.html.contains(&link),
        "the token appears nowhere else"
    );
    assert!(reload.html.contains("bob@example.com") && reload.html.contains("pending"));
    let token = app.user_token("ada@example.com").await;
    let list = app
        .json(
            Method::GET,
            &format!("/api/v1/organizations/{org}/invitations"),
            &token,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "one invitation");

    // The link works: anyone holding it sees what it is for.
    let visitor = Person::new(&app);
    let page = visitor.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    for shown in ["Contoso", "member", "bob@example.com", "signin?next="] {
        assert!(page.html.contains(shown), "the accept page lacks {shown}");
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_member_gets_no_link_to_sources_keys_usage_or_members(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let org = organization(&ada, "Contoso", "contoso").await;
    let source = ada.box_source("box-secret").await;
    let server = ada.server("Shared", &[&source]).await;
    let link = invite(&ada, &org, "bob@example.com", "member").await;

    // Bob signs up from the link, comes back to it and accepts.
    let bob = Person::new(&app);
    let signed = bob
        .post(
            &format!("/signup?next={link}"),
            "/signup",
            &[
                ("email", "bob@example.com"),
                ("password", crate::helpers::PASSWORD),
                ("next", &link),
            ],
        )
        .await;
    assert_eq!(signed.location.as_deref(), Some(link.as_str()));
    let page = bob.get(&link).await;
    assert!(page.html.contains(r#"id="accept""#), "{}", page.html);
    let accepted = bob.post(&link, &format!("{link}/accept"), &[]).await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.html);
    assert_eq!(accepted.location, Some(format!("/servers?org={org}")));

    let list = bob.get(&format!("/servers?org={org}")).await;
    assert!(
        list.html.contains("Shared"),
        "the server is shared with him"
    );
    let server_page = bob.get(&format!("/servers/{server}")).await;
    assert_eq!(server_page.status, StatusCode::OK);
    assert!(server_page.html.contains("https://mcp1.example.com/mcp"));
    for page in [&list, &server_page] {
        for hidden in [
            "href=\"/sources",
            "/keys",
            "/usage",
            "new-server",
            "box · 42",
            "abc123",
            "Access keys",
            "/delete",
            "/members",
        ] {
            assert!(!page.html.contains(hidden), "a member is shown {hidden}");
        }
    }
    let own = bob.get(&format!("/organizations/{org}")).await;
    assert!(own.html.contains("id=\"leave\"") && !own.html.contains("id=\"members\""));
    // Asked for anyway: a readable refusal, not JSON.
    let sources = bob.get("/sources").await;
    assert_eq!(sources.status, StatusCode::FORBIDDEN);
    assert!(sources.html.contains("<h1") && !sources.html.trim_start().starts_with('{'));

    // The invitation is used: the link says so, also to someone else.
    let eve = Person::new(&app);
    eve.sign_up("eve@example.com").await;
    let used = eve.get(&link).await;
    assert!(used.html.contains("has been used"), "{}", used.html);
    let token = csrf(&used.html);
    let refused = eve
        .post_with(&format!("{link}/accept"), &token, &app.address, &[])
        .await;
    assert_eq!(refused.status, StatusCode::GONE);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_wrong_account_is_told_and_a_revoked_link_says_so(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    let org = organization(&ada, "Contoso", "contoso").await;
    let link = invite(&ada, &org, "bob@example.com", "admin").await;

    let eve = Person::new(&app);
    eve.sign_up("eve@example.com").await;
    let wrong = eve.get(&link).await;
    assert!(wrong.html.contains("wrong-account"), "{}", wrong.html);
    assert!(!wrong.html.contains(r#"id="accept""#));
    let out = eve.post(&link, "/signout", &[("next", &link)]).await;
    let back = format!("/signin?next={}", link.replace('/', "%2F"));
    assert_eq!(out.location, Some(back));

    let token = app.user_token("ada@example.com").await;
    let list = app
        .json(
            Method::GET,
            &format!("/api/v1/organizations/{org}/invitations"),
            &token,
        )
        .await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let revoke = format!("/organizations/{org}/invitations/{id}/revoke");
    let asked = ada.get(&revoke).await;
    assert!(
        asked
            .html
            .contains("Revoke the invitation of bob@example.com")
    );
    let done = ada.post(&revoke, &revoke, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let gone = Person::new(&app).get(&link).await;
    assert!(gone.html.contains("withdrawn"), "{}", gone.html);
    let nonsense = Person::new(&app).get("/invitations/nonsense").await;
    assert_eq!(nonsense.status, StatusCode::NOT_FOUND);
    assert!(nonsense.html.contains("not valid"));
}

/// Ada's team organization with Bob as a member (joined through the console); returns the
/// organization's id and Bob's browser.
async fn team_with_bob(app: &crate::helpers::TestApp, ada: &Person) -> (String, Person) {
    ada.sign_up("ada@example.com").await;
    let org = organization(ada, "Contoso", "contoso").await;
    let link = invite(ada, &org, "bob@example.com", "member").await;
    let bob = Person::new(app);
    bob.sign_up("bob@example.com").await;
    let accepted = bob.post(&link, &format!("{link}/accept"), &[]).await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.html);
    (org, bob)
}

/// The organization's members and invitations, to compare before and after.
async fn org_rows(pool: &PgPool, org: &str) -> Vec<String> {
    let org: uuid::Uuid = org.parse().unwrap();
    sqlx::query_scalar(
        "select 'members:' || coalesce(json_agg(m order by m.user_id)::text, '') \
           from organization_members m where m.organization_id = $1 \
         union all select 'invitations:' || coalesce(json_agg(i order by i.id)::text, '') \
           from organization_invitations i where i.organization_id = $1",
    )
    .bind(org)
    .fetch_all(pool)
    .await
    .expect("rows")
}

async fn user_id(app: &crate::helpers::TestApp, email: &str) -> String {
    let token = app.user_token(email).await;
    let me = app.json(Method::GET, "/api/v1/me", &token).await;
    me["id"].as_str().expect("id").to_owned()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_owner_changes_a_role_hands_the_organization_over_and_leaves(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    let (org, bob) = team_with_bob(&app, &ada).await;
    let bob_id = user_id(&app, "bob@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    let members = format!("/organizations/{org}/members");

    // A role change asks first, then applies.
    let asked = ada
        .get(&format!("{members}/{bob_id}/role?role=admin"))
        .await;
    assert!(
        asked.html.contains("Make bob@example.com an admin"),
        "{}",
        asked.html
    );
    let action = format!("{members}/{bob_id}/role?role=admin");
    let done = ada.post(&action, &action, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let page = ada.get(&format!("/organizations/{org}")).await;
    assert!(page.html.contains(r#"<option value="admin" selected>"#));

    // The last owner cannot leave: said in words.
    let leave = format!("{members}/{ada_id}/remove");
    let refused = ada.post(&leave, &leave, &[]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(
        refused.html.contains("at least one owner"),
        "{}",
        refused.html
    );

    // Handing over: Bob becomes an owner, Ada an admin.
    let transfer = format!("{members}/{bob_id}/transfer");
    let asked = ada.get(&transfer).await;
    assert!(
        asked
            .html
            .contains("Hand “Contoso” over to bob@example.com?")
    );
    let done = ada.post(&transfer, &transfer, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let ada_sees = ada.get(&format!("/organizations/{org}")).await;
    assert!(
        ada_sees
            .html
            .contains(r#"<strong id="my-role">admin</strong>"#)
    );
    let bob_sees = bob.get(&format!("/organizations/{org}")).await;
    assert!(
        bob_sees
            .html
            .contains(r#"<strong id="my-role">owner</strong>"#)
    );

    // Ada leaves, asked first, and is back in her personal organization.
    let asked = ada.get(&leave).await;
    assert!(asked.html.contains("Leave “Contoso”?"));
    let left = ada.post(&leave, &leave, &[]).await;
    assert_eq!(left.status, StatusCode::SEE_OTHER, "{}", left.html);
    let list = ada.get(left.location.as_deref().unwrap()).await;
    assert!(!list.html.contains("Contoso"), "{}", list.html);
    assert_eq!(
        ada.get(&format!("/organizations/{org}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn listing_members_hides_a_server_from_the_unlisted(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    let (org, bob) = team_with_bob(&app, &ada).await;
    let server = ada.server("Shared", &[]).await;
    let bob_id = user_id(&app, "bob@example.com").await;
    let page = ada.get(&format!("/servers/{server}")).await;
    assert!(page.html.contains("bob@example.com") && page.html.contains("access-listed"));

    let access = format!("/servers/{server}/access");
    let only = ada
        .post(
            &format!("/servers/{server}"),
            &access,
            &[("member_access", "listed")],
        )
        .await;
    assert_eq!(only.status, StatusCode::SEE_OTHER, "{}", only.html);
    let list = bob.get(&format!("/servers?org={org}")).await;
    assert!(!list.html.contains("Shared"), "not listed, not shown");
    assert_eq!(
        bob.get(&format!("/servers/{server}")).await.status,
        StatusCode::NOT_FOUND
    );

    let listed = ada
        .post(
            &format!("/servers/{server}"),
            &access,
            &[("member_access", "listed"), ("listed_members", &bob_id)],
        )
        .await;
    assert_eq!(listed.status, StatusCode::SEE_OTHER, "{}", listed.html);
    let page = ada.get(&format!("/servers/{server}")).await;
    assert!(page.html.contains(&format!(r#"value="{bob_id}" checked"#)));
    assert!(
        bob.get(&format!("/servers?org={org}"))
            .await
            .html
            .contains("Shared")
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn organization_pages_refuse_outsiders_and_members_in_words(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    let (org, bob) = team_with_bob(&app, &ada).await;
    let ada_id = user_id(&app, "ada@example.com").await;
    let bob_id = user_id(&app, "bob@example.com").await;
    let invitation = uuid::Uuid::new_v4();
    let pages = [
        format!("/organizations/{org}"),
        format!("/organizations/{org}/members/{bob_id}/role?role=admin"),
        format!("/organizations/{org}/members/{bob_id}/remove"),
        format!("/organizations/{org}/members/{bob_id}/transfer"),
        format!("/organizations/{org}/invitations/{invitation}/revoke"),
    ];
    let actions = [
        format!("/organizations/{org}/members/{bob_id}/role?role=admin"),
        format!("/organizations/{org}/members/{bob_id}/remove"),
        format!("/organizations/{org}/members/{bob_id}/transfer"),
        format!("/organizations/{org}/invitations"),
        format!("/organizations/{org}/invitations/{invitation}/revoke"),
    ];
    let before = org_rows(&app.pool, &org).await;
    let eve = Person::new(&app);
    eve.sign_up("eve@example.com").await;
    let token = csrf(&eve.get("/servers").await.html);
    for page in &pages {
        let seen = eve.get(page).await;
        assert_eq!(seen.status, StatusCode::NOT_FOUND, "GET {page}");
        assert!(!seen.html.contains("Contoso"), "GET {page} leaks");
    }
    for action in &actions {
        let fields = [("email", "eve@example.com"), ("role", "owner")];
        let done = eve.post_with(action, &token, &app.address, &fields).await;
        assert_eq!(done.status, StatusCode::NOT_FOUND, "POST {action}");
    }
    // A member may not manage others: refused with the API's sentence, on a page.
    let token = csrf(&bob.get("/servers").await.html);
    let ada_role = format!("/organizations/{org}/members/{ada_id}/role?role=member");
    let refused = bob.post_with(&ada_role, &token, &app.address, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.html.contains("<h1"), "{}", refused.html);
    let invite = format!("/organizations/{org}/invitations");
    let fields = [("email", "x@example.com"), ("role", "member")];
    let refused = bob.post_with(&invite, &token, &app.address, &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        org_rows(&app.pool, &org).await,
        before,
        "no member or invitation changed"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_owner_renames_and_deletes_a_team_and_a_member_gets_no_settings(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let ada = Person::new(&app);
    let (org, bob) = team_with_bob(&app, &ada).await;
    let page = format!("/organizations/{org}");
    let as_member = bob.get(&page).await;
    assert!(!as_member.html.contains("id=\"delete-organization\""));
    assert!(!as_member.html.contains("/settings"));

    // A slug another organization has: the page again, saying so, nothing changed.
    organization(&ada, "Fabrikam", "fabrikam").await;
    let taken = ada
        .post(
            &page,
            &format!("{page}/settings"),
            &[("name", "Contoso Ltd"), ("slug", "fabrikam")],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.html);
    assert!(
        taken.html.contains("id=\"settings-error\""),
        "{}",
        taken.html
    );
    assert!(
        taken.html.contains("value=\"Contoso Ltd\""),
        "what was typed stays"
    );
    let renamed = ada
        .post(
            &page,
            &format!("{page}/settings"),
            &[("name", "Contoso Ltd"), ("slug", "contoso-ltd")],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.html);
    assert!(ada.get(&page).await.html.contains("Contoso Ltd"));

    // Deleting asks first, then takes the organization and Bob's access with it.
    let asked = ada.get(&format!("{page}/delete")).await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.html.contains("cannot be undone"), "{}", asked.html);
    let deleted = ada
        .post(&format!("{page}/delete"), &format!("{page}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.html);
    let left: i64 = sqlx::query_scalar("select count(*) from organizations where id = $1::uuid")
        .bind(&org)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(bob.get(&page).await.status, StatusCode::NOT_FOUND);
}
