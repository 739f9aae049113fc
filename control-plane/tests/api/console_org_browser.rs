//! Organizations walked in headless Chromium: an owner creates a team organization and a
//! server in it and invites an address; the invitation opened in the owner's own session says
//! it is the wrong account; the invited person signs up from the link, accepts, lands in the
//! organization, sees the server, connects an agent through the OAuth consent page and finds it
//! under "My connections"; the owner sees that connection on the server's page and ends it;
//! the member's connections are then empty. Every new page passes the same checks as the rest
//! of the console (clean log, axe-core, desktop and phone screenshots).

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    browser::{free_port, open_browser, page_text, set_viewport, start_chromedriver},
    console_browser::{axe_source, check_page, click, click_to, fill, path},
    helpers::{PASSWORD, spawn_app_with},
};

const OWNER: &str = "olga@example.com";
const MEMBER: &str = "mo@example.com";
const AGENT: &str = "Member's Agent";

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Waits until the browser is at `expected` (a path).
async fn arrive(browser: &Client, expected: &str) {
    for _ in 0..100 {
        if path(browser).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "never reached {expected}, at {}: {}",
        path(browser).await,
        page_text(browser).await
    );
}

async fn text_of(browser: &Client, css: &str) -> String {
    let element = browser.find(Locator::Css(css)).await.expect(css);
    element.text().await.expect("text")
}

async fn sign_in(browser: &Client, origin: &str, email: &str, then: &str) {
    browser
        .goto(&format!("{origin}/signin?next={}", encode(then)))
        .await
        .unwrap();
    fill(browser, "#email", email).await;
    fill(browser, "#password", PASSWORD).await;
    click(browser, "#signin").await;
    arrive(browser, then).await;
}

/// The owner's part up to the invitation: returns (organization page, server page, MCP URL,
/// accept link).
async fn owner_sets_up(
    browser: &Client,
    origin: &str,
    axe: &str,
) -> (String, String, String, String) {
    browser.goto(&format!("{origin}/signup")).await.unwrap();
    fill(browser, "#email", OWNER).await;
    fill(browser, "#password", PASSWORD).await;
    click(browser, "#signup").await;
    arrive(browser, "/servers").await;

    click_to(browser, "nav a[href='/organizations']", "/organizations").await;
    check_page(browser, axe, "organizations").await;
    fill(browser, "#org-name", "Contoso Research").await;
    fill(browser, "#org-slug", "contoso").await;
    click_to(browser, "#create-org", "/organizations/*").await;
    let org_path = path(browser).await;
    check_page(browser, axe, "organization-new").await;

    click_to(browser, "nav a[href='/servers']", "/servers").await;
    assert!(page_text(browser).await.contains("of Contoso Research"));
    click_to(browser, "#new-server", "/servers/new").await;
    fill(browser, "#name", "Research").await;
    click_to(browser, "#create-server", "/servers/*").await;
    let server_path = path(browser).await;
    let mcp_url = text_of(browser, "#mcp-url").await;
    assert!(page_text(browser).await.contains("Who may connect"));
    check_page(browser, axe, "server-team").await;

    browser.goto(&format!("{origin}{org_path}")).await.unwrap();
    fill(browser, "#invite-email", MEMBER).await;
    let role = browser.find(Locator::Css("#invite-role")).await.unwrap();
    role.select_by_value("member").await.expect("role");
    click_to(browser, "#invite", &org_path).await;
    let link = text_of(browser, "#invite-link").await;
    let heading = text_of(browser, "#new-link-heading").await;
    assert_eq!(heading, format!("Invitation link for {MEMBER}"));
    assert!(
        link.starts_with(&format!("{origin}/invitations/")),
        "{link}"
    );
    check_page(browser, axe, "organization-invited").await;
    browser.refresh().await.unwrap();
    assert!(
        browser.find(Locator::Css("#invite-link")).await.is_err(),
        "the link is shown once"
    );
    assert!(page_text(browser).await.contains("pending"));
    (org_path, server_path, mcp_url, link)
}

/// The member's agent, through the consent page; returns once the browser is back at the
/// client's redirect URI.
async fn member_connects(browser: &Client, origin: &str, mcp_url: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/callback", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/callback", axum::routing::get(async || "done"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = json!({"client_name": AGENT, "redirect_uris": [callback],
                        "token_endpoint_auth_method": "none"});
    let registered = reqwest::Client::new()
        .post(format!("{origin}/oauth/register"))
        .json(&client)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: Value = registered.json().await.unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    let verifier = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = format!(
        "{origin}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}\
         &code_challenge={challenge}&code_challenge_method=S256&state=s1&resource={}&scope=mcp",
        encode(client_id),
        encode(&callback),
        encode(mcp_url),
    );
    browser.goto(&authorize).await.unwrap();
    if browser.find(Locator::Css("#approve")).await.is_err() {
        fill(browser, "#email", MEMBER).await;
        fill(browser, "#password", PASSWORD).await;
        click(browser, "button[name=action][value=signin]").await;
    }
    let text = {
        let wait = browser.wait().at_most(Duration::from_secs(10));
        let approve = wait.for_element(Locator::Css("#approve")).await;
        let text = page_text(browser).await;
        approve.unwrap_or_else(|_| panic!("no consent page: {text}"));
        text
    };
    assert!(text.contains("Research") && text.contains(MEMBER), "{text}");
    click(browser, "#approve").await;
    for _ in 0..100 {
        let url = browser.current_url().await.unwrap();
        if url.as_str().starts_with(&callback) {
            assert!(url.query().unwrap_or_default().contains("code="), "{url}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached {callback}");
}

async fn walk(browser: &Client, origin: &str) {
    let axe = axe_source();
    set_viewport(browser, 1280, 800).await;
    let (org_path, server_path, mcp_url, link) = owner_sets_up(browser, origin, &axe).await;
    let link_path = url::Url::parse(&link).unwrap().path().to_owned();

    // The owner opens the link: the wrong account, told so, offered to switch.
    browser.goto(&link).await.unwrap();
    assert!(
        page_text(browser)
            .await
            .contains("can only be accepted by an account with that address")
    );
    check_page(browser, &axe, "invitation-wrong-account").await;
    click(browser, "#switch-account").await;
    arrive(browser, "/signin").await;

    // The invited person: the link, signed out; sign up from it and come back.
    browser.goto(&link).await.unwrap();
    check_page(browser, &axe, "invitation-signed-out").await;
    click_to(browser, "#signup-to-accept", "/signup").await;
    let email = browser.find(Locator::Css("#email")).await.unwrap();
    assert_eq!(email.prop("value").await.unwrap().as_deref(), Some(MEMBER));
    fill(browser, "#password", PASSWORD).await;
    click(browser, "#signup").await;
    arrive(browser, &link_path).await;
    check_page(browser, &axe, "invitation-accept").await;
    click_to(browser, "#accept", "/servers").await;
    let chosen = text_of(browser, "#org-switch option:checked").await;
    assert_eq!(chosen, "Contoso Research", "landed in the organization");
    assert!(page_text(browser).await.contains("Research"));
    assert!(
        browser
            .find(Locator::Css("nav a[href='/sources']"))
            .await
            .is_err()
    );
    check_page(browser, &axe, "servers-member").await;
    click_to(browser, &format!("a[href='{server_path}']"), &server_path).await;
    let text = page_text(browser).await;
    assert!(
        text.contains(&mcp_url) && !text.contains("Access keys"),
        "{text}"
    );
    check_page(browser, &axe, "server-member").await;
    browser.goto(&format!("{origin}{org_path}")).await.unwrap();
    check_page(browser, &axe, "organization-as-member").await;
    click_to(browser, "#leave", "/organizations/*").await;
    check_page(browser, &axe, "organization-leave-confirm").await;

    // An agent, approved on the consent page, under "My connections".
    member_connects(browser, origin, &mcp_url).await;
    browser
        .goto(&format!("{origin}/connections"))
        .await
        .unwrap();
    let text = page_text(browser).await;
    assert!(text.contains(AGENT) && text.contains("Research"), "{text}");
    check_page(browser, &axe, "connections").await;
    click_to(browser, "a[id^='disconnect-']", "/connections/*").await;
    check_page(browser, &axe, "connection-disconnect-confirm").await;
    click_to(browser, "a.button[href='/connections']", "/connections").await;
    browser
        .goto(&format!("{origin}{server_path}"))
        .await
        .unwrap();
    assert!(
        page_text(browser).await.contains(AGENT),
        "on the server's page too"
    );
    click_to(browser, "#signout", "/signin").await;

    // The owner sees who connected, and ends it.
    sign_in(browser, origin, OWNER, &org_path).await;
    assert!(page_text(browser).await.contains(MEMBER));
    check_page(browser, &axe, "organization-members").await;
    click_to(browser, "a[id^='transfer-']", "/organizations/*").await;
    check_page(browser, &axe, "member-transfer-confirm").await;
    browser.back().await.unwrap();
    browser
        .goto(&format!("{origin}{server_path}"))
        .await
        .unwrap();
    let agents = text_of(browser, "section[aria-labelledby='agents-heading']").await;
    assert!(
        agents.contains(AGENT) && agents.contains(MEMBER),
        "{agents}"
    );
    check_page(browser, &axe, "server-team-connected").await;
    click_to(browser, "a[id^='disconnect-']", "/servers/*").await;
    assert!(
        page_text(browser)
            .await
            .contains(&format!("{MEMBER}'s agent"))
    );
    click_to(browser, "#confirm", &server_path).await;
    let agents = text_of(browser, "section[aria-labelledby='agents-heading']").await;
    assert!(!agents.contains(MEMBER), "{agents}");
    click_to(browser, "#signout", "/signin").await;

    // The member's connections are empty now.
    sign_in(browser, origin, MEMBER, "/connections").await;
    assert!(browser.find(Locator::Css("#no-connections")).await.is_ok());
    check_page(browser, &axe, "connections-empty").await;
    browser.goto(&link).await.unwrap();
    assert!(page_text(browser).await.contains("has been used"));
    check_page(browser, &axe, "invitation-used").await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_invited_person_joins_connects_an_agent_and_the_owner_ends_it_in_a_real_browser(
    pool: PgPool,
) {
    let driver = start_chromedriver().await;
    let origin = format!("http://127.0.0.1:{}", free_port());
    let app = spawn_app_with(pool, |settings| {
        settings.control_plane.addr = origin["http://".len()..].parse().expect("address");
        settings.common.control_plane_public_url = origin.clone();
        settings.control_plane.mcp_gateway_url_pools = "https://mcp1.example.com".to_owned();
    })
    .await;
    assert_eq!(app.address, origin);
    let browser = open_browser(&driver).await;
    let person = {
        let browser = browser.clone();
        async move { walk(&browser, &origin).await }
    };
    let (outcome, closed) = (tokio::spawn(person).await, browser.close().await);
    outcome.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
    closed.expect("the browser closes");
}
