//! Model-based test of the server's data commands: random sequences of `SET`, `DEL`, `MSET`,
//! `INCRBY`, `SETNX`, `GET`, `MGET`, `EXISTS`, `DBSIZE`, `TYPE`, `STRLEN`,
//! `MULTI`/`EXEC`/`DISCARD` and `WATCH`/`UNWATCH` from three connections (spread over two
//! event loops), each reply compared with what a `BTreeMap` model and a model of each
//! connection's transaction and watched keys say it must be. One request at a time, so the
//! order is total.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::TestServer;
use kvstore_net::{Client, Frame};
use proptest::prelude::*;

const CONNECTIONS: usize = 3;
const KEYS: u8 = 5;

#[derive(Debug, Clone)]
enum Cmd {
    Set(u8, u8),
    /// `SET k` without a value: refused for its argument count.
    BadSet(u8),
    Del(Vec<u8>),
    MSet(Vec<(u8, u8)>),
    Get(u8),
    MGet(Vec<u8>),
    Exists(Vec<u8>),
    DbSize,
    Type(u8),
    Strlen(u8),
    Multi,
    Exec,
    Discard,
    Watch(Vec<u8>),
    Unwatch,
    IncrBy(u8, i8),
    SetNx(u8, u8),
}

fn key(k: u8) -> Vec<u8> {
    format!("key{k}").into_bytes()
}

/// Values of different lengths, so that `STRLEN` tells them apart.
fn value(v: u8) -> Vec<u8> {
    vec![b'a' + v % 26; usize::from(v % 7) + 1]
}

impl Cmd {
    fn args(&self) -> Vec<Vec<u8>> {
        let named = |name: &str, rest: Vec<Vec<u8>>| {
            let mut args = vec![name.as_bytes().to_vec()];
            args.extend(rest);
            args
        };
        let keys = |ks: &[u8]| ks.iter().map(|k| key(*k)).collect::<Vec<_>>();
        match self {
            Cmd::Set(k, v) => named("SET", vec![key(*k), value(*v)]),
            Cmd::BadSet(k) => named("SET", vec![key(*k)]),
            Cmd::Del(ks) => named("DEL", keys(ks)),
            Cmd::MSet(pairs) => named(
                "MSET",
                pairs
                    .iter()
                    .flat_map(|(k, v)| [key(*k), value(*v)])
                    .collect(),
            ),
            Cmd::Get(k) => named("GET", vec![key(*k)]),
            Cmd::MGet(ks) => named("MGET", keys(ks)),
            Cmd::Exists(ks) => named("EXISTS", keys(ks)),
            Cmd::DbSize => named("DBSIZE", vec![]),
            Cmd::Type(k) => named("TYPE", vec![key(*k)]),
            Cmd::Strlen(k) => named("STRLEN", vec![key(*k)]),
            Cmd::Multi => named("MULTI", vec![]),
            Cmd::Exec => named("EXEC", vec![]),
            Cmd::Discard => named("DISCARD", vec![]),
            Cmd::Watch(ks) => named("WATCH", keys(ks)),
            Cmd::Unwatch => named("UNWATCH", vec![]),
            Cmd::IncrBy(k, n) => named("INCRBY", vec![key(*k), n.to_string().into_bytes()]),
            Cmd::SetNx(k, v) => named("SETNX", vec![key(*k), value(*v)]),
        }
    }
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let k = 0..KEYS;
    let ks = prop::collection::vec(0..KEYS, 1..4);
    prop_oneof![
        4 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Cmd::Set(k, v)),
        1 => k.clone().prop_map(Cmd::BadSet),
        2 => ks.clone().prop_map(Cmd::Del),
        2 => prop::collection::vec((0..KEYS, any::<u8>()), 1..4).prop_map(Cmd::MSet),
        3 => k.clone().prop_map(Cmd::Get),
        2 => ks.clone().prop_map(Cmd::MGet),
        1 => ks.clone().prop_map(Cmd::Exists),
        1 => Just(Cmd::DbSize),
        1 => k.clone().prop_map(Cmd::Type),
        1 => k.prop_map(Cmd::Strlen),
        3 => Just(Cmd::Multi),
        3 => Just(Cmd::Exec),
        1 => Just(Cmd::Discard),
        3 => ks.prop_map(Cmd::Watch),
        1 => Just(Cmd::Unwatch),
        2 => (0..KEYS, any::<i8>()).prop_map(|(k, n)| Cmd::IncrBy(k, n)),
        2 => (0..KEYS, any::<u8>()).prop_map(|(k, v)| Cmd::SetNx(k, v)),
    ]
}

/// What a key holds in the model: its value and the version of the write that gave it (a
/// new version per write command, one for a whole `MSET` or `EXEC`), and the version of the
/// last write that deleted a key: what `WATCH` compares.
#[derive(Debug, Default)]
struct Data {
    values: BTreeMap<Vec<u8>, (Vec<u8>, u64)>,
    next_version: u64,
    last_delete: u64,
    /// Keys `DEL` removed, for an `EXEC` to tell which of them its batch leaves deleted.
    removed: Vec<Vec<u8>>,
}

/// A watched key's state: the version of its value, or, without one, the last delete.
type WatchedState = (Option<u64>, u64);

impl Data {
    fn watched_state(&self, key: &[u8]) -> WatchedState {
        match self.values.get(key) {
            Some((_, version)) => (Some(*version), 0),
            None => (None, self.last_delete),
        }
    }

    /// Runs a command outside `MULTI` (or queued, inside `EXEC`, with `version` for every
    /// write of the transaction's one batch) and returns its reply.
    fn run(&mut self, cmd: &Cmd, version: u64) -> Frame {
        let int = |n: usize| Frame::Integer(n as i64);
        match cmd {
            Cmd::Set(k, v) => {
                self.values.insert(key(*k), (value(*v), version));
                Frame::Simple("OK".into())
            }
            Cmd::MSet(pairs) => {
                for (k, v) in pairs {
                    self.values.insert(key(*k), (value(*v), version));
                }
                Frame::Simple("OK".into())
            }
            Cmd::Del(ks) => {
                let distinct: BTreeSet<&u8> = ks.iter().collect();
                let removed = distinct
                    .into_iter()
                    .filter(|k| self.values.remove(&key(**k)).is_some())
                    .inspect(|k| self.removed.push(key(**k)))
                    .count();
                if removed > 0 {
                    self.last_delete = version;
                }
                int(removed)
            }
            Cmd::Get(k) => self
                .values
                .get(&key(*k))
                .map_or(Frame::Null, |(v, _)| Frame::Bulk(v.clone())),
            Cmd::MGet(ks) => Frame::Array(
                ks.iter()
                    .map(|k| {
                        self.values
                            .get(&key(*k))
                            .map_or(Frame::Null, |(v, _)| Frame::Bulk(v.clone()))
                    })
                    .collect(),
            ),
            Cmd::Exists(ks) => int(ks
                .iter()
                .filter(|k| self.values.contains_key(&key(**k)))
                .count()),
            Cmd::DbSize => int(self.values.len()),
            Cmd::Type(k) => Frame::Simple(
                if self.values.contains_key(&key(*k)) {
                    "string"
                } else {
                    "none"
                }
                .into(),
            ),
            Cmd::Strlen(k) => int(self.values.get(&key(*k)).map_or(0, |(v, _)| v.len())),
            Cmd::Unwatch => Frame::Simple("OK".into()),
            Cmd::IncrBy(k, n) => {
                let current = match self.values.get(&key(*k)) {
                    None => Some(0),
                    Some((v, _)) => std::str::from_utf8(v)
                        .ok()
                        .filter(|t| *t == "0" || !(t.starts_with('0') || t.starts_with("-0")))
                        .and_then(|t| t.parse::<i64>().ok()),
                };
                match current {
                    Some(current) => {
                        let next = current + i64::from(*n);
                        self.values
                            .insert(key(*k), (next.to_string().into_bytes(), version));
                        Frame::Integer(next)
                    }
                    None => Frame::error("ERR value is not an integer or out of range"),
                }
            }
            Cmd::SetNx(k, v) => match self.values.entry(key(*k)) {
                std::collections::btree_map::Entry::Occupied(_) => Frame::Integer(0),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert((value(*v), version));
                    Frame::Integer(1)
                }
            },
            Cmd::BadSet(_) | Cmd::Multi | Cmd::Exec | Cmd::Discard | Cmd::Watch(_) => {
                Frame::error("model: not run here")
            }
        }
    }

    fn is_write(cmd: &Cmd) -> bool {
        matches!(
            cmd,
            Cmd::Set(..) | Cmd::MSet(_) | Cmd::Del(_) | Cmd::IncrBy(..) | Cmd::SetNx(..)
        )
    }
}

#[derive(Debug, Default)]
struct Connection {
    /// Commands queued since `MULTI`, and whether one was refused.
    transaction: Option<(Vec<Cmd>, bool)>,
    watched: BTreeMap<Vec<u8>, WatchedState>,
}

#[derive(Debug, Default)]
struct Model {
    data: Data,
    connections: Vec<Connection>,
}

impl Model {
    fn step(&mut self, conn: usize, cmd: &Cmd) -> Frame {
        let ok = || Frame::Simple("OK".into());
        let c = &mut self.connections[conn];
        if let Some((queued, aborted)) = c.transaction.as_mut() {
            return match cmd {
                Cmd::Multi => Frame::error("ERR MULTI calls can not be nested"),
                Cmd::Watch(_) => Frame::error("ERR WATCH inside MULTI is not allowed"),
                Cmd::Discard => {
                    c.transaction = None;
                    c.watched.clear();
                    ok()
                }
                Cmd::BadSet(_) => {
                    *aborted = true;
                    Frame::error("ERR wrong number of arguments for 'set' command")
                }
                Cmd::Exec => {
                    let (queued, aborted) = c.transaction.take().unwrap_or_default();
                    let watched = std::mem::take(&mut c.watched);
                    if aborted {
                        return Frame::error(
                            "EXECABORT Transaction discarded because of previous errors.",
                        );
                    }
                    if watched
                        .iter()
                        .any(|(k, state)| self.data.watched_state(k) != *state)
                    {
                        return Frame::NullArray;
                    }
                    let writes = queued.iter().any(Data::is_write);
                    let version = self.data.next_version;
                    if writes {
                        self.data.next_version += 1;
                    }
                    // The transaction's writes are one batch: one version for all.
                    let last_delete = self.data.last_delete;
                    self.data.removed.clear();
                    let replies = queued
                        .iter()
                        .map(|cmd| self.data.run(cmd, version))
                        .collect();
                    // The batch holds each key's final state: it deletes only the keys it
                    // leaves without a value (a `DEL` then `SETNX` of one key is a put).
                    let removed = std::mem::take(&mut self.data.removed);
                    if removed.iter().all(|k| self.data.values.contains_key(k)) {
                        self.data.last_delete = last_delete;
                    }
                    Frame::Array(replies)
                }
                _ => {
                    queued.push(cmd.clone());
                    Frame::Simple("QUEUED".into())
                }
            };
        }
        match cmd {
            Cmd::Multi => {
                c.transaction = Some((Vec::new(), false));
                ok()
            }
            Cmd::Exec => Frame::error("ERR EXEC without MULTI"),
            Cmd::Discard => Frame::error("ERR DISCARD without MULTI"),
            Cmd::BadSet(_) => Frame::error("ERR wrong number of arguments for 'set' command"),
            Cmd::Watch(ks) => {
                for k in ks {
                    let state = self.data.watched_state(&key(*k));
                    c.watched.entry(key(*k)).or_insert(state);
                }
                ok()
            }
            Cmd::Unwatch => {
                c.watched.clear();
                ok()
            }
            other => {
                let version = self.data.next_version;
                let writes = match other {
                    Cmd::Del(ks) => ks.iter().any(|k| self.data.values.contains_key(&key(*k))),
                    other => Data::is_write(other),
                };
                if writes {
                    self.data.next_version += 1;
                }
                self.data.run(other, version)
            }
        }
    }
}

fn run_case(steps: &[(usize, Cmd)]) -> Result<(), TestCaseError> {
    let server = TestServer::start_with(|c| c.io_threads(2))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let addr = server.addr();
    let mut clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::connect(&addr))
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut model = Model {
        connections: (0..CONNECTIONS).map(|_| Connection::default()).collect(),
        ..Model::default()
    };
    for (i, (conn, cmd)) in steps.iter().enumerate() {
        let expected = model.step(*conn, cmd);
        let got = clients[*conn]
            .command(&cmd.args())
            .map_err(|e| TestCaseError::fail(format!("step {i}: {e}")))?;
        prop_assert_eq!(
            &got,
            &expected,
            "step {} (connection {}): {:?}",
            i,
            conn,
            cmd
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if std::env::var_os("CI").is_some() { 48 } else { 96 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn commands_match_the_model(
        steps in prop::collection::vec((0..CONNECTIONS, cmd()), 1..120)
    ) {
        run_case(&steps)?;
    }
}
