//! What every accepted connection gets before HTTP sees it: no Nagle delay (WebSocket updates
//! are small and must go out at once), a deadline for its
//! first request's header (a client that sends half a header, or trickles it, is cut off), and
//! a JSON 431 when that header is too large (the HTTP library would answer with an empty body).
//! Idle keep-alive connections and sockets are closed by the server's idle timeout.

use poem::listener::{Acceptor, TcpAcceptor};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest request header accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most header lines accepted (the HTTP library's own limit is 100).
pub const MAX_HEADER_LINES: usize = 96;

/// Accepts TCP connections and guards each one.
pub struct GuardedAcceptor {
    inner: TcpAcceptor,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl GuardedAcceptor {
    pub fn new(inner: TcpAcceptor, header_timeout: Duration, idle_timeout: Duration) -> Self {
        Self { inner, header_timeout, idle_timeout }
    }
}

impl Acceptor for GuardedAcceptor {
    type Io = Guarded<tokio::net::TcpStream>;

    fn local_addr(&self) -> Vec<poem::web::LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, poem::web::LocalAddr, poem::web::RemoteAddr, poem::http::uri::Scheme)> {
        let (stream, local, remote, scheme) = self.inner.accept().await?;
        stream.set_nodelay(true)?;
        Ok((Guarded::new(stream, self.header_timeout, self.idle_timeout), local, remote, scheme))
    }
}

/// Where a connection's first request header stands.
enum Header {
    /// Still arriving: `matched` bytes of the `\r\n\r\n` that ends it seen, `bytes` and `lines` so far.
    Reading { deadline: Pin<Box<tokio::time::Sleep>>, matched: usize, bytes: usize, lines: usize },
    /// Too large: `answer` (the 431) is being written from `written` on, then the connection ends.
    Refusing { answer: Vec<u8>, written: usize },
    /// Complete: the connection is plain HTTP (or a socket) from here on.
    Done,
}

/// A connection whose first request header must arrive within a deadline and a size, and
/// which closes when idle.
pub struct Guarded<Io> {
    inner: Io,
    header: Header,
    idle_timeout: Duration,
    last_active: tokio::time::Instant,
    /// Wakes the reader when the connection may have gone idle; checked against `last_active`.
    idle_check: Pin<Box<tokio::time::Sleep>>,
}

impl<Io> Guarded<Io> {
    pub fn new(inner: Io, header_timeout: Duration, idle_timeout: Duration) -> Self {
        let deadline = Box::pin(tokio::time::sleep(header_timeout));
        let now = tokio::time::Instant::now();
        Self {
            inner,
            header: Header::Reading { deadline, matched: 0, bytes: 0, lines: 0 },
            idle_timeout,
            last_active: now,
            idle_check: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
        }
    }

    /// While a read waits: an error once nothing was read or written for the idle timeout.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        while self.idle_check.as_mut().poll(cx).is_ready() {
            let idle_until = self.last_active + self.idle_timeout;
            if idle_until <= tokio::time::Instant::now() {
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "the connection was idle too long"));
            }
            self.idle_check.as_mut().reset(idle_until);
        }
        Poll::Pending
    }
}

/// The answer to a header over the limits, in the API's error shape.
fn refusal() -> Vec<u8> {
    let detail =
        format!("the request header is larger than {MAX_HEADER_BYTES} bytes or has more than {MAX_HEADER_LINES} lines");
    // `detail` holds no character JSON must escape.
    let body = format!(r#"{{"detail":"{detail}","errors":["{detail}"],"success":false}}"#);
    format!(
        "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Scans `data` for the end of the header. Returns whether it ended, updating the counts.
fn scan(data: &[u8], matched: &mut usize, bytes: &mut usize, lines: &mut usize) -> bool {
    const END: &[u8] = b"\r\n\r\n";
    for &byte in data {
        *bytes += 1;
        if byte == b'\n' {
            *lines += 1;
        }
        *matched = if byte == END[*matched] {
            *matched + 1
        } else if byte == END[0] {
            1
        } else {
            0
        };
        if *matched == END.len() {
            return true;
        }
    }
    false
}

impl<Io: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<Io> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.header {
                Header::Done => {
                    return match Pin::new(&mut this.inner).poll_read(cx, buf) {
                        Poll::Ready(done) => {
                            this.last_active = tokio::time::Instant::now();
                            Poll::Ready(done)
                        }
                        Poll::Pending => match this.poll_idle(cx) {
                            Poll::Ready(idle) => Poll::Ready(Err(idle)),
                            Poll::Pending => Poll::Pending,
                        },
                    };
                }
                Header::Refusing { answer, written } => {
                    while *written < answer.len() {
                        *written += ready!(Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]))?;
                    }
                    ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
                    // The HTTP side sees the connection end.
                    return Poll::Ready(Ok(()));
                }
                Header::Reading { deadline, matched, bytes, lines } => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the request header did not arrive in time",
                        )));
                    }
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                    this.last_active = tokio::time::Instant::now();
                    let ended = scan(&buf.filled()[before..], matched, bytes, lines);
                    if *bytes > MAX_HEADER_BYTES || *lines > MAX_HEADER_LINES {
                        buf.set_filled(before);
                        this.header = Header::Refusing { answer: refusal(), written: 0 };
                        continue;
                    }
                    if ended {
                        this.header = Header::Done;
                    }
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Guarded<Io> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, data);
        if written.is_ready() {
            this.last_active = tokio::time::Instant::now();
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if written.is_ready() {
            this.last_active = tokio::time::Instant::now();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A guarded connection (header timeout 10 s, idle timeout 30 s) and the client's end,
    /// its header already sent.
    async fn connection() -> (Guarded<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (server, mut client) = tokio::io::duplex(64 * 1024);
        let mut guarded = Guarded::new(server, Duration::from_secs(10), Duration::from_secs(30));
        client.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        let mut head = [0u8; 64];
        let n = guarded.read(&mut head).await.unwrap();
        assert_eq!(&head[..n], b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        (guarded, client)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_idle_for_the_timeout_is_closed() {
        let (mut guarded, _client) = connection().await;
        let started = tokio::time::Instant::now();
        let mut buffer = [0u8; 16];
        let error = guarded.read(&mut buffer).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn writing_keeps_a_connection_alive_without_reads() {
        let (guarded, mut client) = connection().await;
        let (mut reader, mut writer) = tokio::io::split(guarded);
        let started = tokio::time::Instant::now();
        // The server writes every 20 s (a ping, a broadcast); the client never speaks.
        let writes = async {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                writer.write_all(b"ping").await.unwrap();
            }
            // Then silence: closed 30 s after the last write.
        };
        let mut buffer = [0u8; 16];
        let (error, ()) = tokio::join!(reader.read(&mut buffer), writes);
        assert_eq!(error.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(130), "alive while written to, closed 30 s after");
        let mut received = vec![0u8; 20];
        client.read_exact(&mut received).await.unwrap();
    }

    #[test]
    fn the_header_ends_at_the_first_blank_line_even_across_reads() {
        let (mut matched, mut bytes, mut lines) = (0, 0, 0);
        assert!(!scan(b"GET / HTTP/1.1\r\nHost: x\r\n\r", &mut matched, &mut bytes, &mut lines));
        assert!(scan(b"\nrest", &mut matched, &mut bytes, &mut lines));
        assert_eq!(lines, 3);
        let (mut matched, mut bytes, mut lines) = (0, 0, 0);
        assert!(!scan(b"a\r\r\n\r\r\nb", &mut matched, &mut bytes, &mut lines), "no blank line");
        assert!(scan(b"\r\r\n\r\n", &mut matched, &mut bytes, &mut lines));
    }
}
