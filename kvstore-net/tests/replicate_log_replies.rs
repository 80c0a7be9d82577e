//! `REPLICATE LOG <blob>` on a replica: a window of records in the master's log encoding is
//! applied as it is and answered with the applied LSN; a damaged, truncated or oversized blob
//! gets an error and applies nothing; a blob after a gap applies nothing and says so.

mod common;

use common::{resp, Raw, TestResult, TestServer};
use kvstore_core::{EncodedWalRecord, Lsn, Op, WalRecord};
use kvstore_net::{Limits, MAX_LOG_BLOB_RECORDS};

/// A record putting `key{lsn}` = `value{lsn}`.
fn record(lsn: Lsn) -> EncodedWalRecord {
    EncodedWalRecord::from(&WalRecord {
        lsn,
        ops: vec![Op::Put {
            key: format!("key{lsn}").into_bytes(),
            value: format!("value{lsn}").into_bytes(),
        }],
    })
}

fn blob(lsns: impl IntoIterator<Item = Lsn>) -> Vec<u8> {
    lsns.into_iter()
        .flat_map(|lsn| record(lsn).as_bytes().to_vec())
        .collect()
}

/// The blob of `lsns` with one bit of the last record's value flipped: only that operation's
/// CRC covers it, so the blob splits fine and fails verification.
fn damaged_blob(lsns: impl IntoIterator<Item = Lsn>) -> Vec<u8> {
    let mut damaged = blob(lsns);
    if let Some(last) = damaged.last_mut() {
        *last ^= 0x20;
    }
    damaged
}

/// The error reply to a blob whose record at `lsn` fails verification.
fn damaged_reply(lsn: Lsn) -> Vec<u8> {
    format!(
        "-ERR corruption in (replicated record) at offset 0: record at LSN {lsn} failed \
         verification: op checksum mismatch; nothing was applied\r\n"
    )
    .into_bytes()
}

fn log(blob: &[u8]) -> Vec<u8> {
    resp(&[b"REPLICATE", b"LOG", blob])
}

/// A replica and a connection on which a master's session is open.
fn session(limits: Limits) -> TestResult<(TestServer, Raw)> {
    let server = TestServer::start_with(|c| c.replica(true).limits(limits))?;
    let mut raw = server.raw()?;
    raw.check_hello(
        &resp(&[b"REPLICATE", b"HELLO", b"127.0.0.1:7000", b"1", b"0"]),
        [0, 1, -1, 0],
    )?;
    Ok((server, raw))
}

fn store_len(server: &TestServer) -> usize {
    server.handle.as_ref().map_or(0, |h| h.store().len())
}

fn applied_lsn(server: &TestServer) -> Lsn {
    server
        .handle
        .as_ref()
        .map_or(0, |h| h.store().applied_lsn())
}

#[test]
fn a_blob_of_records_is_applied_and_answered_with_the_applied_lsn() -> TestResult {
    let (server, mut c) = session(Limits::default())?;
    c.check(&log(&blob(1..=3)), b":3\r\n")?;
    c.check(&resp(&[b"GET", b"key2"]), b"$6\r\nvalue2\r\n")?;
    // Records already held are duplicates; the new one after them applies.
    c.check(&log(&blob(2..=4)), b":4\r\n")?;
    // The text form still works on the same session.
    c.check(&resp(&[b"REPLICATE", b"PUT", b"5", b"k", b"v"]), b":5\r\n")?;
    assert_eq!((store_len(&server), applied_lsn(&server)), (5, 5));
    Ok(())
}

#[test]
fn a_damaged_blob_is_refused_whole() -> TestResult {
    let (server, mut c) = session(Limits::default())?;
    c.check(&log(&damaged_blob(1..=3)), &damaged_reply(3))?;
    assert_eq!((store_len(&server), applied_lsn(&server)), (0, 0));
    // The session lives on: the same records, undamaged, apply.
    c.check(&log(&blob(1..=3)), b":3\r\n")?;
    Ok(())
}

#[test]
fn a_truncated_record_or_a_damaged_header_applies_nothing() -> TestResult {
    let (server, mut c) = session(Limits::default())?;
    let whole = blob(1..=2);
    let first = record(1).encoded_len();
    c.check(
        &log(&whole[..whole.len() - 1]),
        format!(
            "-ERR REPLICATE LOG record at byte {first} is truncated ({} bytes left)\r\n",
            whole.len() - 1 - first
        )
        .as_bytes(),
    )?;
    c.check(
        &log(&whole[..3]),
        b"-ERR REPLICATE LOG record at byte 0 is truncated (3 bytes left)\r\n",
    )?;
    // A body length of 4 GiB in the second header: checked against the blob, not allocated.
    let mut huge = whole.clone();
    huge[first + 4..first + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    c.check(
        &log(&huge),
        format!(
            "-ERR REPLICATE LOG record at byte {first} is truncated ({} bytes left)\r\n",
            whole.len() - first
        )
        .as_bytes(),
    )?;
    // The second record's LSN changed on the way: its header checksum no longer matches.
    let mut relabelled = whole;
    relabelled[first + 8] ^= 1;
    c.check(
        &log(&relabelled),
        format!(
            "-ERR REPLICATE LOG record at byte {first}: corruption in (replicated record) at \
             offset 0: record failed verification: record header checksum mismatch; nothing \
             was applied\r\n"
        )
        .as_bytes(),
    )?;
    c.check(&log(b""), b"-ERR REPLICATE LOG carries no record\r\n")?;
    c.check(
        &resp(&[b"REPLICATE", b"LOG"]),
        b"-ERR wrong number of arguments for 'replicate' command\r\n",
    )?;
    assert_eq!((store_len(&server), applied_lsn(&server)), (0, 0));
    Ok(())
}

#[test]
fn a_blob_after_a_gap_applies_nothing_and_reports_the_applied_lsn() -> TestResult {
    let (server, mut c) = session(Limits::default())?;
    c.check(&log(&blob([1])), b":1\r\n")?;
    // LSN 2 is missing: the reply "applied up to 1" asks the master to resend from 2.
    c.check(&log(&blob(3..=4)), b":1\r\n")?;
    assert_eq!((store_len(&server), applied_lsn(&server)), (1, 1));
    c.check(&log(&blob(2..=4)), b":4\r\n")?;
    assert_eq!(store_len(&server), 4);
    Ok(())
}

#[test]
fn oversize_blobs_are_refused_before_anything_is_applied() -> TestResult {
    let limits = Limits {
        max_bulk_bytes: 4096,
        ..Limits::default()
    };
    let (server, mut c) = session(limits)?;
    let big = blob(1..=200);
    assert!(big.len() > 4096);
    c.check(
        &log(&big),
        format!(
            "-ERR Protocol error: bulk length {} exceeds the limit of 4096 bytes\r\n",
            big.len()
        )
        .as_bytes(),
    )?;
    assert!(c.is_closed()?);
    assert_eq!((store_len(&server), applied_lsn(&server)), (0, 0));

    // Within the byte limit but over the record limit (here with empty batches, 20 bytes each).
    let (server, mut c) = session(Limits::default())?;
    let empty: Vec<u8> = (1..=MAX_LOG_BLOB_RECORDS as Lsn + 1)
        .flat_map(|lsn| {
            EncodedWalRecord::from(&WalRecord {
                lsn,
                ops: Vec::new(),
            })
            .as_bytes()
            .to_vec()
        })
        .collect();
    c.check(
        &log(&empty),
        format!("-ERR REPLICATE LOG carries more than {MAX_LOG_BLOB_RECORDS} records\r\n")
            .as_bytes(),
    )?;
    assert_eq!(applied_lsn(&server), 0);
    Ok(())
}

#[test]
fn pipelined_blobs_keep_their_own_replies() -> TestResult {
    let (server, mut c) = session(Limits::default())?;
    // One write: a window of blobs and a text record, one of them damaged, one cut short.
    let mut requests = log(&blob(1..=2));
    requests.extend(log(&damaged_blob(3..=4)));
    requests.extend(log(&blob(3..=4)[..10]));
    requests.extend(resp(&[b"REPLICATE", b"PUT", b"3", b"k", b"v"]));
    requests.extend(log(&blob(4..=5)));
    c.send(&requests)?;
    c.expect(b":2\r\n")?;
    c.expect(&damaged_reply(4))?;
    c.expect(b"-ERR REPLICATE LOG record at byte 0 is truncated (10 bytes left)\r\n")?;
    c.expect(b":3\r\n:5\r\n")?;
    assert_eq!((store_len(&server), applied_lsn(&server)), (5, 5));
    Ok(())
}

/// `REPLICATE LOGPART <total> <bytes>`: parts of one record (a record too large for a blob)
/// are assembled on the session; each part before the last is answered with the applied LSN
/// as it stands, the last applies the record. Parts that disagree with the announced length
/// are refused and drop what was assembled.
#[test]
fn a_record_in_parts_applies_with_its_last_part() -> TestResult {
    let (server, mut c) = session(Limits::default())?;
    let bytes = blob([1]);
    let total = bytes.len().to_string();
    let total = total.as_bytes();
    let (first, rest) = bytes.split_at(7);
    let part = |bytes: &[u8]| resp(&[b"REPLICATE", b"LOGPART", total, bytes]);
    c.check(&part(first), b":0\r\n")?;
    c.check(&part(rest), b":1\r\n")?;
    let mut client = server.client()?;
    assert_eq!(client.get(b"key1")?, Some(b"value1".to_vec()));

    let bytes = blob([2]);
    let total_2 = bytes.len().to_string();
    c.check(
        &resp(&[b"REPLICATE", b"LOGPART", total_2.as_bytes(), &bytes[..5]]),
        b":1\r\n",
    )?;
    let wrong = (bytes.len() + 1).to_string();
    let reply = format!(
        "-ERR REPLICATE LOGPART announces {wrong} bytes, its record's first part {total_2}\r\n"
    );
    c.check(
        &resp(&[b"REPLICATE", b"LOGPART", wrong.as_bytes(), &bytes[5..]]),
        reply.as_bytes(),
    )?;
    // What was assembled is gone; a part longer than the length it announces is refused.
    c.check(
        &resp(&[b"REPLICATE", b"LOGPART", b"3", &bytes[..4]]),
        b"-ERR REPLICATE LOGPART parts run past the record's 3 bytes\r\n",
    )?;
    c.check(
        &resp(&[b"REPLICATE", b"LOGPART", b"0", b""]),
        b"-ERR REPLICATE LOGPART length 0 is not between 1 and 1074790400\r\n",
    )?;
    c.check(
        &resp(&[b"REPLICATE", b"LOGPART", total_2.as_bytes(), &bytes]),
        b":2\r\n",
    )?;
    assert_eq!(client.get(b"key2")?, Some(b"value2".to_vec()));
    Ok(())
}
