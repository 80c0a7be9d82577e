//! Coalescing of pipelined replication records on a replica: consecutive `REPLICATE LOG /
//! PUT / DELETE / BATCHPUT / BATCH` requests already sitting in a master's connection buffer
//! (the master's [`crate::TcpTransport`] pipelines its windows as `LOG` blobs; a plain socket
//! may pipeline text records) are applied with one
//! [`ReplicaEndpoint::apply_many`](kvstore_replication::ReplicaEndpoint::apply_many): one
//! commit group and one fsync for the window instead of one per record.
//!
//! The master cannot tell the difference: each request still gets, in order, exactly the
//! reply it would have had alone. Applying a record one at a time moves the applied LSN only
//! when the record is the next one (a duplicate or a record after a gap leaves it), and the
//! engine applies a window by the same rule, so the reply of each request is the applied LSN
//! that rule gives after its last record ([`replies_in_order`]). A request that fails to parse
//! (a cut blob, say) keeps its error reply at its place; the records around it are applied as
//! they would have been. If the window fails as a whole (a damaged record, an epoch refusal,
//! an I/O error), its requests are applied one by one instead, so each gets its own outcome.

use kvstore_core::{Lsn, ReplicatedRecord};

use crate::cmd::replicate::{
    apply_window, is_record_subcommand, master_refuses, parse_record_request, replication_error,
};
use crate::cmd::Session;
use crate::frame::Frame;
use crate::log_blob::WireRecord;
use crate::node::Node;
use crate::parse::Request;
use crate::role::Role;
use crate::stats::ServerStats;

/// Whether `request` is a `REPLICATE` record command that may join a window on this session:
/// the session has passed `AUTH` and `REPLICATE HELLO`, and this node is a replica.
pub(crate) fn coalescible(request: &Request, session: &Session, node: &Node) -> bool {
    match (request.get(0), request.get(1)) {
        (Some(name), Some(sub)) => {
            name.eq_ignore_ascii_case(b"REPLICATE")
                && is_record_subcommand(sub)
                && session.authenticated
                && session.replication_session.is_some()
                && session.transaction.is_none()
                && node.is_replica()
        }
        _ => false,
    }
}

/// Applies `requests` (all [`coalescible`]) as one window; returns one reply per request, in
/// order.
pub(crate) fn apply(requests: Vec<Request>, node: &Node, session: &Session) -> Vec<Frame> {
    let count = requests.len();
    ServerStats::add(&node.stats.commands_processed, count as u64);
    let endpoint = match &*node.role.read_recursive() {
        Role::Replica(replica) => {
            replica.touch();
            Some(replica.endpoint.clone())
        }
        Role::Master(_) => None,
    };
    let replies = match (endpoint, session.replication_session) {
        (None, _) => vec![master_refuses(); count],
        (Some(_), None) => {
            let refusal = replication_error(kvstore_replication::Error::NoSession);
            vec![refusal; count]
        }
        (Some(endpoint), Some(replication)) => {
            let parsed: Vec<Result<Vec<WireRecord>, Frame>> =
                requests.iter().map(parse_record_request).collect();
            let (records, slots) = split(parsed);
            let _not_in_a_transaction = node.write_gate.read();
            let before = node.store.applied_lsn();
            match endpoint.apply_many(replication, &records) {
                Ok(acks) => {
                    let after = acks.last().map_or(before, |ack| ack.applied_lsn);
                    let lsns: Vec<Lsn> = records.iter().map(|r| r.lsn()).collect();
                    let mut applied = replies_in_order(before, after, &lsns).into_iter();
                    slots
                        .into_iter()
                        .map(|slot| match slot {
                            Slot::Records(count) => match applied.nth(count.saturating_sub(1)) {
                                Some(lsn) => Frame::Integer(lsn as i64),
                                None => Frame::error("ERR replication window lost a reply"),
                            },
                            Slot::Refused(reply) => reply,
                        })
                        .collect()
                }
                Err(_) => one_by_one(&endpoint, replication, records, slots),
            }
        }
    };
    let errors = replies
        .iter()
        .filter(|r| matches!(r, Frame::Error(_)))
        .count();
    ServerStats::add(&node.stats.error_replies, errors as u64);
    replies
}

/// Where each request's reply comes from: its records' acknowledgement, or its own parse
/// error.
enum Slot {
    /// The request carried this many records (at least one), next in the window.
    Records(usize),
    Refused(Frame),
}

fn split(parsed: Vec<Result<Vec<WireRecord>, Frame>>) -> (Vec<WireRecord>, Vec<Slot>) {
    let mut records = Vec::with_capacity(parsed.len());
    let mut slots = Vec::with_capacity(parsed.len());
    for item in parsed {
        match item {
            Ok(carried) if carried.is_empty() => {
                slots.push(Slot::Refused(Frame::error(
                    "ERR REPLICATE carries no record",
                )));
            }
            Ok(carried) => {
                slots.push(Slot::Records(carried.len()));
                records.extend(carried);
            }
            Err(reply) => slots.push(Slot::Refused(reply)),
        }
    }
    (records, slots)
}

/// After the window failed as a whole: each request's records as a window of their own, so
/// a damaged blob is refused alone and the requests around it keep their outcome.
fn one_by_one(
    endpoint: &kvstore_replication::ReplicaEndpoint,
    replication: kvstore_replication::Session,
    records: Vec<WireRecord>,
    slots: Vec<Slot>,
) -> Vec<Frame> {
    let mut records = records.into_iter();
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Records(count) => {
                let carried: Vec<WireRecord> = records.by_ref().take(count).collect();
                match apply_window(endpoint, replication, &carried) {
                    Ok(applied) => Frame::Integer(applied as i64),
                    Err(reply) => reply,
                }
            }
            Slot::Refused(reply) => reply,
        })
        .collect()
}

/// The applied LSN a replica reports after each of the records with `lsns`, applied one at a time from
/// `before`: a record moves it only when it is the next LSN. Never above `after` (the applied
/// LSN once the window was committed), so no reply claims more than the store holds even if
/// another session applied records meanwhile.
pub(crate) fn replies_in_order(before: Lsn, after: Lsn, lsns: &[Lsn]) -> Vec<Lsn> {
    let mut applied = before;
    lsns.iter()
        .map(|&lsn| {
            if lsn == applied + 1 && lsn <= after {
                applied = lsn;
            }
            applied.min(after)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(lsns: &[Lsn]) -> Vec<Lsn> {
        lsns.to_vec()
    }

    #[test]
    fn each_record_reports_the_applied_lsn_after_it() {
        assert_eq!(replies_in_order(4, 7, &records(&[5, 6, 7])), vec![5, 6, 7]);
        // Duplicates report the current applied LSN.
        assert_eq!(
            replies_in_order(4, 6, &records(&[3, 5, 4, 6])),
            vec![4, 5, 5, 6]
        );
        // A gap is refused and reported; the next record still applies when it fits.
        assert_eq!(replies_in_order(4, 5, &records(&[6, 5, 7])), vec![4, 5, 5]);
    }

    #[test]
    fn replies_never_exceed_what_the_store_holds() {
        // Whatever else happened meanwhile, no record above the store's applied LSN is
        // acknowledged.
        assert_eq!(replies_in_order(3, 5, &records(&[4, 5, 6])), vec![4, 5, 5]);
        assert_eq!(replies_in_order(3, 3, &records(&[4, 5])), vec![3, 3]);
    }
}
