//! LEB128 varints (7 bits a byte, low bits first), used by log records and hint files.

/// Appends `v`.
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Bytes `v` takes.
pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads a varint at `*pos` (advancing it); `None` if cut short by `end` or over 64 bits.
#[inline]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize, end: usize) -> Option<u64> {
    // Most fields of most entries fit one byte: decode those without the loop.
    if *pos < end {
        let byte = *buf.get(*pos)?;
        if byte < 0x80 {
            *pos += 1;
            return Some(u64::from(byte));
        }
    }
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if *pos >= end {
            return None;
        }
        let byte = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return (shift < 63 || byte <= 1).then_some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_overlong_input() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(get_varint(&buf, &mut pos, buf.len()), Some(v));
            assert_eq!(pos, buf.len());
            let mut pos = 0;
            assert_eq!(get_varint(&buf, &mut pos, buf.len() - 1), None, "cut short");
        }
        let mut pos = 0;
        assert_eq!(get_varint(&[0xff; 11], &mut pos, 11), None, "over 64 bits");
        let mut pos = 0;
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(get_varint(&too_big, &mut pos, 10), None, "bit 64 set");
    }
}
