//! What a hostile `postgres` source server costs the gateway in memory: a fake PostgreSQL
//! server written here (trust authentication, then the extended-query flow sqlx uses) answers
//! one search with about 400 MB, either as rows ignoring the statement's `LIMIT` or as one row
//! ignoring `left()`, generated as it is sent and stopped once the gateway hangs up. The
//! gateway's resident set must grow by less than 20 MiB and the search must end with a clear
//! answer well before the source deadline. A binary of its own, so no other test allocates
//! while the resident set is measured.

#[path = "mcp/fake.rs"]
#[allow(dead_code)]
mod fake;
#[path = "mcp/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "mcp/rss.rs"]
mod rss;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{
    helpers::{call, eventually, spawn_real_stack},
    rss::peak_growth,
};

/// What the fake server sends for one search: about 400 MB.
const HOSTILE_BYTES: usize = 400 * 1024 * 1024;
/// Most the gateway's resident set may grow meanwhile.
const MAX_GROWTH_BYTES: u64 = 20 * 1024 * 1024;
/// The source deadline (the statement timeout is four fifths of it).
const DEADLINE_MS: u64 = 5000;
const CHUNK: usize = 64 * 1024;

/// How the fake server answers a statement.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// Row after row of a 500-byte title, past any `LIMIT`.
    Rows,
    /// One row whose title is the whole 400 MB, past `left(title, 512)`.
    HugeRow,
}

/// A backend message: its type, then its length (itself included) and body.
fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstring(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

/// A DataRow of text columns.
fn data_row(columns: &[&[u8]]) -> Vec<u8> {
    let mut body = (columns.len() as u16).to_be_bytes().to_vec();
    for column in columns {
        body.extend_from_slice(&(column.len() as u32).to_be_bytes());
        body.extend_from_slice(column);
    }
    message(b'D', &body)
}

/// Two text columns, `id` and `title`: what a search statement returns.
fn row_description() -> Vec<u8> {
    let mut body = 2u16.to_be_bytes().to_vec();
    for name in ["id", "title"] {
        cstring(&mut body, name);
        body.extend_from_slice(&0u32.to_be_bytes()); // table oid
        body.extend_from_slice(&0u16.to_be_bytes()); // column number
        body.extend_from_slice(&25u32.to_be_bytes()); // text
        body.extend_from_slice(&(-1i16).to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes());
    }
    message(b'T', &body)
}

/// The parameter types a Parse message declares.
fn parse_parameter_types(body: &[u8]) -> Vec<u8> {
    let mut at = 0;
    for _ in 0..2 {
        // statement name, then query text, each NUL-terminated
        at += body[at..].iter().position(|b| *b == 0).unwrap() + 1;
    }
    let count = u16::from_be_bytes([body[at], body[at + 1]]) as usize;
    let mut description = (count as u16).to_be_bytes().to_vec();
    description.extend_from_slice(&body[at + 2..at + 2 + count * 4]);
    description
}

/// Sends the hostile answer, lazily, until it is all sent or the gateway hangs up; how many
/// bytes went out.
async fn send_hostile(socket: &mut TcpStream, shape: Hostile) -> usize {
    let mut sent = 0;
    match shape {
        Hostile::Rows => {
            let title = vec![b'x'; 500];
            let mut n = 0u64;
            while sent < HOSTILE_BYTES {
                let mut chunk = Vec::with_capacity(CHUNK + 600);
                while chunk.len() < CHUNK {
                    n += 1;
                    chunk.extend(data_row(&[n.to_string().as_bytes(), &title]));
                }
                if socket.write_all(&chunk).await.is_err() {
                    return sent;
                }
                sent += chunk.len();
            }
        }
        Hostile::HugeRow => {
            // The header announces it whole; the title's bytes follow chunk by chunk.
            let mut head = b"D".to_vec();
            head.extend_from_slice(&((4 + 2 + 4 + 1 + 4 + HOSTILE_BYTES) as u32).to_be_bytes());
            head.extend_from_slice(&2u16.to_be_bytes());
            head.extend_from_slice(&1u32.to_be_bytes());
            head.push(b'1');
            head.extend_from_slice(&(HOSTILE_BYTES as u32).to_be_bytes());
            if socket.write_all(&head).await.is_err() {
                return sent;
            }
            let chunk = vec![b'x'; CHUNK];
            while sent < HOSTILE_BYTES {
                if socket.write_all(&chunk).await.is_err() {
                    return sent;
                }
                sent += CHUNK;
            }
        }
    }
    sent
}

/// One client of the fake server: trust authentication, then statements answered until the
/// client leaves. Reports the bytes each hostile answer got out.
async fn serve(
    mut socket: TcpStream,
    shape: Hostile,
    sent: tokio::sync::mpsc::UnboundedSender<usize>,
) {
    // Startup: length, then protocol version and parameters (an SSLRequest is declined).
    loop {
        let len = socket.read_u32().await.unwrap_or(0) as usize;
        let mut body = vec![0; len.saturating_sub(4)];
        if len < 8 || socket.read_exact(&mut body).await.is_err() {
            return;
        }
        if body[..4] == 80_877_103u32.to_be_bytes() {
            let _ = socket.write_all(b"N").await;
            continue;
        }
        break;
    }
    let mut hello = message(b'R', &0u32.to_be_bytes());
    for (name, value) in [
        ("server_version", "15.4"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
    ] {
        let mut body = Vec::new();
        cstring(&mut body, name);
        cstring(&mut body, value);
        hello.extend(message(b'S', &body));
    }
    hello.extend(message(b'K', &[0, 0, 0, 1, 0, 0, 0, 2]));
    hello.extend(message(b'Z', b"I"));
    if socket.write_all(&hello).await.is_err() {
        return;
    }
    let mut parameters = vec![0, 0];
    loop {
        let Ok(kind) = socket.read_u8().await else {
            return;
        };
        let len = socket.read_u32().await.unwrap_or(0) as usize;
        let mut body = vec![0; len.saturating_sub(4)];
        if socket.read_exact(&mut body).await.is_err() {
            return;
        }
        let reply = match kind {
            b'P' => {
                parameters = parse_parameter_types(&body);
                message(b'1', &[])
            }
            b'D' if body.first() == Some(&b'S') => {
                let mut reply = message(b't', &parameters);
                reply.extend(row_description());
                reply
            }
            b'D' => row_description(),
            b'B' => message(b'2', &[]),
            b'C' => message(b'3', &[]),
            b'E' => {
                let _ = sent.send(send_hostile(&mut socket, shape).await);
                message(b'C', b"SELECT 1\0")
            }
            b'S' => message(b'Z', b"I"),
            b'X' => return,
            _ => Vec::new(),
        };
        if socket.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// The fake server on a free port; every hostile answer's byte count is sent to the receiver.
async fn fake_postgres(shape: Hostile) -> (u16, tokio::sync::mpsc::UnboundedReceiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sent, bytes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, shape, sent.clone()));
        }
    });
    (port, bytes)
}

fn source(port: u16) -> Value {
    json!({"type": "postgres", "source_metadata": {
        "host": "127.0.0.1", "port": port, "database": "crm", "user": "reader",
        "password": "never-shown", "sslmode": "disable",
        "tables": [{"table": "public.docs", "id_column": "id", "title_column": "title",
                    "text_columns": ["body"]}]}})
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_hostile_server_sending_400_mb_for_a_search_grows_the_gateway_by_less_than_20_mib(
    pool: PgPool,
) {
    let stack = spawn_real_stack(pool, |s| {
        s.sources.postgres_allowed_hosts = vec!["127.0.0.1".to_owned()];
        s.sources.postgres_allow_insecure_hosts = vec!["127.0.0.1".to_owned()];
        s.gateway.source_timeout_ms = DEADLINE_MS;
    })
    .await;
    let ada = stack.user("ada@example.com").await;
    for (shape, expected) in [(Hostile::Rows, None), (Hostile::HugeRow, Some("too large"))] {
        let (port, mut sent) = fake_postgres(shape).await;
        let source = stack.source(&ada, source(port)).await;
        let (_, host) = stack
            .server(&ada, &format!("{shape:?}").to_lowercase(), &[&source])
            .await;
        eventually(Duration::from_secs(2), "served", || stack.serves(&host)).await;
        let client = stack.client(&host).await;

        let started = Instant::now();
        let (answer, growth) =
            peak_growth(call(&client, "search", json!({"query": "budget"}))).await;
        let took = started.elapsed();
        let sent = sent.recv().await.expect("the fake server answered");
        let mib = growth as f64 / 1024.0 / 1024.0;
        eprintln!(
            "{shape:?}: the fake server got {:.1} MiB out before the gateway hung up; peak \
             growth {mib:.1} MiB; answered in {took:?}",
            sent as f64 / 1024.0 / 1024.0
        );
        assert!(
            growth < MAX_GROWTH_BYTES,
            "{shape:?}: the resident set grew by {mib:.1} MiB"
        );
        assert!(
            sent < 64 * 1024 * 1024,
            "{shape:?}: the gateway read {sent} bytes before hanging up"
        );
        assert!(
            took < Duration::from_millis(DEADLINE_MS),
            "{shape:?}: answered after {took:?}"
        );
        match expected {
            // Rows past the LIMIT: the rows asked for, the rest unread.
            None => {
                assert_ne!(answer.is_error, Some(true), "{shape:?}: {answer:?}");
                let results = answer.structured_content.expect("results")["results"]
                    .as_array()
                    .unwrap()
                    .len();
                assert!((1..=20).contains(&results), "{shape:?}: {results} results");
            }
            Some(reason) => {
                let message = helpers::error_text(&answer);
                assert!(message.contains(reason), "{shape:?}: {message}");
                assert!(!message.contains("xxxx"), "{shape:?}: {message}");
            }
        }
        client.cancel().await.unwrap();
    }
}
