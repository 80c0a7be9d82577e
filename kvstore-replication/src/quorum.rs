//! Quorum arithmetic for synchronous writes, `wait_for` and `min_replicas_to_write`.

use kvstore_core::Lsn;

/// How many replicas have acknowledged `lsn`, given each replica's cumulative acked LSN.
pub fn acked_count(acked: &[Lsn], lsn: Lsn) -> usize {
    acked.iter().filter(|&&a| a >= lsn).count()
}

/// Whether `required` replicas acknowledged `lsn`. `Err((acked, required))` otherwise.
pub fn quorum_reached(acked: &[Lsn], lsn: Lsn, required: usize) -> Result<(), (usize, usize)> {
    let count = acked_count(acked, lsn);
    if count >= required {
        Ok(())
    } else {
        Err((count, required))
    }
}

/// The `min_replicas_to_write` check made before a write is logged.
pub fn admit(healthy: usize, min_replicas_to_write: usize) -> kvstore_core::Result<()> {
    if healthy >= min_replicas_to_write {
        Ok(())
    } else {
        Err(kvstore_core::Error::NotEnoughReplicas {
            healthy,
            required: min_replicas_to_write,
        })
    }
}

/// The majority of `replicas`: more than half.
pub fn majority(replicas: usize) -> usize {
    replicas / 2 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cumulative_acks() {
        let acked = [10, 7, 3, 0];
        assert_eq!(acked_count(&acked, 3), 3);
        assert_eq!(acked_count(&acked, 8), 1);
        assert_eq!(acked_count(&acked, 11), 0);
        assert_eq!(quorum_reached(&acked, 7, 2), Ok(()));
        assert_eq!(quorum_reached(&acked, 7, 3), Err((2, 3)));
        assert_eq!(quorum_reached(&[], 1, 0), Ok(()));
    }

    #[test]
    fn admit_refuses_below_the_minimum() {
        assert!(admit(2, 2).is_ok());
        assert!(matches!(
            admit(1, 2),
            Err(kvstore_core::Error::NotEnoughReplicas {
                healthy: 1,
                required: 2
            })
        ));
        assert_eq!(majority(1), 1);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
    }
}
