//! A byte-counting relay between sqlx and a `postgres` source's server, so that a hostile
//! server cannot make the gateway hold more than a bounded answer in memory.
//!
//! Why a relay: sqlx-postgres 0.9 reads every wire message whole before handing it on (it reads
//! the 5-byte header, then grows its buffer to the length the server announced) and has no
//! hook on its socket: `net::connect_tcp` is hard-wired, the only other way in is a Unix socket
//! path. So a server that ignores `LIMIT` or `left()` can send one DataRow of gigabytes, and a
//! row stream above sqlx only ever sees it once it is in memory. The relay listens where sqlx
//! connects (a Unix socket in a directory of its own, mode 0700, so no other local user can use
//! it to reach the server) and copies bytes to and from the server, counting what the server
//! sends since the gateway last wrote: one exchange, the answer to one statement. Past the
//! budget it closes both sides at once: nothing more is read, the connection is gone (sqlx sees
//! it closed and the pool drops it, nothing is drained), and the cut is counted so the handler
//! can say why the statement failed.
//!
//! It parses nothing, so it works the same under TLS (sqlx negotiates TLS through it, end to
//! end with the server) and on the startup exchange. What it cannot stop: sqlx still *reserves*
//! buffer capacity for the length a hostile message header announces (address space, up to
//! 4 GiB, with or without TLS); only bytes actually relayed are written to it, so the resident
//! growth stays within the budget. A host that does not overcommit memory could refuse such a
//! reservation.
//!
//! A write that makes no progress for [`STALL`] ends the connection: a server that stops
//! reading (or a client that does) cannot hold a relay, its task and its two sockets forever.

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UnixListener, UnixStream},
};

/// Bytes copied at a time, each way.
const CHUNK: usize = 16 * 1024;
/// Longest a write to either side may wait for the other end to read.
const STALL: Duration = Duration::from_secs(30);

/// One relay: a listening socket sqlx connects to, each connection relayed to `upstream`.
/// Dropping it stops accepting and removes its directory; relayed connections end with the
/// pool's.
pub struct Relay {
    dir: PathBuf,
    cuts: Arc<AtomicU64>,
    accepting: tokio::task::AbortHandle,
}

impl Relay {
    /// Listens at `<new private directory>/.s.PGSQL.<port>` (where sqlx looks for a server's
    /// socket), relaying to `upstream`, at most `budget` bytes of answer per exchange; the
    /// server is given `connect_timeout` to accept.
    pub fn start(
        port: u16,
        upstream: SocketAddr,
        budget: usize,
        connect_timeout: Duration,
    ) -> io::Result<Self> {
        let dir = private_dir()?;
        let listener = match UnixListener::bind(dir.join(format!(".s.PGSQL.{port}"))) {
            Ok(listener) => listener,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(err);
            }
        };
        let cuts = Arc::new(AtomicU64::new(0));
        let counted = cuts.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let cuts = counted.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(server)) =
                        tokio::time::timeout(connect_timeout, TcpStream::connect(upstream)).await
                    {
                        relay(client, server, budget, &cuts).await;
                    }
                });
            }
        })
        .abort_handle();
        Ok(Self {
            dir,
            cuts,
            accepting,
        })
    }

    /// The directory to give sqlx as the socket (`PgConnectOptions::socket`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many connections were cut for answering more than the budget, so far.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accepting.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new directory only this user may enter, under the temporary directory. The name is
/// short: a Unix socket path is at most 107 bytes.
fn private_dir() -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o700);
    for _ in 0..8 {
        let name = format!(
            "mcp-pg-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let dir = std::env::temp_dir().join(name);
        // `create` fails on anything already there (a symlink included), so the directory is
        // ours.
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other("no free relay directory name"))
}

/// Copies both ways until either side closes or the server's answer to one exchange passes
/// `budget` (then both are closed, the rest unread).
async fn relay(client: UnixStream, server: TcpStream, budget: usize, cuts: &AtomicU64) {
    let _ = server.set_nodelay(true);
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    let (mut asked, mut answer) = (vec![0; CHUNK], vec![0; CHUNK]);
    let mut answered = 0usize;
    loop {
        tokio::select! {
            read = client_in.read(&mut asked) => {
                let Ok(n @ 1..) = read else { break };
                // The gateway spoke: what the server sends from now on answers this.
                answered = 0;
                if !written(&mut server_out, &asked[..n]).await {
                    break;
                }
            }
            read = server_in.read(&mut answer) => {
                let Ok(n @ 1..) = read else { break };
                answered += n;
                if answered > budget {
                    cuts.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                if !written(&mut client_out, &answer[..n]).await {
                    break;
                }
            }
        }
    }
}

/// Whether `bytes` were written within [`STALL`].
async fn written(to: &mut (impl AsyncWriteExt + Unpin), bytes: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(STALL, to.write_all(bytes)).await,
        Ok(Ok(()))
    )
}
