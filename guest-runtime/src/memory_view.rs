//! Host access to a guest's linear memory.
//!
//! Guest addresses are [`GuestAddr`]s, never integers or host pointers, and
//! [`MemoryView::range`] is the one checked path from a guest address and
//! length to host bytes: every accessor goes through it. A failed check is
//! an [`OutOfBounds`] error, which syscalls turn into `EFAULT` and the
//! runtime into the trap `out of bounds memory access`.

use std::marker::PhantomData;
use std::ops::Range;

/// An address in a guest's linear memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GuestAddr(pub u32);

impl GuestAddr {
    /// The address `delta` bytes further, if it stays below 4 GiB.
    pub fn checked_add(self, delta: u32) -> Option<GuestAddr> {
        self.0.checked_add(delta).map(GuestAddr)
    }
}

impl std::fmt::Display for GuestAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A guest range outside its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("guest range {addr}+{len} is outside its {memory_len}-byte memory")]
pub struct OutOfBounds {
    pub addr: GuestAddr,
    pub len: u64,
    pub memory_len: u64,
}

/// A borrowed view of one linear memory.
pub struct MemoryView<'a> {
    base: *mut u8,
    len: usize,
    _memory: PhantomData<&'a mut [u8]>,
}

impl<'a> MemoryView<'a> {
    /// # Safety
    /// `base..base + len` must be a linear memory that stays mapped, and is
    /// accessed by nothing else, for `'a`.
    pub unsafe fn new(base: *mut u8, len: usize) -> Self {
        MemoryView {
            base,
            len,
            _memory: PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The checked path: the host byte range of `addr..addr + len`.
    pub fn range(&self, addr: GuestAddr, len: u64) -> Result<Range<usize>, OutOfBounds> {
        let start = u64::from(addr.0);
        match start.checked_add(len) {
            Some(end) if end <= self.len as u64 => Ok(start as usize..end as usize),
            _ => Err(OutOfBounds {
                addr,
                len,
                memory_len: self.len as u64,
            }),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `new`'s contract: the memory is mapped and unaliased for 'a.
        unsafe { std::slice::from_raw_parts(self.base, self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.base, self.len) }
    }

    pub fn slice(&self, addr: GuestAddr, len: u64) -> Result<&[u8], OutOfBounds> {
        let range = self.range(addr, len)?;
        Ok(&self.bytes()[range])
    }

    pub fn slice_mut(&mut self, addr: GuestAddr, len: u64) -> Result<&mut [u8], OutOfBounds> {
        let range = self.range(addr, len)?;
        Ok(&mut self.bytes_mut()[range])
    }

    pub fn read_bytes<const N: usize>(&self, addr: GuestAddr) -> Result<[u8; N], OutOfBounds> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(addr, N as u64)?);
        Ok(out)
    }

    pub fn write_bytes(&mut self, addr: GuestAddr, bytes: &[u8]) -> Result<(), OutOfBounds> {
        self.slice_mut(addr, bytes.len() as u64)?
            .copy_from_slice(bytes);
        Ok(())
    }

    pub fn read_u32(&self, addr: GuestAddr) -> Result<u32, OutOfBounds> {
        self.read_bytes(addr).map(u32::from_le_bytes)
    }

    pub fn read_u64(&self, addr: GuestAddr) -> Result<u64, OutOfBounds> {
        self.read_bytes(addr).map(u64::from_le_bytes)
    }

    pub fn write_u32(&mut self, addr: GuestAddr, value: u32) -> Result<(), OutOfBounds> {
        self.write_bytes(addr, &value.to_le_bytes())
    }

    pub fn write_u64(&mut self, addr: GuestAddr, value: u64) -> Result<(), OutOfBounds> {
        self.write_bytes(addr, &value.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_checks_every_edge() {
        let mut backing = vec![0u8; 16];
        // SAFETY: `backing` outlives the view and nothing else touches it.
        let view = unsafe { MemoryView::new(backing.as_mut_ptr(), backing.len()) };
        assert_eq!(view.range(GuestAddr(0), 16), Ok(0..16));
        assert_eq!(view.range(GuestAddr(16), 0), Ok(16..16));
        assert!(view.range(GuestAddr(16), 1).is_err());
        assert!(view.range(GuestAddr(1), 16).is_err());
        assert!(view.range(GuestAddr(u32::MAX), u64::MAX).is_err());
        assert!(view.range(GuestAddr(17), 0).is_err());
    }
}
