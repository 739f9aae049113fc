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
