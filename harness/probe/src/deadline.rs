//! A TCP stream with one deadline for the whole probe, and a memory of the first bytes the peer
//! sent (to show what a non-TLS peer said).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

const KEPT_BYTES: usize = 24;

pub(crate) struct DeadlineStream {
    inner: TcpStream,
    deadline: Instant,
    first_bytes: Vec<u8>,
}

impl DeadlineStream {
    pub fn new(inner: TcpStream, deadline: Instant) -> Self {
        Self {
            inner,
            deadline,
            first_bytes: Vec::new(),
        }
    }

    /// Brings the deadline forward to `deadline` if that is sooner; never extends it.
    pub fn shorten(&mut self, deadline: Instant) {
        self.deadline = self.deadline.min(deadline);
    }

    pub fn first_bytes(&self) -> &[u8] {
        &self.first_bytes
    }

    fn remaining(&self) -> io::Result<std::time::Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(timed_out())
        } else {
            Ok(left)
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the probe's deadline passed")
}

/// Linux reports a socket timeout as `WouldBlock`, which rustls would take for a non-blocking
/// socket and retry; say what it is.
fn explain(error: io::Error) -> io::Error {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out(),
        _ => error,
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.set_read_timeout(Some(self.remaining()?))?;
        let n = self.inner.read(buf).map_err(explain)?;
        let keep = n.min(KEPT_BYTES - self.first_bytes.len());
        self.first_bytes.extend_from_slice(&buf[..keep]);
        Ok(n)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.set_write_timeout(Some(self.remaining()?))?;
        self.inner.write(buf).map_err(explain)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
