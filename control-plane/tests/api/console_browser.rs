//! The web console walked in headless Chromium as a new user would: sign up, create a Box
//! source (made-up credentials), a server with it and an access key; make MCP calls with
//! rmcp's client through a running gateway; find them in the usage chart and the recent-calls
//! table; revoke the key; delete and restore the server; sign out. Every page must leave no
//! console error or CSP violation, pass axe-core without serious or critical violations, and
//! is saved as a screenshot at desktop and phone widths under `target/console-screenshots/`.
//!
//! axe-core is not part of the repository: the test fetches the pinned release from the npm
//! registry with `npm pack` into `target/axe-core/` once, and injects it through WebDriver.

use std::{path::PathBuf, process::Command, time::Duration};

use fantoccini::{Client, Locator};
use rmcp::{
    ServiceExt,
    model::CallToolRequestParams,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{
    browser::{
        Chromium, assert_clean_page, free_port, open_browser, page_text, screenshots, set_viewport,
        start_chromedriver,
    },
    helpers::PASSWORD,
};

/// The axe-core release the accessibility check runs.
const AXE_VERSION: &str = "4.10.2";
const EMAIL: &str = "grace@example.com";

/// axe-core's browser bundle, fetched from the npm registry on first use.
pub(crate) fn axe_source() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/axe-core");
    let script = dir.join(format!("axe-{AXE_VERSION}.min.js"));
    if !script.exists() {
        std::fs::create_dir_all(&dir).expect("target/axe-core");
        let packed = Command::new("npm")
            .args([
                "pack",
                &format!("axe-core@{AXE_VERSION}"),
                "--silent",
                "--pack-destination",
            ])
            .arg(&dir)
            .output()
            .expect("npm runs (the accessibility check fetches axe-core with `npm pack`)");
        assert!(packed.status.success(), "npm pack axe-core: {packed:?}");
        let tarball = dir.join(format!("axe-core-{AXE_VERSION}.tgz"));
        let unpacked = Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&dir)
            .arg("package/axe.min.js")
            .status()
            .expect("tar runs");
        assert!(unpacked.success(), "unpack {tarball:?}");
        std::fs::rename(dir.join("package/axe.min.js"), &script).expect("axe in place");
    }
    std::fs::read_to_string(script).expect("axe-core")
}

/// Serious and critical axe-core violations of the page in the browser.
async fn axe_violations(browser: &Client, axe: &str) -> Vec<Value> {
    browser
        .execute(&format!("{axe}\nreturn true;"), vec![])
        .await
        .expect("axe injected");
    let run = "const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ['violations']})
          .then(r => done(r.violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical')
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.map(n => n.target.join(' '))}))))
          .catch(e => done([{id: 'axe-failed', help: String(e)}]));";
    let found = browser.execute_async(run, vec![]).await.expect("axe runs");
    found.as_array().cloned().unwrap_or_default()
}

/// Console errors and CSP violations the browser logged since the last look.
pub(crate) async fn logged_problems(browser: &Client) -> Vec<Value> {
    let log = Chromium("se/log", json!({"type": "browser"}));
    let log = browser.issue_cmd(log).await.expect("browser log");
    log.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| {
            let message = entry["message"].as_str().unwrap_or_default();
            let favicon = entry["source"] == "network" && message.contains("/favicon.ico ");
            (entry["level"] == "SEVERE" && !favicon)
                || message.contains("Content Security Policy")
                || message.contains("CSP violation")
        })
        .collect()
}

/// One page of the walk: clean log, styled, accessible, screenshotted.
pub(crate) async fn check_page(browser: &Client, axe: &str, name: &str) {
    assert_clean_page(browser, name).await;
    let violations = axe_violations(browser, axe).await;
    assert!(
        violations.is_empty(),
        "{name}: axe-core finds {violations:#?}"
    );
    screenshots(browser, &format!("console-{name}")).await;
    // The screenshots resized the page: that must not have produced errors either.
    let problems = logged_problems(browser).await;
    assert!(problems.is_empty(), "{name}: {problems:?}");
}

pub(crate) async fn fill(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

pub(crate) async fn click(browser: &Client, css: &str) {
    let element = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("no {css}"));
    element.click().await.expect(css);
}

/// Chooses a tool and a status in the recent-calls filter and waits for the filtered page.
async fn filter(browser: &Client, tool: &str, status: &str) {
    let select = browser.find(Locator::Css("#tool")).await.unwrap();
    select.select_by_value(tool).await.expect("tool");
    let select = browser.find(Locator::Css("#status")).await.unwrap();
    select.select_by_value(status).await.expect("status");
    click(browser, "#filter").await;
    let wanted = format!("tool={tool}&status={status}");
    for _ in 0..100 {
        let url = browser.current_url().await.unwrap();
        if url.query().is_some_and(|q| q.contains(&wanted)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the filter did not apply");
}

/// From the top of the page the keyboard reaches the skip link, the brand link, then the
/// form's inputs in order, each with a visible focus ring.
async fn keyboard_reaches_the_form(browser: &Client) {
    let tab = fantoccini::key::Key::Tab.to_string();
    let body = browser.find(Locator::Css("body")).await.unwrap();
    body.send_keys(&tab).await.expect("tab");
    let first = browser.active_element().await.unwrap();
    assert_eq!(first.attr("class").await.unwrap().as_deref(), Some("skip"));
    let mut reached = Vec::new();
    for _ in 0..4 {
        let focused = browser.active_element().await.unwrap();
        focused.send_keys(&tab).await.expect("tab");
        let now = browser.active_element().await.unwrap();
        reached.push(now.attr("id").await.unwrap().unwrap_or_default());
        let ring = browser
            .execute(
                "return getComputedStyle(document.activeElement).outlineStyle",
                vec![],
            )
            .await
            .unwrap();
        assert_ne!(ring, json!("none"), "no focus ring on {reached:?}");
    }
    // The brand link (home), then the form in reading order.
    assert_eq!(reached, ["", "email", "password", "signup"], "tab order");
}

/// Clicks and waits for the page at `expected` (a path, or a prefix ending in `*`).
pub(crate) async fn click_to(browser: &Client, css: &str, expected: &str) {
    // The old document going stale marks the navigation: a path check alone passes at once
    // when the page before already matches (`/servers/new` matches `/servers/*`).
    let before = browser.find(Locator::Css("html")).await.expect("a page");
    click(browser, css).await;
    for _ in 0..100 {
        if before.tag_name().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let now = path(browser).await;
        let arrived = match expected.strip_suffix('*') {
            Some(prefix) => now.starts_with(prefix) && now != prefix,
            None => now == expected,
        };
        if arrived {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = page_text(browser).await;
    panic!(
        "{css} did not lead to {expected} but to {}: {text}",
        path(browser).await
    );
}

pub(crate) async fn path(browser: &Client) -> String {
    browser.current_url().await.expect("URL").path().to_owned()
}

/// Makes MCP calls with rmcp's client: three searches and one fetch, through the gateway.
async fn agent_calls(mcp_url: &str, key: &str) -> usize {
    let config = StreamableHttpClientTransportConfig::with_uri(mcp_url.to_owned())
        .auth_header(key.to_owned());
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    let client = ().serve(transport).await.expect("MCP client connects");
    let tools = client.list_tools(None).await.expect("tools/list");
    assert!(tools.tools.iter().any(|t| t.name == "search"));
    let mut calls = 0;
    for query in ["budget", "roadmap", "budget 2027"] {
        let args = json!({"query": query}).as_object().cloned();
        let result = client
            .call_tool(CallToolRequestParams::new("search").with_arguments(args.unwrap()))
            .await
            .expect("tools/call search");
        // Made-up Box credentials: the source fails, and the call says so.
        assert_eq!(result.is_error, Some(true), "{result:?}");
        calls += 1;
    }
    let args = json!({"id": "box:00000000-0000-0000-0000-000000000000:x"});
    let _ = client
        .call_tool(
            CallToolRequestParams::new("fetch").with_arguments(args.as_object().cloned().unwrap()),
        )
        .await;
    calls += 1;
    client.cancel().await.expect("MCP client closes");
    calls
}

/// The walk itself; `browser` is closed by the caller whatever happens.
async fn walk(browser: &Client, origin: &str, pool: &PgPool) {
    let axe = axe_source();
    set_viewport(browser, 1280, 800).await;

    browser.goto(&format!("{origin}/")).await.expect("console");
    assert_eq!(
        path(browser).await,
        "/signin",
        "a visitor is asked to sign in"
    );
    check_page(browser, &axe, "signin").await;
    click_to(browser, "a[href='/signup']", "/signup").await;
    check_page(browser, &axe, "signup").await;
    keyboard_reaches_the_form(browser).await;
    fill(browser, "#email", EMAIL).await;
    fill(browser, "#password", PASSWORD).await;
    click(browser, "#signup").await;
    browser
        .wait()
        .for_url(&url::Url::parse(&format!("{origin}/servers")).unwrap())
        .await
        .expect("servers");
    check_page(browser, &axe, "servers-empty").await;

    // A Box source with made-up credentials.
    click_to(browser, "nav a[href='/sources']", "/sources").await;
    click_to(browser, "a[href='/sources/new?type=box']", "/sources/new").await;
    check_page(browser, &axe, "source-new-box").await;
    fill(browser, "#f-client_id", "abc123").await;
    fill(browser, "#f-client_secret", "made-up-box-secret").await;
    fill(browser, "#f-subject_type", "enterprise").await;
    fill(browser, "#f-subject_id", "42").await;
    click_to(browser, "#save", "/sources").await;
    assert_eq!(path(browser).await, "/sources");
    assert!(page_text(browser).await.contains("client_secret: set"));
    check_page(browser, &axe, "sources").await;
    click_to(browser, "a[href$='/edit']", "/sources/*").await;
    check_page(browser, &axe, "source-edit").await;
    browser.back().await.expect("back");
    click_to(browser, "a[href$='/delete']", "/sources/*").await;
    check_page(browser, &axe, "source-delete-confirm").await;
    click_to(browser, "a.button[href='/sources']", "/sources").await;

    // A server with it.
    click_to(browser, "nav a[href='/servers']", "/servers").await;
    click_to(browser, "#new-server", "/servers/new").await;
    check_page(browser, &axe, "server-new").await;
    fill(browser, "#name", "Research").await;
    click(browser, "input[name=source_ids]").await;
    click_to(browser, "#create-server", "/servers/*").await;
    let server_path = path(browser).await;
    assert!(server_path.starts_with("/servers/"), "{server_path}");
    let mcp_url = browser
        .find(Locator::Css("#mcp-url"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    check_page(browser, &axe, "server").await;

    // A key, shown once.
    fill(browser, "#key-name", "research script").await;
    click_to(browser, "#create-key", "/servers/*").await;
    let key = browser
        .find(Locator::Css("#new-key"))
        .await
        .expect("the new key")
        .text()
        .await
        .unwrap();
    assert!(key.starts_with("mcpk_"), "{key}");
    check_page(browser, &axe, "server-new-key").await;

    // An agent calls; the gateway's audit log lands within a second.
    let calls = agent_calls(&mcp_url, &key).await;
    for _ in 0..100 {
        let logged: i64 = sqlx::query_scalar("select count(*) from tool_calls")
            .fetch_one(pool)
            .await
            .unwrap();
        if logged as usize >= calls {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Usage: the chart and the recent calls.
    browser
        .goto(&format!("{origin}{server_path}"))
        .await
        .unwrap();
    click_to(browser, "#usage-link", "/servers/*").await;
    let bars = browser
        .find_all(Locator::Css("#usage-chart rect.error"))
        .await
        .unwrap();
    assert!(!bars.is_empty(), "the chart shows the failed calls");
    let table = browser
        .find(Locator::Css("#recent-calls"))
        .await
        .expect("recent calls")
        .text()
        .await
        .unwrap();
    assert!(
        table.contains("budget 2027") && table.contains("roadmap"),
        "{table}"
    );
    assert!(
        page_text(browser).await.contains("all_sources_failed"),
        "error classes"
    );
    check_page(browser, &axe, "usage").await;
    // Filtered: searches that failed are there, calls that went well are not.
    filter(browser, "search", "error").await;
    let table = browser
        .find(Locator::Css("#recent-calls"))
        .await
        .expect("filtered");
    let table = table.text().await.unwrap();
    assert!(
        table.contains("roadmap") && !table.contains("fetch"),
        "{table}"
    );
    filter(browser, "search", "ok").await;
    assert!(page_text(browser).await.contains("No calls match"));
    check_page(browser, &axe, "usage-filtered").await;

    // Revoke the key: asked first, then refused by the gateway within a second.
    browser
        .goto(&format!("{origin}{server_path}"))
        .await
        .unwrap();
    click_to(browser, "a[id^='revoke-']", "/servers/*").await;
    check_page(browser, &axe, "key-revoke-confirm").await;
    click_to(browser, "#confirm", &server_path).await;
    assert!(
        page_text(browser).await.contains("revoked"),
        "the key shows as revoked"
    );
    let refused = async || {
        let config =
            StreamableHttpClientTransportConfig::with_uri(mcp_url.clone()).auth_header(key.clone());
        let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
        ().serve(transport).await.is_err()
    };
    let mut gone = false;
    for _ in 0..50 {
        if refused().await {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the revoked key still opens the server");

    // Public needs a confirmation too.
    click_to(browser, "a[href$='/public']", "/servers/*").await;
    check_page(browser, &axe, "server-public-confirm").await;
    browser.back().await.unwrap();

    // Delete (asked first) and restore.
    click_to(browser, "#delete-server", "/servers/*").await;
    check_page(browser, &axe, "server-delete-confirm").await;
    click_to(browser, "#confirm", "/servers").await;
    assert!(page_text(browser).await.contains("Deleted"));
    check_page(browser, &axe, "servers-with-deleted").await;
    click_to(browser, "button[id^='restore-']", &server_path).await;
    assert!(
        page_text(browser).await.contains("MCP URL"),
        "restored and live"
    );

    // Account and, as an administrator, the admin page.
    click_to(browser, "nav a[href='/account']", "/account").await;
    check_page(browser, &axe, "account").await;
    sqlx::query("update users set role = 'admin' where email = $1")
        .bind(EMAIL)
        .execute(pool)
        .await
        .unwrap();
    browser.goto(&format!("{origin}/admin")).await.unwrap();
    assert!(page_text(browser).await.contains("Endpoint pool"));
    check_page(browser, &axe, "admin").await;

    // Sign out: back to sign-in, and the session is over.
    click_to(browser, "#signout", "/signin").await;
    assert_eq!(path(browser).await, "/signin");
    browser
        .goto(&format!("{origin}{server_path}"))
        .await
        .unwrap();
    assert_eq!(path(browser).await, "/signin", "signed out");
    assert!(logged_problems(browser).await.is_empty());

    // The check above would catch a violation: an inline script is refused and reported.
    browser
        .execute("const s = document.createElement('script'); s.textContent = 'window.x = 1'; document.body.append(s); return true;", vec![])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let caught = logged_problems(browser).await;
    assert!(!caught.is_empty(), "an inline script went unnoticed");
}

/// Both daemons: the gateway with the real source handlers, Box pointed at a port where
/// nothing listens (made-up credentials fail there at once), and the pool entry on the
/// gateway's own listener so the MCP URL works as it is shown.
async fn spawn_stack(pool: &PgPool) -> String {
    let mut settings = shared::testing::settings();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    settings.upstreams.box_api_url = nowhere.clone();
    settings.upstreams.box_token_url = format!("{nowhere}/oauth2/token");
    settings.gateway.addr = "127.0.0.1:0".parse().unwrap();
    settings.gateway.drain_secs = 0;
    let registry = gateway::sources::Registry::new(&settings).expect("registry");
    let gateway = gateway::Application::build(&settings, pool.clone(), registry)
        .await
        .expect("gateway");
    settings.control_plane.mcp_gateway_url_pools = format!("http://localhost:{}", gateway.port());
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    settings.control_plane.addr = ([127, 0, 0, 1], port).into();
    settings.common.control_plane_public_url = origin.clone();
    let control_plane = control_plane::Application::build(&settings, pool.clone())
        .await
        .expect("control plane");
    tokio::spawn(control_plane.run_until_stopped(std::future::pending()));
    tokio::spawn(gateway.run_until_stopped(std::future::pending()));
    origin
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_new_user_walks_the_console_in_a_real_browser(pool: PgPool) {
    let driver = start_chromedriver().await;
    let origin = spawn_stack(&pool).await;
    let browser = open_browser(&driver).await;
    let person = {
        let browser = browser.clone();
        async move { walk(&browser, &origin, &pool).await }
    };
    let (outcome, closed) = (tokio::spawn(person).await, browser.close().await);
    outcome.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
    closed.expect("the browser closes");
}
