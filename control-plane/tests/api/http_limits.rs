//! The control plane's HTTP limits (issue 13, findings 7 and 8): a client sending its headers
//! slowly is cut off within `HTTP_HEADER_TIMEOUT_SECS`, and a request id is kept only when
//! short and plain.

use std::time::{Duration, Instant};

use reqwest::Method;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::spawn_app_with;

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_client_sending_headers_slowly_is_cut_off_in_time(pool: PgPool) {
    let app = spawn_app_with(pool, |s| s.common.http_header_timeout_secs = 1).await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(b"POST /api/v1/signin HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    for n in 0.. {
        if started.elapsed() > Duration::from_secs(10)
            || stream
                .write_all(format!("X-Slow-{n}: 1\r\n").as_bytes())
                .await
                .is_err()
        {
            break;
        }
        let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buffer)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            break;
        }
    }
    let open = started.elapsed();
    assert!(
        open < Duration::from_secs(3),
        "the connection stayed open {open:?}"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_long_request_id_is_replaced_and_a_short_one_kept(pool: PgPool) {
    let app = spawn_app_with(pool, |_| {}).await;
    let id_for = |id: String| {
        let request = app
            .request(Method::GET, "/healthz")
            .header("x-request-id", id);
        async move {
            let response = request.send().await.unwrap();
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let long = "b".repeat(10_000);
    let replaced = id_for(long.clone()).await;
    assert_ne!(replaced, long);
    assert_eq!(replaced.len(), 36, "a new UUID: {replaced}");
    assert_eq!(id_for("client-7".to_owned()).await, "client-7");
}
