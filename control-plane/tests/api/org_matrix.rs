//! The isolation matrix: three team organizations, each with an owner, an admin and a member;
//! every route that reads or writes an organization's object is called by each of them and by
//! a stranger (the owner of another organization). Each cell has its expected status; a
//! refusal changes nothing stored, and no answer to a member ever carries a source's settings
//! or secrets.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, spawn_app_with};

const SECRET: &str = "org-box-secret";

/// Who calls, in the order cells are run (refusals first, so a success cannot hide one).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Stranger,
    Member,
    Admin,
    Owner,
}

const EVERYONE: [Who; 4] = [Who::Stranger, Who::Member, Who::Admin, Who::Owner];

/// A person: session token and user id.
#[derive(Clone)]
struct Person {
    token: String,
    id: String,
    email: String,
}

/// One team organization and its objects.
struct Org {
    id: String,
    owner: Person,
    admin: Person,
    member: Person,
    source: String,
    server: String,
    deleted_server: String,
}

fn source_body(org: &str) -> Value {
    json!({"type": "box", "organization_id": org, "source_metadata": {
        "client_id": "abc123def456", "client_secret": SECRET,
        "subject_type": "enterprise", "subject_id": "42"}})
}

async fn person(app: &TestApp, email: &str) -> Person {
    let token = app.user_token(email).await;
    let me: Value = app.me(&token).await.json().await.unwrap();
    Person {
        token,
        id: me["id"].as_str().unwrap().to_owned(),
        email: email.to_owned(),
    }
}

async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Invites `who` with `role` and has them accept through the API.
async fn join(app: &TestApp, org: &str, owner: &Person, who: &Person, email: &str, role: &str) {
    let invitation = created(
        app.send_json(
            Method::POST,
            &format!("/api/v1/organizations/{org}/invitations"),
            &owner.token,
            &json!({"email": email, "role": role}),
        )
        .await,
    )
    .await;
    let token = invitation["token"].as_str().unwrap();
    created(
        app.send(
            Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            &who.token,
        )
        .await,
    )
    .await;
}

/// A server in `org` with `sources`; returns its id.
async fn server(app: &TestApp, org: &str, owner: &Person, name: &str, sources: &[&str]) -> String {
    created(
        app.send_json(
            Method::POST,
            "/api/v1/mcp-servers",
            &owner.token,
            &json!({"name": name, "organization_id": org, "source_ids": sources}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A grant of `who` on `server`, as the consent page would store it.
async fn grant(pool: &PgPool, org: &str, server: &str, who: &str) -> String {
    let client = format!("client-{}", uuid::Uuid::new_v4());
    sqlx::query(
        "insert into oauth_clients (client_id, kind, client_name, redirect_uris) \
         values ($1, 'registered', 'Agent', array['https://agent.example.com/cb'])",
    )
    .bind(&client)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query_scalar::<_, uuid::Uuid>(
        "insert into oauth_grants (user_id, server_id, client_id, redirect_uri, scope, organization_id) \
         values ($1::uuid, $2::uuid, $3, 'https://agent.example.com/cb', 'mcp', $4::uuid) returning id",
    )
    .bind(who)
    .bind(server)
    .bind(&client)
    .bind(org)
    .fetch_one(pool)
    .await
    .unwrap()
    .to_string()
}

async fn organization(app: &TestApp, n: usize) -> Org {
    let owner = person(app, &format!("owner{n}@example.com")).await;
    let admin = person(app, &format!("admin{n}@example.com")).await;
    let member = person(app, &format!("member{n}@example.com")).await;
    let org = created(
        app.send_json(
            Method::POST,
            "/api/v1/organizations",
            &owner.token,
            &json!({"name": format!("Org {n}"), "slug": format!("org-{n}")}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    join(
        app,
        &org,
        &owner,
        &admin,
        &format!("admin{n}@example.com"),
        "admin",
    )
    .await;
    join(
        app,
        &org,
        &owner,
        &member,
        &format!("member{n}@example.com"),
        "member",
    )
    .await;
    let source = app.source(&owner.token, &source_body(&org)).await;
    let server = server(app, &org, &owner, "shared", &[&source]).await;
    let deleted_server = server_deleted(app, &org, &owner).await;
    Org {
        id: org,
        owner,
        admin,
        member,
        source,
        server,
        deleted_server,
    }
}

async fn server_deleted(app: &TestApp, org: &str, owner: &Person) -> String {
    let id = server(app, org, owner, "old", &[]).await;
    let gone = app
        .send(
            Method::DELETE,
            &format!("/api/v1/mcp-servers/{id}"),
            &owner.token,
        )
        .await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    id
}

/// Every row an organization's routes can change, to compare around a refused request.
async fn stored(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "select concat_ws('|', \
           (select json_agg(t order by t.id)::text from (select id, organization_id, type, source_metadata, secrets from sources) t), \
           (select json_agg(t order by t.id)::text from (select id, organization_id, name, member_access, public, deleted_at, endpoint from mcp_servers) t), \
           (select json_agg(t order by t.server_id, t.source_id)::text from mcp_server_sources t), \
           (select json_agg(t order by t.id)::text from (select id, revoked_at from mcp_server_keys) t), \
           (select json_agg(t order by t.id)::text from (select id, user_id from oauth_grants) t), \
           (select json_agg(t order by t.organization_id, t.user_id)::text from organization_members t), \
           (select json_agg(t order by t.id)::text from (select id, revoked_at, accepted_at from organization_invitations) t), \
           (select json_agg(t order by t.id)::text from (select id, name, slug from organizations) t))",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// One route: how to call it (a fresh object is made per cell when the call consumes it) and
/// the status each caller gets: `[stranger, member, admin, owner]`.
struct Route {
    name: &'static str,
    expect: [u16; 4],
}

/// Builds the request of `route` against `org`, making what it consumes.
async fn request(
    app: &TestApp,
    pool: &PgPool,
    org: &Org,
    route: &str,
) -> (Method, String, Option<Value>) {
    let (o, s, v) = (&org.id, &org.source, &org.server);
    match route {
        "get org" => (Method::GET, format!("/api/v1/organizations/{o}"), None),
        "rename org" => (
            Method::PUT,
            format!("/api/v1/organizations/{o}"),
            Some(json!({"name": "Same"})),
        ),
        "list members" => (
            Method::GET,
            format!("/api/v1/organizations/{o}/members"),
            None,
        ),
        "set member role" => (
            Method::PUT,
            format!("/api/v1/organizations/{o}/members/{}", org.member.id),
            Some(json!({"role": "member"})),
        ),
        "list invitations" => (
            Method::GET,
            format!("/api/v1/organizations/{o}/invitations"),
            None,
        ),
        "invite" => (
            Method::POST,
            format!("/api/v1/organizations/{o}/invitations"),
            Some(
                json!({"email": format!("{}@example.com", uuid::Uuid::new_v4()), "role": "member"}),
            ),
        ),
        "list sources" => (
            Method::GET,
            format!("/api/v1/sources?organization_id={o}"),
            None,
        ),
        "create source" => (Method::POST, "/api/v1/sources".into(), Some(source_body(o))),
        "get source" => (Method::GET, format!("/api/v1/sources/{s}"), None),
        "update source" => (
            Method::PUT,
            format!("/api/v1/sources/{s}"),
            Some(source_body(o)),
        ),
        "list servers" => (
            Method::GET,
            format!("/api/v1/mcp-servers?organization_id={o}"),
            None,
        ),
        "create server" => (
            Method::POST,
            "/api/v1/mcp-servers".into(),
            Some(json!({"name": "new", "organization_id": o})),
        ),
        "get server" => (Method::GET, format!("/api/v1/mcp-servers/{v}"), None),
        "rename server" => (
            Method::PUT,
            format!("/api/v1/mcp-servers/{v}"),
            Some(json!({"name": "shared"})),
        ),
        "get deleted server" => (
            Method::GET,
            format!(
                "/api/v1/mcp-servers/{}?include_deleted=true",
                org.deleted_server
            ),
            None,
        ),
        "attach source" => (
            Method::PUT,
            format!("/api/v1/mcp-servers/{v}/sources/{s}"),
            None,
        ),
        "list keys" => (Method::GET, format!("/api/v1/mcp-servers/{v}/keys"), None),
        "create key" => (
            Method::POST,
            format!("/api/v1/mcp-servers/{v}/keys"),
            Some(json!({"name": "k"})),
        ),
        "list grants" => (Method::GET, format!("/api/v1/mcp-servers/{v}/grants"), None),
        "list calls" => (Method::GET, format!("/api/v1/mcp-servers/{v}/calls"), None),
        "call summary" => (
            Method::GET,
            format!("/api/v1/mcp-servers/{v}/calls/summary"),
            None,
        ),
        "call series" => (
            Method::GET,
            format!("/api/v1/mcp-servers/{v}/calls/series"),
            None,
        ),
        "activity" => (
            Method::GET,
            format!("/api/v1/activity?organization_id={o}"),
            None,
        ),
        "delete source" => {
            let fresh = app.source(&org.owner.token, &source_body(o)).await;
            (Method::DELETE, format!("/api/v1/sources/{fresh}"), None)
        }
        "detach source" => {
            let fresh = app.source(&org.owner.token, &source_body(o)).await;
            let path = format!("/api/v1/mcp-servers/{v}/sources/{fresh}");
            let attached = app.send(Method::PUT, &path, &org.owner.token).await;
            assert_eq!(attached.status(), StatusCode::OK);
            (Method::DELETE, path, None)
        }
        "delete server" => {
            let fresh = server(app, o, &org.owner, "doomed", &[]).await;
            (Method::DELETE, format!("/api/v1/mcp-servers/{fresh}"), None)
        }
        "restore server" => {
            let fresh = server_deleted(app, o, &org.owner).await;
            (
                Method::POST,
                format!("/api/v1/mcp-servers/{fresh}/restore"),
                None,
            )
        }
        "revoke key" => {
            let key = created(
                app.send_json(
                    Method::POST,
                    &format!("/api/v1/mcp-servers/{v}/keys"),
                    &org.owner.token,
                    &json!({"name": "doomed"}),
                )
                .await,
            )
            .await;
            (
                Method::DELETE,
                format!(
                    "/api/v1/mcp-servers/{v}/keys/{}",
                    key["id"].as_str().unwrap()
                ),
                None,
            )
        }
        "disconnect another's grant" => {
            let fresh = grant(pool, o, v, &org.admin.id).await;
            (
                Method::DELETE,
                format!("/api/v1/mcp-servers/{v}/grants/{fresh}"),
                None,
            )
        }
        "revoke invitation" => {
            let invitation = created(
                app.send_json(
                    Method::POST,
                    &format!("/api/v1/organizations/{o}/invitations"),
                    &org.owner.token,
                    &json!({"email": format!("{}@example.com", uuid::Uuid::new_v4()), "role": "member"}),
                )
                .await,
            )
            .await;
            let id = invitation["id"].as_str().unwrap();
            (
                Method::DELETE,
                format!("/api/v1/organizations/{o}/invitations/{id}"),
                None,
            )
        }
        "remove a member" => {
            let email = format!("{}@example.com", uuid::Uuid::new_v4());
            let newcomer = person(app, &email).await;
            join(app, o, &org.owner, &newcomer, &email, "member").await;
            (
                Method::DELETE,
                format!("/api/v1/organizations/{o}/members/{}", newcomer.id),
                None,
            )
        }
        "delete org" => {
            // A team of the same three people, with a server, made for this cell.
            let slug = format!(
                "doomed-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let fresh = created(
                app.send_json(
                    Method::POST,
                    "/api/v1/organizations",
                    &org.owner.token,
                    &json!({"name": "Doomed", "slug": slug}),
                )
                .await,
            )
            .await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            join(
                app,
                &fresh,
                &org.owner,
                &org.admin,
                &org.admin.email,
                "admin",
            )
            .await;
            join(
                app,
                &fresh,
                &org.owner,
                &org.member,
                &org.member.email,
                "member",
            )
            .await;
            server(app, &fresh, &org.owner, "doomed", &[]).await;
            (
                Method::DELETE,
                format!("/api/v1/organizations/{fresh}"),
                None,
            )
        }
        other => panic!("unknown route {other}"),
    }
}

const ROUTES: &[Route] = &[
    Route {
        name: "get org",
        expect: [404, 200, 200, 200],
    },
    Route {
        name: "rename org",
        expect: [404, 403, 403, 200],
    },
    Route {
        name: "list members",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "set member role",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "list invitations",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "invite",
        expect: [404, 403, 201, 201],
    },
    Route {
        name: "list sources",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "create source",
        expect: [404, 403, 201, 201],
    },
    Route {
        name: "get source",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "update source",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "list servers",
        expect: [404, 200, 200, 200],
    },
    Route {
        name: "create server",
        expect: [404, 403, 201, 201],
    },
    Route {
        name: "get server",
        expect: [404, 200, 200, 200],
    },
    Route {
        name: "rename server",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "get deleted server",
        expect: [404, 404, 200, 200],
    },
    Route {
        name: "attach source",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "list keys",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "create key",
        expect: [404, 403, 201, 201],
    },
    Route {
        name: "list grants",
        expect: [404, 200, 200, 200],
    },
    Route {
        name: "list calls",
        expect: [404, 200, 200, 200],
    },
    Route {
        name: "call summary",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "call series",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "activity",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "delete source",
        expect: [404, 403, 204, 204],
    },
    Route {
        name: "detach source",
        expect: [404, 403, 200, 200],
    },
    Route {
        name: "delete server",
        expect: [404, 403, 204, 204],
    },
    Route {
        name: "restore server",
        expect: [404, 404, 200, 200],
    },
    Route {
        name: "revoke key",
        expect: [404, 403, 204, 204],
    },
    Route {
        name: "disconnect another's grant",
        expect: [404, 404, 204, 204],
    },
    Route {
        name: "revoke invitation",
        expect: [404, 403, 204, 204],
    },
    Route {
        name: "remove a member",
        expect: [404, 403, 204, 204],
    },
    Route {
        name: "delete org",
        expect: [404, 403, 403, 204],
    },
];

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_route_answers_each_role_of_three_organizations_as_expected(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |settings| {
        settings.control_plane.mcp_gateway_url_pools = "https://*.mcp.example.com".into();
        // Dozens of sign-ups from one address.
        settings.control_plane.signin_attempts_per_minute_per_client = 10_000;
    })
    .await;
    let mut orgs = Vec::new();
    for n in 0..3 {
        orgs.push(organization(&app, n).await);
    }
    let mut cells = 0;
    for (n, org) in orgs.iter().enumerate() {
        // The stranger is the owner of the next organization: signed in, with objects of their
        // own, in no way related to this one.
        let stranger = &orgs[(n + 1) % orgs.len()].owner;
        for route in ROUTES {
            for (who, expected) in EVERYONE.iter().zip(route.expect) {
                let caller = match who {
                    Who::Stranger => stranger,
                    Who::Member => &org.member,
                    Who::Admin => &org.admin,
                    Who::Owner => &org.owner,
                };
                let (method, path, body) = request(&app, &pool, org, route.name).await;
                let before = stored(&pool).await;
                let mut call = app.authed(method, &path, &caller.token);
                if let Some(body) = &body {
                    call = call.json(body);
                }
                let response = call.send().await.unwrap();
                let status = response.status().as_u16();
                let text = response.text().await.unwrap();
                assert_eq!(
                    status, expected,
                    "org {n}, {} as {who:?}: {text}",
                    route.name
                );
                if status >= 400 {
                    assert_eq!(
                        stored(&pool).await,
                        before,
                        "org {n}, {} as {who:?} refused but changed data",
                        route.name
                    );
                    let error: Value = serde_json::from_str(&text).unwrap();
                    let code = error["error"]["code"].as_str().unwrap();
                    match status {
                        404 => assert!(code == "not_found", "{code}"),
                        403 => {
                            assert_eq!(code, "role_required");
                            let message = error["error"]["message"].as_str().unwrap();
                            assert!(
                                message.contains("`admin`") || message.contains("`owner`"),
                                "{message}"
                            );
                        }
                        _ => {}
                    }
                }
                if *who != Who::Admin && *who != Who::Owner {
                    assert!(
                        !text.contains(SECRET)
                            && !text.contains("source_metadata")
                            && !text.contains("subject_id"),
                        "org {n}, {} as {who:?} received source settings: {text}",
                        route.name
                    );
                }
                assert!(!text.contains(SECRET), "a secret came back: {text}");
                cells += 1;
            }
        }
    }
    assert_eq!(cells, 3 * ROUTES.len() * 4);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn lists_show_each_person_what_they_may_see_and_nothing_of_other_organizations(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |settings| {
        settings.control_plane.mcp_gateway_url_pools = "https://*.mcp.example.com".into();
        // Dozens of sign-ups from one address.
        settings.control_plane.signin_attempts_per_minute_per_client = 10_000;
    })
    .await;
    let a = organization(&app, 0).await;
    let b = organization(&app, 1).await;
    // A listed server of A that names nobody: the member of A does not see it.
    let hidden = server(&app, &a.id, &a.owner, "admins only", &[]).await;
    let listed = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/mcp-servers/{hidden}"),
            &a.owner.token,
            &json!({"member_access": "listed", "listed_members": []}),
        )
        .await;
    assert_eq!(listed.status(), StatusCode::OK);
    let ids = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let member_servers = ids(app
        .json(Method::GET, "/api/v1/mcp-servers", &a.member.token)
        .await);
    assert_eq!(
        member_servers,
        vec![a.server.clone()],
        "a member sees the shared live server only"
    );
    let hidden_get = app
        .send(
            Method::GET,
            &format!("/api/v1/mcp-servers/{hidden}"),
            &a.member.token,
        )
        .await;
    assert_eq!(hidden_get.status(), StatusCode::NOT_FOUND);
    let admin_servers = ids(app
        .json(
            Method::GET,
            "/api/v1/mcp-servers?include_deleted=true",
            &a.admin.token,
        )
        .await);
    for id in [&a.server, &a.deleted_server, &hidden] {
        assert!(admin_servers.contains(id), "an admin sees {id}");
    }
    for id in [&b.server, &b.deleted_server] {
        assert!(
            !admin_servers.contains(id),
            "nothing of another organization"
        );
    }
    // A key made by an admin of a team server records who made it.
    let key = app
        .send_json(
            Method::POST,
            &format!("/api/v1/mcp-servers/{}/keys", a.server),
            &a.admin.token,
            &json!({"name": "ci"}),
        )
        .await;
    assert_eq!(key.status(), StatusCode::CREATED);
    let key: Value = key.json().await.unwrap();
    assert_eq!(key["created_by"], json!(a.admin.id), "{key}");
    let keys = app
        .json(
            Method::GET,
            &format!("/api/v1/mcp-servers/{}/keys", a.server),
            &a.owner.token,
        )
        .await;
    assert_eq!(keys["items"][0]["created_by"], json!(a.admin.id), "{keys}");

    // A member's view of a server names no sources and no listed members; an admin's does.
    let path = format!("/api/v1/mcp-servers/{}", a.server);
    let seen_by_member = app.json(Method::GET, &path, &a.member.token).await;
    assert_eq!(seen_by_member["source_ids"], json!([]), "{seen_by_member}");
    assert!(seen_by_member["mcp_url"].as_str().is_some());
    let seen_by_admin = app.json(Method::GET, &path, &a.admin.token).await;
    assert_eq!(
        seen_by_admin["source_ids"],
        json!([a.source]),
        "{seen_by_admin}"
    );
    let member_sources = app
        .json(Method::GET, "/api/v1/sources", &a.member.token)
        .await;
    assert_eq!(
        member_sources["total"], 0,
        "a member lists no sources: {member_sources}"
    );
    let orgs = app
        .json(Method::GET, "/api/v1/organizations", &a.member.token)
        .await;
    let names: Vec<&str> = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Personal", "Org 0"]);
}
