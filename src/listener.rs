//! A cap on connections served at once: the acceptor takes a permit before
//! it accepts, and the connection gives it back when it closes. Beyond the
//! cap, new connections wait in the kernel's listen backlog (and time out
//! there) instead of each costing a task and buffers here.

use std::io::Result as IoResult;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct LimitedAcceptor<A> {
    inner: A,
    permits: Arc<Semaphore>,
    open: IntGauge,
}

impl<A> LimitedAcceptor<A> {
    pub fn new(inner: A, max_connections: usize, open: IntGauge) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max_connections)),
            open,
        }
    }
}

/// A connection holding its permit.
pub struct Limited<T> {
    io: T,
    _permit: OwnedSemaphorePermit,
    open: IntGauge,
}

impl<T> Drop for Limited<T> {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl<A: Acceptor> Acceptor for LimitedAcceptor<A> {
    type Io = Limited<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> IoResult<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (io, local, remote, scheme) = self.inner.accept().await?;
        self.open.inc();
        let io = Limited {
            io,
            _permit: permit,
            open: self.open.clone(),
        };
        Ok((io, local, remote, scheme))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Limited<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<IoResult<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Limited<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<IoResult<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<IoResult<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
