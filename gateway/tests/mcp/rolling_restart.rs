//! A rolling restart behind the shipped nginx configuration fails no call (issue 13, finding
//! 10): two gateway replicas behind nginx (the shipped pool snippet: keep-alive upstreams,
//! `proxy_next_upstream`), search load, each replica stopped and started again in turn.
//! A stopping replica turns unready, answers with `Connection: close` while it drains, then
//! closes its listener; nginx resends what was refused or reset to the other replica.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{eventually, registry, settings, spawn_stack};

const NGINX: &str = "/usr/sbin/nginx";

/// A gateway replica on a fixed port, and how to stop it.
struct Replica {
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn replica(pool: &PgPool, port: u16) -> Replica {
    let mut settings = settings();
    settings.gateway.addr = ([127, 0, 0, 1], port).into();
    settings.gateway.drain_secs = 1;
    settings.gateway.key_requests_per_minute = 1_000_000;
    settings.gateway.metrics_addr = String::new();
    let app = gateway::Application::build(&settings, pool.clone(), registry())
        .await
        .expect("replica starts");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    Replica { stop, done }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx with the shipped pool snippet in front of `upstreams`; killed when dropped.
struct Nginx {
    child: std::process::Child,
    _dir: PathBuf,
}

impl Drop for Nginx {
    /// SIGTERM first: the master then stops its worker. A SIGKILL alone left the worker running,
    /// orphaned, holding the test run's output pipe open after the run had ended.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn nginx(listen: u16, upstreams: &[u16]) -> Nginx {
    assert!(
        std::path::Path::new(NGINX).exists(),
        "nginx is needed for this test: apt-get install nginx (./dev test and .ci/run install it)"
    );
    let dir = std::env::temp_dir().join(format!("mcp-nginx-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let snippet = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/nginx/snippets/mcp-gateway-pool.conf"
    );
    let servers: String = upstreams
        .iter()
        .map(|p| format!("server 127.0.0.1:{p} max_fails=0;\n"))
        .collect();
    let conf = format!(
        "pid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log warn;\nworker_processes 1;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n access_log off;\n client_body_temp_path {dir}/body;\n proxy_temp_path {dir}/proxy;\n\
         upstream mcp_gateway {{ least_conn;\n{servers} keepalive 64;\n keepalive_timeout 10s; }}\n\
         map $http_x_request_id $mcp_request_id {{ \"\" $request_id; default $http_x_request_id; }}\n\
         server {{ listen 127.0.0.1:{listen};\n include {snippet}; }}\n}}\n",
        dir = dir.display(),
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = std::process::Command::new(NGINX)
        .args([
            "-p",
            &dir.display().to_string(),
            "-c",
            "nginx.conf",
            "-e",
            "stderr",
            "-g",
            "daemon off;",
        ])
        // Its own errors go to `-e stderr`; nothing it leaves behind may hold our stdout.
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("nginx starts");
    Nginx { child, _dir: dir }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_rolling_restart_of_two_replicas_behind_nginx_fails_no_call(pool: PgPool) {
    // The control plane (and a first gateway the helpers start, unused here).
    let stack = spawn_stack(pool.clone(), pool.clone(), |_| {}).await;
    let token = stack.user("ada@example.com").await;
    let files = stack.files(&token, "1").await;
    let (_, host) = stack.server(&token, "s", &[&files]).await;
    let key = stack.key_of(&host).unwrap();

    let ports = [free_port(), free_port()];
    let mut replicas = vec![
        replica(&pool, ports[0]).await,
        replica(&pool, ports[1]).await,
    ];
    let listen = free_port();
    let _nginx = nginx(listen, &ports);
    let url = format!("http://127.0.0.1:{listen}/mcp");
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "search", "arguments": {"query": "budget"}}});
    let call = {
        let (http, url, host, key, body) = (
            http.clone(),
            url.clone(),
            host.clone(),
            key.clone(),
            body.clone(),
        );
        move || {
            let (http, url, host, key, body) = (
                http.clone(),
                url.clone(),
                host.clone(),
                key.clone(),
                body.clone(),
            );
            async move {
                http.post(&url)
                    .header("host", &host)
                    .bearer_auth(&key)
                    .header("accept", "application/json, text/event-stream")
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status())
            }
        }
    };
    eventually(
        Duration::from_secs(5),
        "both replicas serve through nginx",
        || {
            let call = call.clone();
            async move { matches!(call().await, Ok(s) if s.is_success()) }
        },
    )
    .await;

    // Load: 8 clients back to back until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (call, stop, ok, failed) = (call.clone(), stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match call().await {
                    Ok(status) if status.is_success() => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("failed call: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, port) in ports.into_iter().enumerate() {
        let old = replicas.remove(0);
        old.stop.send(()).unwrap();
        old.done.await.unwrap().unwrap();
        replicas.push(replica(&pool, port).await);
        // Let the new replica load its snapshot and take load before the next one stops.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            ok.load(Ordering::Relaxed) > 0,
            "load flows after restart {i}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 100, "only {ok} calls went through");
    assert_eq!(
        failed,
        0,
        "{failed} of {} calls failed during the restart",
        ok + failed
    );
}
