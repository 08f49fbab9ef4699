//! What every live block holds: a pattern derived from the block's seed, so
//! that a byte changed by anyone else (an overlapping block, a free list
//! written into a live block, a lost `realloc` copy) is found when the block
//! is checked.

/// The word at word index `i` of a block with seed `seed`.
fn word(seed: u64, i: usize) -> u64 {
    (seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// The byte at offset `off` of a block with seed `seed`.
fn byte(seed: u64, off: usize) -> u8 {
    word(seed, off / 8).to_le_bytes()[off % 8]
}

/// Writes the pattern of `seed` into `p[from..len]`.
///
/// # Safety
/// `p[..len]` is writable.
pub unsafe fn fill(p: *mut u8, from: usize, len: usize, seed: u64) {
    let mut off = from;
    while off < len && !off.is_multiple_of(8) {
        // SAFETY: `off < len` (caller).
        unsafe { p.add(off).write(byte(seed, off)) };
        off += 1;
    }
    while off + 8 <= len {
        // SAFETY: `off + 8 <= len` (caller); unaligned writes are allowed.
        unsafe {
            p.add(off)
                .cast::<u64>()
                .write_unaligned(word(seed, off / 8).to_le())
        };
        off += 8;
    }
    while off < len {
        // SAFETY: `off < len` (caller).
        unsafe { p.add(off).write(byte(seed, off)) };
        off += 1;
    }
}

/// The first offset in `p[..len]` that does not hold the pattern of `seed`.
///
/// # Safety
/// `p[..len]` is readable.
pub unsafe fn first_mismatch(p: *const u8, len: usize, seed: u64) -> Option<usize> {
    let mut off = 0;
    while off + 8 <= len {
        // SAFETY: `off + 8 <= len` (caller).
        let w = unsafe { p.add(off).cast::<u64>().read_unaligned() };
        if w != word(seed, off / 8).to_le() {
            break;
        }
        off += 8;
    }
    while off < len {
        // SAFETY: `off < len` (caller).
        if unsafe { p.add(off).read() } != byte(seed, off) {
            return Some(off);
        }
        off += 1;
    }
    None
}

/// The first non-zero offset in `p[..len]`.
///
/// # Safety
/// `p[..len]` is readable.
pub unsafe fn first_nonzero(p: *const u8, len: usize) -> Option<usize> {
    // SAFETY: readable (caller).
    let bytes = unsafe { core::slice::from_raw_parts(p, len) };
    bytes.iter().position(|&b| b != 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_changed_byte_is_found_at_its_offset() {
        let mut buf = vec![0u8; 100];
        // SAFETY: a buffer of 100 bytes.
        unsafe {
            super::fill(buf.as_mut_ptr(), 0, 100, 7);
            assert_eq!(super::first_mismatch(buf.as_ptr(), 100, 7), None);
            assert_eq!(super::first_mismatch(buf.as_ptr(), 100, 8), Some(0));
            buf[61] ^= 1;
            assert_eq!(super::first_mismatch(buf.as_ptr(), 100, 7), Some(61));
            // A fill from an unaligned offset continues the same pattern.
            super::fill(buf.as_mut_ptr(), 3, 100, 7);
            assert_eq!(super::first_mismatch(buf.as_ptr(), 100, 7), None);
        }
    }
}
