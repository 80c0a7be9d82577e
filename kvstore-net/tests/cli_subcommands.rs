//! `kvstore-cli put|get|delete|scan|info|digest|raw` against a running `kvstore-server`
//! (DESIGN.md §5, the root README's "or kvstore-cli put fruit apple", `kvstore-cli --help`):
//! output and exit codes, also for its errors (`NOAUTH`, `WRONGPASS`, an unreachable
//! address, an unknown subcommand).

mod common;

use std::process::Command;

use common::{ServerProcess, TestResult};

fn cli(addr: &str, args: &[&str]) -> TestResult<(i32, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_kvstore-cli"))
        .arg("--addr")
        .arg(addr)
        .args(args)
        .output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn subcommands_print_and_exit_as_documented() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut server = ServerProcess::start(
        dir.path(),
        0,
        &[
            "--fsync".into(),
            "no".into(),
            "--requirepass".into(),
            "pw".into(),
        ],
    )?;
    let addr = server.addr.clone();
    let a = addr.as_str();
    let pw = ["--password", "pw"];
    let with =
        |rest: &[&str]| -> Vec<String> { pw.iter().chain(rest).map(|s| s.to_string()).collect() };
    let run = |rest: &[&str]| -> TestResult<(i32, String, String)> {
        let args = with(rest);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(a, &refs)
    };

    assert_eq!(run(&["put", "fruit", "apple"])?.0, 0);
    assert_eq!(run(&["put", "fruit:2", "pear"])?.1, "OK\n");
    assert_eq!(run(&["put", "veg", "leek"])?.0, 0);
    assert_eq!(
        run(&["get", "fruit"])?,
        (0, "apple\n".into(), String::new())
    );
    assert_eq!(
        run(&["get", "nothing"])?,
        (0, "(nil)\n".into(), String::new())
    );
    assert_eq!(run(&["scan"])?.1, "fruit\nfruit:2\nveg\n");
    assert_eq!(run(&["scan", "fruit*"])?.1, "fruit\nfruit:2\n");
    assert_eq!(run(&["delete", "veg"])?.1, "1\n");
    assert_eq!(run(&["delete", "veg"])?.1, "0\n");
    let (code, info, _) = run(&["info", "replication"])?;
    assert_eq!(code, 0);
    for field in [
        "role:master",
        "master_lsn:",
        "healthy_replicas:",
        "write_quorum:",
        "has_quorum:",
    ] {
        assert!(
            info.contains(field),
            "INFO replication lacks {field}: {info}"
        );
    }
    let (code, digest, _) = run(&["digest"])?;
    assert_eq!(code, 0);
    let digest = digest.trim();
    assert!(
        digest.len() == 32 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "{digest}"
    );
    assert_eq!(run(&["raw", "DBSIZE"])?.1, "(integer) 2\n");

    // Errors: a clear message on stderr and a non-zero exit code.
    let (code, out, err) = cli(a, &["get", "fruit"])?;
    assert!(
        code != 0 && out.is_empty() && err.contains("NOAUTH"),
        "{code} {out} {err}"
    );
    let (code, _, err) = cli(a, &["--password", "bad", "get", "fruit"])?;
    assert!(code != 0 && err.contains("WRONGPASS"), "{code} {err}");
    let (code, _, err) = cli("nohost", &["get", "fruit"])?;
    assert!(code != 0 && err.contains("not host:port"), "{code} {err}");
    let (code, _, _) = cli(a, &["frobnicate"])?;
    assert_eq!(code, 2, "an unknown subcommand is a usage error");

    server.kill();
    Ok(())
}
