//! A TCP proxy that fault tests put between clockworks and PostgreSQL or RabbitMQ, to cut,
//! stall and restore the connections on command.
//!
//! Each accepted client gets its own upstream connection. A stalled proxy stops reading from
//! both sides, so bytes wait in the kernel's socket buffers (or in one bounded buffer per
//! direction) and none is lost when forwarding resumes. A cut proxy resets every connection
//! and resets each new one as soon as it is accepted: a client's connect succeeds and is then
//! reset, rather than refused, because the listening socket stays bound so that the proxy's
//! address never changes.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Bytes one direction of one connection holds between reading and writing them on.
const BUFFER_BYTES: usize = 16 * 1024;

/// Pause after a failed accept (for example when out of file descriptors), so that a lasting
/// failure does not spin.
const ACCEPT_RETRY_MS: u64 = 50;

/// What the proxy does with its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Stall,
    Cut,
}

/// A controllable TCP proxy to one upstream address. Dropping it closes every connection.
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    open: watch::Sender<usize>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// Listens on an ephemeral port of 127.0.0.1 and forwards each client to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;

        let (mode, _) = watch::channel(Mode::Forward);
        let (open, _) = watch::channel(0);
        let acceptor = tokio::spawn(accept(listener, upstream, mode.subscribe(), open.clone()));

        Ok(Proxy {
            addr,
            mode,
            open,
            acceptor,
        })
    }

    /// The address clients connect to instead of the upstream one.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resets every open connection, and every new one as soon as it is accepted, until
    /// [`Proxy::restore`]. Returns once no connection is open any more.
    pub async fn cut(&self) {
        self.mode.send_replace(Mode::Cut);

        // The sender lives in `self`, so waiting can only end by the count reaching zero.
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|count| *count == 0).await;
    }

    /// Stops forwarding bytes in both directions until [`Proxy::restore`]; connections stay
    /// open and new ones are accepted, but no byte passes.
    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stall);
    }

    /// Forwards bytes again; stalled connections resume where they stopped.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Forward);
    }

    /// Client connections currently open through the proxy.
    pub fn connection_count(&self) -> usize {
        *self.open.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The acceptor owns every connection task, so aborting it ends them all.
        self.acceptor.abort();
    }
}

/// `url` with its host and port replaced by the proxy's address, keeping the scheme, user,
/// password, path and query. Works for URL-shaped connection strings such as `postgres://`
/// and `amqp://`, not for PostgreSQL's `key=value` form.
///
/// # Panics
///
/// If `url` does not start with `scheme://`.
pub fn url_through(url: &str, proxy: &Proxy) -> String {
    let (start, end) = host_port_span(url);
    format!("{}{}{}", &url[..start], proxy.addr(), &url[end..])
}

/// The byte range of a URL's `host:port`: its authority without the user information.
fn host_port_span(url: &str) -> (usize, usize) {
    let authority_start = url
        .find("://")
        .map(|scheme_end| scheme_end + "://".len())
        .unwrap_or_else(|| panic!("{url:?} is not a URL with a scheme"));

    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host_start = rest[..authority_len].rfind('@').map_or(0, |at| at + 1);

    (
        authority_start + host_start,
        authority_start + authority_len,
    )
}

/// Accepts clients until the proxy is dropped, serving each on a task of its own.
async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<Mode>,
    open: watch::Sender<usize>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    // Counted before the mode is read, so that a `cut` which has seen no open
                    // connection is sure this one will see the cut too.
                    let counted = OpenConnection::count(&open);
                    if *mode.borrow() == Mode::Cut {
                        reset(client);
                        continue;
                    }
                    connections.spawn(serve(client, upstream, mode.clone(), counted));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await,
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

/// One client connection, counted for as long as it is open.
struct OpenConnection(watch::Sender<usize>);

impl OpenConnection {
    fn count(open: &watch::Sender<usize>) -> OpenConnection {
        open.send_modify(|count| *count += 1);
        OpenConnection(open.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count -= 1);
    }
}

/// Connects `client` to `upstream` and forwards between them until both ends close, either
/// fails, or the proxy is cut.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    _open: OpenConnection,
) {
    let connected = tokio::select! {
        connected = TcpStream::connect(upstream) => connected.ok(),
        () = until_cut(&mut mode) => None,
    };
    let Some(mut server) = connected else {
        reset(client);
        return;
    };

    // Both protocols send small messages; the proxy must not add Nagle delays of its own.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let ended_abruptly = {
        let (to_server, to_client) = (mode.clone(), mode.clone());
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let forward = async {
            tokio::try_join!(
                pump(client_read, server_write, to_server),
                pump(server_read, client_write, to_client),
            )
        };
        tokio::select! {
            forwarded = forward => forwarded.is_err(),
            () = until_cut(&mut mode) => true,
        }
    };

    // A failure on one side is passed on to the other as the same kind of abrupt end.
    if ended_abruptly {
        reset(client);
        reset(server);
    }
}

/// Copies `from` to `to` while the proxy forwards, holding still while it is stalled, and
/// passes the end of `from` on as a shutdown of `to`.
async fn pump<R, W>(mut from: R, mut to: W, mut mode: watch::Receiver<Mode>) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0; BUFFER_BYTES];
    loop {
        // Reads and writes are dropped mid-way when the mode changes; both are cancel safe,
        // so nothing is lost or sent twice.
        let read = loop {
            until_forwarding(&mut mode).await?;
            tokio::select! {
                read = from.read(&mut buffer) => break read?,
                changed = mode.changed() => changed.map_err(proxy_dropped)?,
            }
        };

        // The end of the stream is forwarded like data: not while stalled.
        if read == 0 {
            until_forwarding(&mut mode).await?;
            return to.shutdown().await;
        }

        let mut written = 0;
        while written < read {
            until_forwarding(&mut mode).await?;
            tokio::select! {
                wrote = to.write(&buffer[written..read]) => match wrote? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    wrote => written += wrote,
                },
                changed = mode.changed() => changed.map_err(proxy_dropped)?,
            }
        }
    }
}

/// Waits until the proxy forwards; while it is cut this waits for good, and the connection
/// is ended by [`until_cut`] instead.
async fn until_forwarding(mode: &mut watch::Receiver<Mode>) -> io::Result<()> {
    mode.wait_for(|mode| *mode == Mode::Forward)
        .await
        .map(drop)
        .map_err(proxy_dropped)
}

/// Resolves when the proxy is cut or dropped.
async fn until_cut(mode: &mut watch::Receiver<Mode>) {
    let _ = mode.wait_for(|mode| *mode == Mode::Cut).await;
}

fn proxy_dropped(_: watch::error::RecvError) -> io::Error {
    io::Error::other("the proxy was dropped")
}

/// Closes `stream` with a reset rather than an orderly shutdown, as a vanished peer would.
fn reset(stream: TcpStream) {
    // Without the option the stream still closes, only with a FIN instead of a reset.
    let _ = stream.set_zero_linger();
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;

    use anyhow::{Context, Result};
    use tokio::time::timeout;
    use tokio_postgres::NoTls;

    use crate::TestDb;

    /// A generous bound for something that should happen at once.
    const PROMPTLY: Duration = Duration::from_secs(10);

    /// How long a stalled connection is watched for bytes that must not arrive.
    const STALL_PROBE: Duration = Duration::from_millis(300);

    /// Bytes sent through in one go to make the proxy refill its buffers many times.
    const LARGE_PAYLOAD_BYTES: usize = 1024 * 1024;

    /// An echo server on an ephemeral port, running until the test's runtime ends.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut reader, mut writer) = stream.split();
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                });
            }
        });
        addr
    }

    async fn echoed(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
        stream.write_all(bytes).await.unwrap();
        echo_of(stream, bytes.len()).await
    }

    async fn echo_of(stream: &mut TcpStream, len: usize) -> Vec<u8> {
        let mut echo = vec![0; len];
        timeout(PROMPTLY, stream.read_exact(&mut echo))
            .await
            .expect("the echo arrives")
            .unwrap();
        echo
    }

    async fn cut_promptly(proxy: &Proxy) {
        timeout(PROMPTLY, proxy.cut())
            .await
            .expect("the cut closes every connection promptly");
    }

    async fn assert_closed_promptly(stream: &mut TcpStream) {
        let read = timeout(PROMPTLY, stream.read(&mut [0; 64]))
            .await
            .expect("the connection closes promptly");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "expected an end of stream or an error, got {read:?}"
        );
    }

    async fn assert_no_bytes_arrive(stream: &mut TcpStream) {
        let read = timeout(STALL_PROBE, stream.read(&mut [0; 64])).await;
        assert!(read.is_err(), "expected nothing to arrive, got {read:?}");
    }

    #[tokio::test]
    async fn bytes_pass_through_in_both_directions() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();

        assert_eq!(echoed(&mut client, b"hello").await, b"hello");
        assert_eq!(proxy.connection_count(), 1);
    }

    #[tokio::test]
    async fn a_payload_larger_than_the_buffers_passes_through_intact() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let client = TcpStream::connect(proxy.addr()).await.unwrap();
        let payload: Vec<u8> = (0..LARGE_PAYLOAD_BYTES).map(|i| (i % 251) as u8).collect();

        let (mut reader, mut writer) = client.into_split();
        let send = async {
            writer.write_all(&payload).await.unwrap();
            writer.shutdown().await.unwrap();
        };
        let receive = async {
            let mut echo = Vec::new();
            timeout(PROMPTLY, reader.read_to_end(&mut echo))
                .await
                .expect("the whole echo arrives and the stream ends")
                .unwrap();
            echo
        };
        let ((), echo) = tokio::join!(send, receive);

        assert!(echo == payload, "the echo differs from what was sent");
    }

    #[tokio::test]
    async fn a_cut_closes_open_connections_and_refuses_new_ones_until_restored() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(echoed(&mut open, b"before").await, b"before");

        cut_promptly(&proxy).await;

        assert_eq!(proxy.connection_count(), 0);
        assert_closed_promptly(&mut open).await;
        if let Ok(mut refused) = TcpStream::connect(proxy.addr()).await {
            assert_closed_promptly(&mut refused).await;
        }

        proxy.restore();

        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(echoed(&mut fresh, b"after").await, b"after");
    }

    #[tokio::test]
    async fn a_stall_holds_every_byte_until_restored() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(echoed(&mut open, b"before").await, b"before");

        proxy.stall();

        open.write_all(b"held").await.unwrap();
        assert_no_bytes_arrive(&mut open).await;
        let mut during = TcpStream::connect(proxy.addr()).await.unwrap();
        during.write_all(b"also held").await.unwrap();
        assert_no_bytes_arrive(&mut during).await;

        proxy.restore();

        assert_eq!(echo_of(&mut open, 4).await, b"held");
        assert_eq!(echo_of(&mut during, 9).await, b"also held");
        assert_eq!(proxy.connection_count(), 2);
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_connections() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(echoed(&mut client, b"hello").await, b"hello");

        drop(proxy);

        assert_closed_promptly(&mut client).await;
    }

    #[tokio::test]
    async fn url_through_replaces_only_the_host_and_port() {
        let proxy = Proxy::start("127.0.0.1:9".parse().unwrap()).await.unwrap();
        let through = proxy.addr();

        assert_eq!(
            url_through(
                "postgres://postgres@127.0.0.1:5432/cw_test_x?sslmode=disable",
                &proxy
            ),
            format!("postgres://postgres@{through}/cw_test_x?sslmode=disable")
        );
        assert_eq!(
            url_through("amqp://guest:guest@127.0.0.1:5672/%2f", &proxy),
            format!("amqp://guest:guest@{through}/%2f")
        );
        assert_eq!(
            url_through("postgres://db.internal?user=postgres", &proxy),
            format!("postgres://{through}?user=postgres")
        );
    }

    #[tokio::test]
    async fn a_postgres_query_fails_promptly_after_a_cut() -> Result<()> {
        let db = TestDb::create().await?;
        let (start, end) = host_port_span(&db.url);
        let upstream = tokio::net::lookup_host(&db.url[start..end])
            .await?
            .next()
            .context("the database host resolves")?;
        let proxy = Proxy::start(upstream).await?;
        let url = url_through(&db.url, &proxy);

        let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
        tokio::spawn(connection);
        let one: i32 = client.query_one("select 1", &[]).await?.get(0);
        assert_eq!(one, 1);

        cut_promptly(&proxy).await;

        let after_cut = timeout(PROMPTLY, client.query_one("select 1", &[]))
            .await
            .context("the query after the cut ends instead of hanging")?;
        assert!(after_cut.is_err(), "the query after the cut succeeded");

        proxy.restore();

        let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
        tokio::spawn(connection);
        let one: i32 = client.query_one("select 1", &[]).await?.get(0);
        assert_eq!(one, 1);

        drop(client);
        db.drop_database().await
    }
}
