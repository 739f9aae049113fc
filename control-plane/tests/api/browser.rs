//! The OAuth sign-in and consent pages in a real browser: headless Chromium driven through
//! WebDriver (chromedriver, started here) signs in, approves, and lands on the client's
//! redirect URI with a code, the state and the issuer. Every page must load its stylesheet and
//! leave no console error or CSP violation in the browser log. Screenshots (desktop and phone
//! sizes) go to `target/console-screenshots/`. The API docs viewer (Swagger UI) must render
//! under its policy too.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use fantoccini::{Client, ClientBuilder, Locator, wd::WebDriverCompatibleCommand};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{PASSWORD, spawn_app_with};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const AGENT: &str = "Browser Test Agent";
const EMAIL: &str = "ada@example.com";

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// chromedriver and the browser profile, both gone when this is dropped (panics included).
pub(crate) struct Driver {
    process: Child,
    profile: PathBuf,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Starts chromedriver on a free port and waits until it answers.
pub(crate) async fn start_chromedriver() -> Driver {
    assert!(
        std::path::Path::new(CHROMEDRIVER).exists(),
        "{CHROMEDRIVER} is missing: the browser test needs Chromium and its WebDriver \
         (Debian/Ubuntu: `apt-get install chromium chromium-driver`)"
    );
    let port = free_port();
    let process = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = std::env::temp_dir().join(format!("browser-test-{}", Uuid::new_v4()));
    let url = format!("http://127.0.0.1:{port}");
    let mut driver = Driver {
        process,
        profile,
        url,
    };
    for _ in 0..100 {
        if reqwest::get(format!("{}/status", driver.url)).await.is_ok() {
            return driver;
        }
        if let Ok(Some(status)) = driver.process.try_wait() {
            panic!("chromedriver exited with {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on port {port}");
}

/// A headless Chromium session with its console log recorded.
pub(crate) async fn open_browser(driver: &Driver) -> Client {
    let profile = format!("--user-data-dir={}", driver.profile.display());
    let capabilities = json!({
        "goog:chromeOptions": {"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", profile,
        ]},
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let capabilities = serde_json::from_value(capabilities).expect("capabilities");
    // Both of rustls' providers are compiled in, so fantoccini cannot pick one by itself.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    ClientBuilder::rustls()
        .expect("TLS roots")
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session starts")
}

/// A chromedriver extension command: `POST /session/{id}/{0}` with the JSON body `{1}`.
#[derive(Debug)]
pub(crate) struct Chromium(pub(crate) &'static str, pub(crate) Value);

impl WebDriverCompatibleCommand for Chromium {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/{}",
            session.unwrap_or_default(),
            self.0
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.1.to_string()))
    }
}

/// Fails on a console error or CSP violation, or when the stylesheet did not apply.
pub(crate) async fn assert_clean_page(browser: &Client, page: &str) {
    assert_quiet_log(browser, page).await;
    // Unstyled, the body would be transparent.
    let script = "return document.styleSheets.length === 1 && \
                  getComputedStyle(document.body).backgroundColor !== 'rgba(0, 0, 0, 0)'";
    let styled = browser.execute(script, vec![]).await.expect("style check");
    assert_eq!(styled, json!(true), "{page}: console.css did not apply");
}

/// Fails on a console error or CSP violation in the browser's log.
async fn assert_quiet_log(browser: &Client, page: &str) {
    // chromedriver's log of the browser console since the last call.
    let log = Chromium("se/log", json!({"type": "browser"}));
    let log = browser.issue_cmd(log).await.expect("browser log");
    let problems: Vec<&Value> = log
        .as_array()
        .expect("log entries")
        .iter()
        .filter(|entry| {
            let message = entry["message"].as_str().unwrap_or_default();
            // The browser asks for /favicon.ico on its own; the pages have no icon.
            let favicon = entry["source"] == "network" && message.contains("/favicon.ico ");
            (entry["level"] == "SEVERE" && !favicon) || message.contains("Content Security Policy")
        })
        .collect();
    assert!(problems.is_empty(), "{page}: browser log has {problems:?}");
}

/// Makes the page's viewport `width` x `height` (a phone's below 600), whatever the window.
pub(crate) async fn set_viewport(browser: &Client, width: u32, height: u32) {
    let params = json!({"width": width, "height": height, "deviceScaleFactor": 1,
                        "mobile": width < 600});
    let cdp = json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": params});
    let emulate = Chromium("goog/cdp/execute", cdp);
    browser.issue_cmd(emulate).await.expect("viewport");
}

/// Saves the page at desktop and phone sizes.
pub(crate) async fn screenshots(browser: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    for (label, width, height) in [("desktop", 1280, 800), ("phone", 390, 844)] {
        set_viewport(browser, width, height).await;
        let png = browser.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("{name}-{label}.png")), png).expect("write PNG");
    }
    set_viewport(browser, 1280, 800).await;
}

/// The page's visible text.
pub(crate) async fn page_text(browser: &Client) -> String {
    let body = browser.find(Locator::Css("body")).await.expect("body");
    body.text().await.expect("text")
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The person's part, in the browser: sign in, check the consent page, approve. Returns the
/// URL the browser ends on.
async fn sign_in_and_approve(browser: Client, authorize: String, callback: String) -> url::Url {
    set_viewport(&browser, 1280, 800).await;
    browser.goto(&authorize).await.expect("authorize page");
    let text = page_text(&browser).await;
    assert!(text.contains("Sign in to connect an agent"), "{text}");
    assert!(text.contains(AGENT), "{text}");
    assert_clean_page(&browser, "sign-in").await;
    screenshots(&browser, "oauth-signin").await;

    let field = async |css| browser.find(Locator::Css(css)).await.expect(css);
    let email = field("#email").await;
    email.send_keys(EMAIL).await.expect("type");
    let password = field("#password").await;
    password.send_keys(PASSWORD).await.expect("type");
    let sign_in = field("button[name=action][value=signin]").await;
    sign_in.click().await.expect("sign in");

    let wait = browser.wait().at_most(Duration::from_secs(10));
    let approve = wait.for_element(Locator::Css("#approve")).await;
    let text = page_text(&browser).await;
    let url = browser.current_url().await.expect("current URL");
    let approve = approve.unwrap_or_else(|_| panic!("no consent page at {url}: {text}"));
    // The client's name, where it sends the browser back to, the server, who is signed in.
    for shown in [AGENT, "127.0.0.1", "Research", EMAIL] {
        assert!(text.contains(shown), "consent page lacks {shown}: {text}");
    }
    assert_clean_page(&browser, "consent").await;
    screenshots(&browser, "oauth-consent").await;
    approve.click().await.expect("approve");

    for _ in 0..100 {
        let url = browser.current_url().await.expect("current URL");
        if url.as_str().starts_with(&callback) {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached {callback}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_person_signs_in_and_approves_an_agent_in_a_real_browser(pool: PgPool) {
    let driver = start_chromedriver().await;
    let issuer = format!("http://127.0.0.1:{}", free_port());
    let app = spawn_app_with(pool, |settings| {
        settings.control_plane.addr = issuer["http://".len()..].parse().expect("address");
        settings.common.control_plane_public_url = issuer.clone();
        settings.control_plane.mcp_gateway_url_pools = "https://mcp1.example.com".to_owned();
    })
    .await;
    assert_eq!(app.address, issuer);

    // The client's redirect target: any query gets "done".
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/callback", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/callback", axum::routing::get(async || "done"));
    tokio::spawn(async move { axum::serve(listener, router).await });

    let token = app.user_token(EMAIL).await;
    let server = app.server(&token, "Research", &[]).await;
    let mcp_url = server["mcp_url"].as_str().expect("mcp_url").to_owned();
    let client = json!({"client_name": AGENT, "redirect_uris": [callback],
                        "token_endpoint_auth_method": "none"});
    let registration = app.post_json("/oauth/register", &client).await;
    assert_eq!(registration.status(), StatusCode::CREATED);
    let registration: Value = registration.json().await.expect("registration JSON");
    let client_id = registration["client_id"].as_str().expect("client_id");

    let verifier = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    assert_eq!(challenge.len(), 43);
    let authorize = format!(
        "{issuer}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}\
         &code_challenge={challenge}&code_challenge_method=S256&state=xyz123&resource={}&scope=mcp",
        encode(client_id),
        encode(&callback),
        encode(&mcp_url),
    );

    let browser = open_browser(&driver).await;
    let person = sign_in_and_approve(browser.clone(), authorize, callback.clone());
    let flow = tokio::spawn(person);
    let (outcome, closed) = (flow.await, browser.close().await);
    let landed = outcome.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
    closed.expect("the browser closes");

    let query: std::collections::HashMap<String, String> =
        landed.query_pairs().into_owned().collect();
    let code = query.get("code").expect("code in the redirect");
    assert!(code.starts_with("mcpc_"), "{code}");
    assert_eq!(query.get("state").map(String::as_str), Some("xyz123"));
    assert_eq!(query.get("iss"), Some(&issuer));
}

/// The element `css` once the page shows it.
async fn shown(browser: &Client, css: &str) -> fantoccini::elements::Element {
    let wait = browser.wait().at_most(Duration::from_secs(20));
    let found = wait.for_element(Locator::Css(css)).await;
    found.unwrap_or_else(|err| panic!("{css} never appeared: {err}"))
}

/// The viewer at `url` shows the API's routes (its scripts ran and fetched the document)
/// and opens one with its "Try it out" form, with nothing refused by its policy.
async fn docs_render(browser: Client, url: String) {
    browser.goto(&url).await.expect("docs");
    shown(&browser, ".opblock-summary-path").await;
    let text = page_text(&browser).await;
    assert!(text.contains("/api/v1/me"), "{text}");
    let route = shown(&browser, ".opblock-summary").await;
    route.click().await.expect("open a route");
    let try_out = shown(&browser, ".try-out__btn").await;
    try_out.click().await.expect("try it out");
    shown(&browser, ".execute").await;
    assert_quiet_log(&browser, "docs").await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_api_docs_render_under_their_policy_in_a_real_browser(pool: PgPool) {
    let driver = start_chromedriver().await;
    let app = crate::helpers::spawn_app(pool).await;
    let browser = open_browser(&driver).await;
    let check = docs_render(browser.clone(), format!("{}/docs/", app.address));
    let (outcome, closed) = (tokio::spawn(check).await, browser.close().await);
    outcome.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
    closed.expect("the browser closes");
}
