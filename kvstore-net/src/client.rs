//! [`Client`]: a small blocking RESP2 client for `kvstore-server` (or Redis), used by
//! `kvstore-cli`, the tests and the replication transport.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::connection::{Connection, ReadError};
use crate::error::{Error, Result};
use crate::frame::Frame;

/// Default bound on connecting and on waiting for a reply.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Splits `host:port` (the host may be a name, an IPv4 address or a bracketed IPv6 address).
pub fn split_host_port(addr: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("'{addr}' is not host:port"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("'{addr}' has an invalid port '{port}'"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("'{addr}' has an empty host"));
    }
    Ok((host.to_string(), port))
}

/// Resolves `host:port` to its first socket address.
pub fn resolve(addr: &str) -> Result<SocketAddr> {
    let (host, port) = split_host_port(addr).map_err(Error::Config)?;
    (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| Error::io(format!("resolving {addr}"), e))?
        .next()
        .ok_or_else(|| Error::Config(format!("'{addr}' resolves to no address")))
}

/// A blocking connection to one server.
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    /// What [`set_timeout`](Client::set_timeout) set: the bound on each reply as a whole.
    timeout: Option<Duration>,
}

fn read_error(peer: SocketAddr, err: ReadError) -> Error {
    match err {
        ReadError::Io(e) => Error::io(format!("reading a reply from {peer}"), e),
        ReadError::Protocol(e) => Error::Protocol(e),
    }
}

impl Client {
    /// Connects to `addr` (`host:port`) with [`DEFAULT_CLIENT_TIMEOUT`] for the connection
    /// and for each reply.
    pub fn connect(addr: &str) -> Result<Client> {
        Client::connect_timeout(addr, DEFAULT_CLIENT_TIMEOUT)
    }

    /// Connects within `timeout`, which then also bounds each reply and write.
    pub fn connect_timeout(addr: &str, timeout: Duration) -> Result<Client> {
        let sock = resolve(addr)?;
        let conn = Connection::connect(&sock, timeout)
            .map_err(|e| Error::io(format!("connecting to {addr}"), e))?;
        let mut client = Client {
            conn,
            timeout: None,
        };
        client.set_timeout(Some(timeout))?;
        Ok(client)
    }

    /// Bounds each reply, as a whole, and each write (`None`: wait forever).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        let peer = self.conn.peer();
        self.conn
            .set_read_timeout(timeout)
            .and_then(|_| self.conn.set_write_timeout(timeout))
            .map_err(|e| Error::io(format!("setting timeouts on {peer}"), e))?;
        self.timeout = timeout;
        Ok(())
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.conn.peer()
    }

    /// A second handle on the connection's socket (to shut it down from another thread).
    pub(crate) fn try_clone_stream(&self) -> std::io::Result<std::net::TcpStream> {
        self.conn.try_clone_stream()
    }

    /// Queues a request without sending it (pipelining); [`flush`](Self::flush) sends.
    pub fn queue<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.conn.queue_request(args);
    }

    /// Queues a request whose last argument is `last_parts` joined, without copying them
    /// into one buffer first.
    pub(crate) fn queue_joined(&mut self, head: &[&[u8]], last_parts: &[&[u8]]) {
        self.conn.queue_request_joined(head, last_parts);
    }

    /// Sends every queued request.
    pub fn flush(&mut self) -> Result<()> {
        let peer = self.conn.peer();
        self.conn
            .flush()
            .map_err(|e| Error::io(format!("writing to {peer}"), e))
    }

    /// Reads the next reply, error replies included as [`Frame::Error`].
    pub fn read_reply(&mut self) -> Result<Frame> {
        let peer = self.conn.peer();
        let read = match self.timeout {
            Some(limit) => self.conn.read_frame_within(limit),
            None => self.conn.read_frame(),
        };
        match read {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => Err(Error::Closed {
                peer: peer.to_string(),
            }),
            Err(e) => Err(read_error(peer, e)),
        }
    }

    /// Sends one request and returns its reply, error replies included.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame> {
        self.queue(args);
        self.flush()?;
        self.read_reply()
    }

    /// Like [`command`](Self::command), but an error reply becomes [`Error::Reply`].
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame> {
        match self.command(args)? {
            Frame::Error(message) => Err(Error::Reply(message)),
            frame => Ok(frame),
        }
    }

    /// `AUTH password`.
    pub fn auth(&mut self, password: &str) -> Result<()> {
        self.expect_ok(&["AUTH", password])
    }

    /// `SET key value`.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.expect_ok(&[&b"SET"[..], key, value])
    }

    /// `GET key`.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.call(&[&b"GET"[..], key])? {
            Frame::Bulk(value) => Ok(Some(value)),
            Frame::Null => Ok(None),
            other => Err(unexpected("GET", other)),
        }
    }

    /// `DEL key`: whether it existed.
    pub fn del(&mut self, key: &[u8]) -> Result<bool> {
        match self.call(&[&b"DEL"[..], key])? {
            Frame::Integer(n) => Ok(n > 0),
            other => Err(unexpected("DEL", other)),
        }
    }

    /// A command whose reply is a bulk string, as text (`INFO`, `DIGEST`).
    pub fn text<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<String> {
        match self.call(args)? {
            Frame::Bulk(text) => Ok(String::from_utf8_lossy(&text).into_owned()),
            Frame::Simple(text) => Ok(text.into_owned()),
            other => Err(unexpected("a text command", other)),
        }
    }

    /// A command whose reply is an integer (`DBSIZE`, `WAIT`, …).
    pub fn integer<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<i64> {
        match self.call(args)? {
            Frame::Integer(n) => Ok(n),
            other => Err(unexpected("an integer command", other)),
        }
    }

    /// `DIGEST`.
    pub fn digest(&mut self) -> Result<String> {
        self.text(&["DIGEST"])
    }

    /// `INFO section`, parsed into `(field, value)` pairs.
    pub fn info(&mut self, section: &str) -> Result<Vec<(String, String)>> {
        let text = self.text(&["INFO", section])?;
        Ok(text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// A command that must answer `+OK`.
    pub fn expect_ok<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        let name = args
            .first()
            .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
            .unwrap_or_default();
        match self.call(args)? {
            Frame::Simple(s) if s == "OK" => Ok(()),
            other => Err(unexpected(&name, other)),
        }
    }
}

fn unexpected(command: &str, reply: Frame) -> Error {
    Error::UnexpectedReply {
        command: command.to_string(),
        reply: reply.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn host_port_pairs_split() {
        assert_eq!(
            split_host_port("127.0.0.1:80"),
            Ok(("127.0.0.1".into(), 80))
        );
        assert_eq!(split_host_port("[::1]:7"), Ok(("::1".into(), 7)));
        assert!(split_host_port("nohost").is_err());
        assert!(split_host_port(":5").is_err());
        assert!(split_host_port("h:99999").is_err());
    }
}
