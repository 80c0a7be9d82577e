//! A fault-injecting TCP proxy between a master and a replica (127.0.0.1 only). Each
//! direction can forward, stall (stop reading without closing: bytes stay in the kernel's
//! buffers), or be cut after a given number of bytes on one connection. Threads stop on drop.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Forward,
    Stall,
}

#[derive(Debug, Default, Clone)]
pub struct ConnInfo {
    pub id: usize,
    /// Bytes forwarded master -> replica / replica -> master.
    pub m2r: u64,
    pub r2m: u64,
    /// Bytes the master sent on this connection while master->replica was stalled
    /// (seen with peek, not consumed).
    pub pending_while_stalled: bool,
    pub closed: bool,
    /// What was forwarded master -> replica (up to 64 MiB).
    pub m2r_bytes: Vec<u8>,
}

struct Ctl {
    m2r: Mode,
    r2m: Mode,
    /// Cut the next connection that forwards this many master->replica bytes (closing both
    /// sides right after exactly that many bytes were forwarded); cleared once used.
    cut_m2r_at: Option<(usize, u64)>,
    /// Forward one byte per read.
    trickle: bool,
    /// Accept new connections and close them at once.
    refuse: bool,
}

struct Shared {
    ctl: Mutex<Ctl>,
    stop: AtomicBool,
    conns: Mutex<Vec<ConnInfo>>,
    sockets: Mutex<Vec<(usize, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

pub struct Proxy {
    pub addr: String,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    pub fn start(target: &str) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?.to_string();
        let shared = Arc::new(Shared {
            ctl: Mutex::new(Ctl {
                m2r: Mode::Forward,
                r2m: Mode::Forward,
                cut_m2r_at: None,
                trickle: false,
                refuse: false,
            }),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let target = target.to_string();
        let sh = shared.clone();
        let acceptor = std::thread::spawn(move || {
            while !sh.stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((down, _)) => {
                        if sh.ctl.lock().refuse {
                            let _ = down.shutdown(Shutdown::Both);
                            continue;
                        }
                        let up = match TcpStream::connect(&target) {
                            Ok(up) => up,
                            Err(_) => {
                                let _ = down.shutdown(Shutdown::Both);
                                continue;
                            }
                        };
                        let clones = down.set_nonblocking(false).and_then(|()| {
                            Ok((
                                down.try_clone()?,
                                up.try_clone()?,
                                down.try_clone()?,
                                up.try_clone()?,
                            ))
                        });
                        let Ok((down_kept, up_kept, d2, u2)) = clones else {
                            let _ = down.shutdown(Shutdown::Both);
                            continue;
                        };
                        let id = {
                            let mut conns = sh.conns.lock();
                            let id = conns.len();
                            conns.push(ConnInfo {
                                id,
                                ..Default::default()
                            });
                            id
                        };
                        {
                            let mut socks = sh.sockets.lock();
                            socks.push((id, down_kept));
                            socks.push((id, up_kept));
                        }
                        let s1 = sh.clone();
                        let s2 = sh.clone();
                        let t1 = std::thread::spawn(move || pump(s1, id, true, down, up));
                        let t2 = std::thread::spawn(move || pump(s2, id, false, u2, d2));
                        let mut threads = sh.threads.lock();
                        threads.push(t1);
                        threads.push(t2);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    pub fn set_m2r(&self, mode: Mode) {
        self.shared.ctl.lock().m2r = mode;
    }
    pub fn set_r2m(&self, mode: Mode) {
        self.shared.ctl.lock().r2m = mode;
    }
    pub fn stall_both(&self) {
        let mut ctl = self.shared.ctl.lock();
        ctl.m2r = Mode::Stall;
        ctl.r2m = Mode::Stall;
    }
    pub fn heal(&self) {
        let mut ctl = self.shared.ctl.lock();
        ctl.m2r = Mode::Forward;
        ctl.r2m = Mode::Forward;
        ctl.cut_m2r_at = None;
        ctl.trickle = false;
        ctl.refuse = false;
    }
    pub fn set_trickle(&self, on: bool) {
        self.shared.ctl.lock().trickle = on;
    }
    pub fn set_refuse(&self, on: bool) {
        self.shared.ctl.lock().refuse = on;
    }
    /// Cuts connection `id` once exactly `bytes` master->replica bytes were forwarded on it.
    pub fn cut_m2r_at(&self, id: usize, bytes: u64) {
        self.shared.ctl.lock().cut_m2r_at = Some((id, bytes));
    }
    /// Closes every open connection (both sides) now.
    pub fn kill_all(&self) {
        for (_, s) in self.shared.sockets.lock().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
    pub fn conns(&self) -> Vec<ConnInfo> {
        self.shared.conns.lock().clone()
    }
    pub fn conn_count(&self) -> usize {
        self.shared.conns.lock().len()
    }

    /// Stalls both directions, then waits (up to 10 s) until the master has sent something
    /// into the stall on a connection opened since: an idle master's heartbeat `HELLO`,
    /// which then waits for a reply that never comes. Whether it did.
    pub fn stall_until_spoken_into(&self) -> bool {
        self.stall_both();
        let stalled_from = self.conn_count();
        super::eventually(Duration::from_secs(10), || {
            self.conns()
                .iter()
                .any(|c| c.id >= stalled_from && c.pending_while_stalled)
        })
    }
}

/// A replica and a master streaming to it through a [`Proxy`], as `kvstore-server`
/// processes under `root`, with `master_extra` flags; returns once the replica is healthy
/// and the master's first 100 writes have reached it (equal DIGESTs).
pub fn proxied_pair(
    root: &std::path::Path,
    master_extra: &[&str],
) -> super::TestResult<(super::ServerProcess, Proxy, super::ServerProcess)> {
    let replica = super::ServerProcess::start(&root.join("replica"), 0, &["--replica".into()])?;
    let proxy = Proxy::start(&replica.addr)?;
    let mut flags = vec!["--replicas".to_string(), proxy.addr.clone()];
    flags.extend(master_extra.iter().map(|f| f.to_string()));
    let master = super::ServerProcess::start(&root.join("master"), 0, &flags)?;
    let mut client = master.client()?;
    let healthy = super::eventually(Duration::from_secs(10), || {
        super::info_field(&mut client, "replication", "healthy_replicas").is_ok_and(|n| n == "1")
    });
    if !healthy {
        return Err("the replica never became healthy".into());
    }
    super::load(&master.addr, "k", 100)?;
    super::converged_digest(
        &[master.addr.clone(), replica.addr.clone()],
        Duration::from_secs(20),
    )?;
    Ok((replica, proxy, master))
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.kill_all();
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let threads: Vec<_> = self.shared.threads.lock().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

fn close(sh: &Shared, id: usize) {
    for (cid, s) in sh.sockets.lock().iter() {
        if *cid == id {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
    sh.conns.lock()[id].closed = true;
}

fn pump(sh: Arc<Shared>, id: usize, m2r: bool, mut src: TcpStream, mut dst: TcpStream) {
    let _ = src.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = dst.set_write_timeout(Some(Duration::from_millis(200)));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if sh.stop.load(Ordering::Acquire) {
            break;
        }
        let (mode, trickle, cut) = {
            let ctl = sh.ctl.lock();
            let mode = if m2r { ctl.m2r } else { ctl.r2m };
            let cut = if m2r {
                ctl.cut_m2r_at.filter(|(cid, _)| *cid == id).map(|(_, b)| b)
            } else {
                None
            };
            (mode, ctl.trickle, cut)
        };
        if mode == Mode::Stall {
            if m2r {
                let mut one = [0u8; 1];
                let _ = src.set_nonblocking(true);
                let peeked = src.peek(&mut one);
                let _ = src.set_nonblocking(false);
                if matches!(peeked, Ok(n) if n > 0) {
                    sh.conns.lock()[id].pending_while_stalled = true;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let done = {
            let conns = sh.conns.lock();
            if m2r {
                conns[id].m2r
            } else {
                conns[id].r2m
            }
        };
        let mut want = if trickle { 1 } else { buf.len() };
        if let Some(cut) = cut {
            if done >= cut {
                sh.ctl.lock().cut_m2r_at = None;
                close(&sh, id);
                break;
            }
            want = want.min((cut - done) as usize);
        }
        match src.read(&mut buf[..want]) {
            Ok(0) => {
                close(&sh, id);
                break;
            }
            Ok(n) => {
                // The mode may have changed while the read waited: bytes read just as
                // the link stalled are held until it heals.
                loop {
                    let ctl = sh.ctl.lock();
                    let now = if m2r { ctl.m2r } else { ctl.r2m };
                    drop(ctl);
                    if now == Mode::Forward || sh.stop.load(Ordering::Acquire) {
                        break;
                    }
                    if m2r {
                        sh.conns.lock()[id].pending_while_stalled = true;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                let mut off = 0;
                let mut failed = false;
                while off < n {
                    if sh.stop.load(Ordering::Acquire) {
                        failed = true;
                        break;
                    }
                    match dst.write(&buf[off..n]) {
                        Ok(0) => {
                            failed = true;
                            break;
                        }
                        Ok(w) => off += w,
                        Err(e)
                            if e.kind() == ErrorKind::WouldBlock
                                || e.kind() == ErrorKind::TimedOut
                                || e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                {
                    let mut conns = sh.conns.lock();
                    let c = &mut conns[id];
                    if m2r {
                        c.m2r += off as u64;
                        if c.m2r_bytes.len() < (64 << 20) {
                            c.m2r_bytes.extend_from_slice(&buf[..off]);
                        }
                    } else {
                        c.r2m += off as u64;
                    }
                }
                if failed {
                    close(&sh, id);
                    break;
                }
                if trickle {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            Err(e)
                if e.kind() == ErrorKind::WouldBlock
                    || e.kind() == ErrorKind::TimedOut
                    || e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                close(&sh, id);
                break;
            }
        }
    }
}
