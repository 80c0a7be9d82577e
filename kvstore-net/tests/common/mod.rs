//! Helpers shared by the integration tests: an in-process server on a free loopback port, a
//! raw socket that checks exact reply bytes, `kvstore-server` child processes that are
//! killed by PID when dropped, and (`proxy`) a fault-injecting TCP proxy for replication links.
#![allow(dead_code)]

pub mod proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kvstore_net::{Client, Server, ServerConfig, ServerHandle};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// An in-process server on `127.0.0.1:0` over a temporary directory.
pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestResult<TestServer> {
        Self::start_with(|c| c)
    }

    pub fn start_with(adjust: impl FnOnce(ServerConfig) -> ServerConfig) -> TestResult<TestServer> {
        let dir = tempfile::tempdir()?;
        let config = adjust(ServerConfig::new(dir.path()).bind("127.0.0.1:0".parse()?));
        let handle = Server::start(config)?;
        Ok(TestServer {
            handle: Some(handle),
            dir,
        })
    }

    pub fn addr(&self) -> String {
        self.handle
            .as_ref()
            .map(|h| h.local_addr().to_string())
            .unwrap_or_default()
    }

    pub fn raw(&self) -> TestResult<Raw> {
        Raw::connect(&self.addr())
    }

    pub fn client(&self) -> TestResult<Client> {
        Ok(Client::connect(&self.addr())?)
    }
}

/// A plain socket: write bytes, read back exactly the expected reply.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub fn connect(addr: &str) -> TestResult<Raw> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Raw { stream })
    }

    pub fn send(&mut self, bytes: &[u8]) -> TestResult {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Reads exactly `expected.len()` bytes and compares them.
    pub fn expect(&mut self, expected: &[u8]) -> TestResult {
        let mut got = vec![0; expected.len()];
        self.stream.read_exact(&mut got)?;
        assert_eq!(
            got.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        );
        Ok(())
    }

    /// Sends `request` and checks the reply is exactly `reply`.
    pub fn check(&mut self, request: &[u8], reply: &[u8]) -> TestResult {
        self.send(request)?;
        self.expect(reply)
    }

    /// Sends a `REPLICATE HELLO` and checks that it is accepted with `items` (applied LSN,
    /// epoch, snapshot LSN, next chunk), followed by the replica's id, an integer drawn
    /// when the replica started.
    pub fn check_hello(&mut self, request: &[u8], items: [i64; 4]) -> TestResult {
        self.send(request)?;
        let expected: String = std::iter::once("*5\r\n".to_string())
            .chain(items.iter().map(|i| format!(":{i}\r\n")))
            .collect();
        self.expect(expected.as_bytes())?;
        let mut id = Vec::new();
        let mut byte = [0u8; 1];
        while !id.ends_with(b"\r\n") {
            self.stream.read_exact(&mut byte)?;
            id.push(byte[0]);
        }
        let digits = &id[1..id.len() - 2];
        assert!(
            id[0] == b':' && !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
            "the replica id: {}",
            id.escape_ascii()
        );
        Ok(())
    }

    /// Reads until `lines` CRLF-terminated lines arrived (or 5 s passed), as text.
    pub fn read_lines(&mut self, lines: usize) -> TestResult<String> {
        self.stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.windows(2).filter(|w| w == b"\r\n").count() < lines {
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        Ok(String::from_utf8_lossy(&got).into_owned())
    }

    /// Whether the server closed the connection (EOF within the read timeout).
    pub fn is_closed(&mut self) -> TestResult<bool> {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => Ok(true),
            Ok(_) => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(true),
            Err(e) => Err(e.into()),
        }
    }
}

/// Encodes a request as a RESP array of bulk strings.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A `kvstore-server` child process, SIGKILLed and reaped when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
    pub args: Vec<String>,
}

pub fn server_binary() -> &'static str {
    env!("CARGO_BIN_EXE_kvstore-server")
}

impl ServerProcess {
    /// Starts `kvstore-server --data-dir dir --port port extra…` and waits for its
    /// "listening on" line.
    pub fn start(dir: &Path, port: u16, extra: &[String]) -> TestResult<ServerProcess> {
        let mut args = vec![
            "--data-dir".to_string(),
            dir.display().to_string(),
            "--port".to_string(),
            port.to_string(),
        ];
        args.extend(extra.iter().cloned());
        let mut child = Command::new(server_binary())
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_string);
        let mut process = ServerProcess {
            child,
            addr: String::new(),
            dir: dir.to_path_buf(),
            args,
        };
        match addr {
            Some(addr) => {
                process.addr = addr;
                Ok(process)
            }
            None => Err(format!("kvstore-server did not start: {line:?}").into()),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    pub fn client(&self) -> TestResult<Client> {
        Ok(Client::connect(&self.addr)?)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> TestResult<bool> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Ok(false)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The DIGEST of every node, once they all agree (within `timeout`), else an error listing them.
pub fn converged_digest(addrs: &[String], timeout: Duration) -> TestResult<String> {
    let mut last = Vec::new();
    let ok = eventually(timeout, || {
        last = addrs
            .iter()
            .map(|a| {
                Client::connect(a)
                    .and_then(|mut c| c.digest())
                    .unwrap_or_else(|e| e.to_string())
            })
            .collect();
        last.windows(2).all(|w| w[0] == w[1])
    });
    if ok {
        Ok(last[0].clone())
    } else {
        Err(format!("digests never converged: {last:?}").into())
    }
}

/// A field of `INFO section`.
pub fn info_field(client: &mut Client, section: &str, field: &str) -> TestResult<String> {
    client
        .info(section)?
        .into_iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("INFO {section} has no {field}").into())
}

/// Asks `INFO stats` until `total_commands_processed` has grown by exactly one since the
/// previous ask (only that INFO ran: the server runs nothing else) and is above `floor`.
/// Returns the settled count and how many INFOs were asked (each counts itself), or `None`
/// if it does not settle within 10 s.
pub fn settled_command_count(client: &mut Client, floor: u64) -> Option<(u64, u64)> {
    let (mut last, mut infos) = (0u64, 0u64);
    let settled = eventually(Duration::from_secs(10), || {
        infos += 1;
        let now: u64 = info_field(client, "stats", "total_commands_processed")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let steady = now == last + 1;
        last = now;
        steady && now > floor
    });
    settled.then_some((last, infos))
}

impl ServerProcess {
    /// Starts the same server again (same directory, port and flags), e.g. after `kill`.
    pub fn restart(&mut self) -> TestResult {
        self.kill();
        let extra: Vec<String> = self.args[4..].to_vec();
        let port = self.port();
        let mut last = None;
        // The old socket may linger for a moment; retry the bind briefly.
        for _ in 0..50 {
            match ServerProcess::start(&self.dir, port, &extra) {
                Ok(fresh) => {
                    let old = std::mem::replace(self, fresh);
                    drop(old);
                    return Ok(());
                }
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Err(last.unwrap_or_else(|| "restart failed".into()))
    }
}

/// A master and replicas as `kvstore-server` processes on free loopback ports.
pub struct Cluster {
    pub master: ServerProcess,
    pub replicas: Vec<ServerProcess>,
    pub root: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` replicas (each with `replica_extra` flags), then a master streaming to them
    /// with `master_extra` flags.
    pub fn start(n: usize, master_extra: &[&str], replica_extra: &[&str]) -> TestResult<Cluster> {
        let root = tempfile::tempdir()?;
        let mut replicas = Vec::new();
        for i in 0..n {
            let mut extra = vec!["--replica".to_string()];
            extra.extend(replica_extra.iter().map(|s| s.to_string()));
            replicas.push(ServerProcess::start(
                &root.path().join(format!("replica{i}")),
                0,
                &extra,
            )?);
        }
        let list: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
        let mut extra = vec!["--replicas".to_string(), list.join(",")];
        extra.extend(master_extra.iter().map(|s| s.to_string()));
        let master = ServerProcess::start(&root.path().join("master"), 0, &extra)?;
        Ok(Cluster {
            master,
            replicas,
            root,
        })
    }

    pub fn addrs(&self) -> Vec<String> {
        std::iter::once(self.master.addr.clone())
            .chain(self.replicas.iter().map(|r| r.addr.clone()))
            .collect()
    }
}

/// Writes `count` keys `prefix{i}` through one pipelined connection, 100 per round trip.
pub fn load(addr: &str, prefix: &str, count: usize) -> TestResult {
    let mut client = Client::connect(addr)?;
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        for i in chunk {
            client.queue(&[
                "SET",
                &format!("{prefix}{i}"),
                &format!("value-{prefix}-{i}"),
            ]);
        }
        client.flush()?;
        for _ in chunk {
            let reply = client.read_reply()?;
            if reply != kvstore_net::Frame::Simple("OK".into()) {
                return Err(format!("SET failed: {reply}").into());
            }
        }
    }
    Ok(())
}
