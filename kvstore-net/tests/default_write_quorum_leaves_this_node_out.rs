//! `--write-quorum`'s default is a majority of the replicas a node streams to, its own
//! address left out of `--replicas` (one list may serve every node of a cluster). It was
//! computed from the raw list, own address included, and then checked against the list
//! without it: a two-node cluster list in sync mode without `--write-quorum` got a quorum of
//! 2 for 1 replica, and the server refused to start with its own default.

mod common;

use std::net::TcpListener;
use std::process::Command;

use common::{server_binary, ServerProcess, TestResult};

fn free_port() -> TestResult<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[test]
fn default_quorum_of_a_list_naming_this_node_is_a_majority_of_its_replicas() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (own, other) = (free_port()?, free_port()?);
    let list = format!("127.0.0.1:{own},127.0.0.1:{other}");
    // First see how the binary reacts (bounded: it either exits at once or is killed below).
    let out = Command::new(server_binary())
        .args([
            "--data-dir",
            &dir.path().join("probe").display().to_string(),
            "--port",
            &own.to_string(),
            "--replicas",
            &list,
            "--replication-mode",
            "sync",
            "--write-quorum",
            "5",
        ])
        .output()?;
    assert_eq!(
        out.status.code(),
        Some(2),
        "an explicit quorum of 5 is refused"
    );

    let server = ServerProcess::start(
        dir.path(),
        own,
        &[
            "--replicas".into(),
            list.clone(),
            "--replication-mode".into(),
            "sync".into(),
        ],
    );
    let mut server = match server {
        Ok(server) => server,
        Err(e) => panic!(
            "with --replicas {list} (this node and one other) and no --write-quorum, the \
             documented default (a majority) should fit the one replica this node streams to; \
             the server refused to start instead: {e}"
        ),
    };
    let mut client = server.client()?;
    let quorum = common::info_field(&mut client, "replication", "write_quorum")?;
    assert_eq!(quorum, "1", "a majority of 1 streamed replica");
    server.kill();
    Ok(())
}
