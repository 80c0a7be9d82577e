//! The durable epoch: one small file in a store's data directory.
//!
//! On a master it holds the master's epoch; on a replica, the highest epoch it has accepted.
//! A replica promoted to master takes `stored + 1` ([`promote`]), so every replica that
//! followed the old master will refuse it afterwards ([`crate::Error::StaleEpoch`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the epoch file inside a data directory.
pub const EPOCH_FILE_NAME: &str = "REPLICATION_EPOCH";

/// Epoch a master starts with when its directory holds no epoch file.
pub const INITIAL_EPOCH: u64 = 1;

fn epoch_path(dir: &Path) -> PathBuf {
    dir.join(EPOCH_FILE_NAME)
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the epoch stored in `dir`; `None` when there is no epoch file yet.
pub fn read_epoch(dir: &Path) -> Result<Option<u64>> {
    let path = epoch_path(dir);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().map(Some).map_err(|e| {
            io_err(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path, e)),
    }
}

/// Stores `epoch` in `dir` durably: written to a temporary file, synced, renamed over the old
/// one, and the directory synced, so a crash leaves either the old or the new epoch.
pub fn write_epoch(dir: &Path, epoch: u64) -> Result<()> {
    write_durably(dir, EPOCH_FILE_NAME, &format!("{epoch}\n"))
}

/// Replaces the file `name` in `dir` with `contents` so that a crash leaves the old or the new
/// file whole: a synced temporary file renamed over it, then the directory synced.
pub(crate) fn write_durably(dir: &Path, name: &str, contents: &str) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.new"));
    let mut file = fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| io_err(&tmp, e))?;
    file.sync_all().map_err(|e| io_err(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    let dir_handle = fs::File::open(dir).map_err(|e| io_err(dir, e))?;
    dir_handle.sync_all().map_err(|e| io_err(dir, e))?;
    Ok(())
}

/// The epoch a master in `dir` runs with: `requested` if given (it must not be lower than the
/// stored one), else the stored one, else [`INITIAL_EPOCH`]. The result is stored durably.
pub fn master_epoch(dir: &Path, requested: Option<u64>) -> Result<u64> {
    if requested == Some(crate::timeline::MERGED_EPOCH) {
        return Err(Error::InvalidConfig(
            "epoch 0 is reserved (it names folded timeline entries); masters start at 1".into(),
        ));
    }
    let stored = read_epoch(dir)?;
    let epoch = match (requested, stored) {
        (Some(r), Some(s)) if r < s => {
            return Err(Error::InvalidConfig(format!(
                "epoch {r} is lower than the epoch {s} already stored in {}",
                dir.display()
            )))
        }
        (Some(r), _) => r,
        (None, Some(s)) => s,
        (None, None) => INITIAL_EPOCH,
    };
    if stored != Some(epoch) {
        write_epoch(dir, epoch)?;
    }
    Ok(epoch)
}

/// Promotes the store in `dir` (a former replica) to master: stores and returns an epoch one
/// above any it has seen, so that replicas of the old master accept it and the old master is
/// refused from then on. Refused if the stored epoch is already the largest (it came from a master's HELLO): the
/// next one would wrap to 0, which every replica refuses as stale.
pub fn promote(dir: &Path) -> Result<u64> {
    let stored = read_epoch(dir)?.unwrap_or(0);
    let next = stored.checked_add(1).ok_or_else(|| {
        Error::InvalidConfig(format!(
            "cannot promote: the stored epoch {stored} is the largest there is"
        ))
    })?;
    write_epoch(dir, next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_round_trips_and_never_goes_down() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| io_err(Path::new("tmp"), e))?;
        assert_eq!(read_epoch(dir.path())?, None);
        assert_eq!(master_epoch(dir.path(), None)?, INITIAL_EPOCH);
        assert_eq!(master_epoch(dir.path(), Some(5))?, 5);
        assert!(matches!(
            master_epoch(dir.path(), Some(4)),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            master_epoch(dir.path(), Some(0)),
            Err(Error::InvalidConfig(_))
        ));
        assert_eq!(promote(dir.path())?, 6);
        assert_eq!(read_epoch(dir.path())?, Some(6));
        Ok(())
    }
}
