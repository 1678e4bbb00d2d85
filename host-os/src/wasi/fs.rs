//! File descriptors and paths, sandboxed to the preopened directories.
//!
//! A guest names files only relative to a directory descriptor it holds,
//! and every directory descriptor descends from a preopen. Every lookup is
//! made by the kernel with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//! from that descriptor, so no path can leave the preopen: not through
//! `..`, not as an absolute path, and not through a symlink (even one
//! planted by another program), because the kernel checks every step of
//! the walk, including symlink targets. Operations on a final component
//! (mkdir, unlink, rename, readlink, symlink, stat without following) open
//! its parent that way and then act on the last name with an `*at` call;
//! a last name of `.` or `..` never reaches those calls.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use carat_guest_runtime::{GuestAddr, MemoryView, Val};
use carat_jit::ValType;

use super::{Errno, SysResult, Syscall, WasiCtx, addr, arg_u32, arg_u64, errno, syscall};

/// A host directory made visible to the guest under `guest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
}

enum Entry {
    Stdin,
    Stdout,
    Stderr,
    /// `/dev/null` (`Output::Null`, `Input::Null`), but without a
    /// descriptor of its own: a million processes with their output
    /// discarded would otherwise hold a million descriptors.
    Null,
    File(File),
    Dir {
        dir: File,
        preopen: Option<String>,
    },
}

pub(crate) struct FdTable {
    entries: Vec<Option<Entry>>,
}

const FILETYPE_UNKNOWN: u8 = 0;
const FILETYPE_BLOCK_DEVICE: u8 = 1;
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const FILETYPE_DIRECTORY: u8 = 3;
const FILETYPE_REGULAR_FILE: u8 = 4;
const FILETYPE_SOCKET_STREAM: u8 = 6;
const FILETYPE_SYMBOLIC_LINK: u8 = 7;

const FDFLAGS_APPEND: u16 = 1;
const FDFLAGS_NONBLOCK: u16 = 4;
const OFLAGS_CREAT: u16 = 1;
const OFLAGS_DIRECTORY: u16 = 2;
const OFLAGS_EXCL: u16 = 4;
const OFLAGS_TRUNC: u16 = 8;
const LOOKUP_SYMLINK_FOLLOW: u32 = 1;

/// Most descriptors one process holds open (stdio and preopens included).
pub const MAX_FDS: usize = 1024;

/// Most iovecs one vectored call takes, as POSIX's IOV_MAX: the array is
/// read into the host before the transfer, so it must be bounded.
pub const IOV_MAX: u32 = 1024;

/// Most bytes one vectored call moves: a larger request is answered with
/// a short count (which callers loop on, as POSIX allows), so a single
/// syscall never keeps its worker for long.
pub const MAX_TRANSFER: u64 = 16 << 20;
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;
const RIGHT_FD_ALLOCATE: u64 = 1 << 8;
const RIGHT_FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
/// Every right of preview1: carat-vm's capabilities are the preopens.
const ALL_RIGHTS: u64 = (1 << 29) - 1;
const FSTFLAGS_ATIM: u16 = 1;
const FSTFLAGS_ATIM_NOW: u16 = 2;
const FSTFLAGS_MTIM: u16 = 4;
const FSTFLAGS_MTIM_NOW: u16 = 8;

fn open_dir(path: &std::path::Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
}

impl FdTable {
    pub(crate) fn new(config: &super::WasiConfig) -> std::io::Result<Self> {
        let named = |what: &str, path: &std::path::Path, e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
        };
        let output = |output: &super::Output, inherited: Entry| -> std::io::Result<Entry> {
            Ok(match output {
                super::Output::Inherit => inherited,
                super::Output::Null => Entry::Null,
                super::Output::File(path) => {
                    Entry::File(File::create(path).map_err(|e| named("create", path, e))?)
                }
            })
        };
        let stdin = match &config.stdin {
            super::Input::Inherit => Entry::Stdin,
            super::Input::Null => Entry::Null,
            super::Input::File(path) => {
                Entry::File(File::open(path).map_err(|e| named("open", path, e))?)
            }
        };
        let stdout = output(&config.stdout, Entry::Stdout)?;
        let stderr = output(&config.stderr, Entry::Stderr)?;
        let mut entries = vec![Some(stdin), Some(stdout), Some(stderr)];
        for preopen in &config.preopens {
            let dir = open_dir(&preopen.host).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot preopen {}: {e}", preopen.host.display()),
                )
            })?;
            entries.push(Some(Entry::Dir {
                dir,
                preopen: Some(preopen.guest.clone()),
            }));
        }
        Ok(FdTable { entries })
    }

    pub(crate) fn is_open(&self, fd: u32) -> bool {
        self.entries.get(fd as usize).is_some_and(Option::is_some)
    }

    fn get(&mut self, fd: u32) -> SysResult<&mut Entry> {
        self.entries
            .get_mut(fd as usize)
            .and_then(Option::as_mut)
            .ok_or(Errno(errno::BADF))
    }

    fn file(&mut self, fd: u32) -> SysResult<&mut File> {
        match self.get(fd)? {
            Entry::File(file) => Ok(file),
            Entry::Dir { .. } => Err(Errno(errno::ISDIR)),
            _ => Err(Errno(errno::SPIPE)),
        }
    }

    fn dir(&mut self, fd: u32) -> SysResult<RawFd> {
        match self.get(fd)? {
            Entry::Dir { dir, .. } => Ok(dir.as_raw_fd()),
            _ => Err(Errno(errno::NOTDIR)),
        }
    }

    /// Adds an open entry; EMFILE past [`MAX_FDS`] open descriptors, so
    /// one guest cannot take the host's descriptors from the others.
    fn insert(&mut self, entry: Entry) -> SysResult<u32> {
        match self.entries.iter().position(Option::is_none) {
            Some(i) => {
                self.entries[i] = Some(entry);
                Ok(i as u32)
            }
            None if self.entries.len() >= MAX_FDS => Err(Errno(errno::MFILE)),
            None => {
                self.entries.push(Some(entry));
                Ok((self.entries.len() - 1) as u32)
            }
        }
    }

    /// Closes descriptor `fd`, if open.
    fn remove(&mut self, fd: u32) -> Option<Entry> {
        self.entries.get_mut(fd as usize).and_then(Option::take)
    }
}

/// Reads a guest path: UTF-8, relative, no NUL.
fn guest_path(m: &MemoryView<'_>, at: GuestAddr, len: u32) -> SysResult<String> {
    let bytes = m.slice(at, u64::from(len))?;
    let path = std::str::from_utf8(bytes).map_err(|_| Errno(errno::INVAL))?;
    if path.contains('\0') {
        return Err(Errno(errno::INVAL));
    }
    if path.starts_with('/') {
        return Err(Errno(errno::NOTCAPABLE));
    }
    Ok(path.to_string())
}

fn cstring(s: &str) -> SysResult<CString> {
    CString::new(s).map_err(|_| Errno(errno::INVAL))
}

fn last_error() -> Errno {
    std::io::Error::last_os_error().into()
}

/// Opens `path` below the directory `dir`, never leaving it.
fn open_beneath(dir: RawFd, path: &str, flags: i32, mode: u32) -> SysResult<OwnedFd> {
    let path = cstring(if path.is_empty() { "." } else { path })?;
    // SAFETY: open_how is a plain C struct; all-zero is a valid start.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        u64::from(mode)
    } else {
        0
    };
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: openat2 reads `how` and the NUL-terminated path.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel returned a new descriptor that we own.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAGAIN) && e.raw_os_error() != Some(libc::EINTR) {
            // An escape attempt is EXDEV from the kernel: a capability the
            // guest does not have.
            if e.raw_os_error() == Some(libc::EXDEV) {
                return Err(Errno(errno::NOTCAPABLE));
            }
            return Err(e.into());
        }
    }
}

/// The parent directory of `path` (opened beneath `dir`) and its last
/// component, for `*at` calls. Refuses a last component of `.` or `..`.
fn parent_and_name(dir: RawFd, path: &str) -> SysResult<(OwnedFd, CString)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(Errno(if name.is_empty() {
            errno::NOENT
        } else {
            errno::INVAL
        }));
    }
    let parent = open_beneath(dir, parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    Ok((parent, cstring(name)?))
}

fn filetype(mode: libc::mode_t) -> u8 {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FILETYPE_DIRECTORY,
        libc::S_IFREG => FILETYPE_REGULAR_FILE,
        libc::S_IFLNK => FILETYPE_SYMBOLIC_LINK,
        libc::S_IFCHR => FILETYPE_CHARACTER_DEVICE,
        libc::S_IFBLK => FILETYPE_BLOCK_DEVICE,
        libc::S_IFSOCK => FILETYPE_SOCKET_STREAM,
        _ => FILETYPE_UNKNOWN,
    }
}

fn fstat(fd: RawFd) -> SysResult<libc::stat> {
    // SAFETY: fstat fills a stat struct for a descriptor we hold.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return Err(last_error());
        }
        Ok(st)
    }
}

/// What `/dev/null` is, for a discarding output's filestat.
fn stat_dev_null() -> SysResult<libc::stat> {
    // SAFETY: stat fills a stat struct for a NUL-terminated path.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(c"/dev/null".as_ptr(), &mut st) != 0 {
            return Err(last_error());
        }
        Ok(st)
    }
}

/// Writes a WASI filestat (64 bytes).
fn write_filestat(m: &mut MemoryView<'_>, at: GuestAddr, st: &libc::stat) -> SysResult {
    let mut buf = [0u8; 64];
    buf[0..8].copy_from_slice(&st.st_dev.to_le_bytes());
    buf[8..16].copy_from_slice(&st.st_ino.to_le_bytes());
    buf[16] = filetype(st.st_mode);
    // st_nlink is u64 on x86-64 but u32 on aarch64.
    #[allow(clippy::unnecessary_cast)]
    let nlink = st.st_nlink as u64;
    buf[24..32].copy_from_slice(&nlink.to_le_bytes());
    buf[32..40].copy_from_slice(&(st.st_size as u64).to_le_bytes());
    let ns = |s: i64, n: i64| {
        (s as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(n as u64)
    };
    buf[40..48].copy_from_slice(&ns(st.st_atime, st.st_atime_nsec).to_le_bytes());
    buf[48..56].copy_from_slice(&ns(st.st_mtime, st.st_mtime_nsec).to_le_bytes());
    buf[56..64].copy_from_slice(&ns(st.st_ctime, st.st_ctime_nsec).to_le_bytes());
    Ok(m.write_bytes(at, &buf)?)
}

/// The timespecs for futimens/utimensat from WASI times and flags.
fn timespecs(atim: u64, mtim: u64, flags: u16) -> SysResult<[libc::timespec; 2]> {
    if (flags & FSTFLAGS_ATIM != 0 && flags & FSTFLAGS_ATIM_NOW != 0)
        || (flags & FSTFLAGS_MTIM != 0 && flags & FSTFLAGS_MTIM_NOW != 0)
    {
        return Err(Errno(errno::INVAL));
    }
    let spec = |set: bool, now: bool, t: u64| libc::timespec {
        tv_sec: if set {
            (t / 1_000_000_000) as libc::time_t
        } else {
            0
        },
        tv_nsec: if now {
            libc::UTIME_NOW
        } else if set {
            (t % 1_000_000_000) as libc::c_long
        } else {
            libc::UTIME_OMIT
        },
    };
    Ok([
        spec(
            flags & FSTFLAGS_ATIM != 0,
            flags & FSTFLAGS_ATIM_NOW != 0,
            atim,
        ),
        spec(
            flags & FSTFLAGS_MTIM != 0,
            flags & FSTFLAGS_MTIM_NOW != 0,
            mtim,
        ),
    ])
}

/// The iovecs at `iovs`: (address, length) pairs; EINVAL for more than
/// [`IOV_MAX`].
fn iovecs(m: &MemoryView<'_>, iovs: GuestAddr, count: u32) -> SysResult<Vec<(GuestAddr, u32)>> {
    if count > IOV_MAX {
        return Err(Errno(errno::INVAL));
    }
    (0..count)
        .map(|i| {
            let at = i
                .checked_mul(8)
                .and_then(|o| iovs.checked_add(o))
                .ok_or(Errno(errno::FAULT))?;
            let buf = m.read_u32(at)?;
            let len = m.read_u32(at.checked_add(4).ok_or(Errno(errno::FAULT))?)?;
            m.range(GuestAddr(buf), u64::from(len))?;
            Ok((GuestAddr(buf), len))
        })
        .collect()
}

fn write_to(entry: &mut Entry, bytes: &[u8], offset: Option<u64>) -> SysResult<usize> {
    Ok(match (entry, offset) {
        (Entry::Stdout, None) => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
            bytes.len()
        }
        (Entry::Stderr, None) => {
            std::io::stderr().write_all(bytes)?;
            bytes.len()
        }
        (Entry::Null, None) => bytes.len(),
        (Entry::File(file), None) => file.write(bytes)?,
        (Entry::File(file), Some(at)) => file.write_at(bytes, at)?,
        (Entry::Dir { .. }, _) => return Err(Errno(errno::ISDIR)),
        (Entry::Stdin, _) => return Err(Errno(errno::BADF)),
        (_, Some(_)) => return Err(Errno(errno::SPIPE)),
    })
}

fn read_from(entry: &mut Entry, buf: &mut [u8], offset: Option<u64>) -> SysResult<usize> {
    Ok(match (entry, offset) {
        (Entry::Stdin, None) => std::io::stdin().lock().read(buf)?,
        (Entry::Null, None) => 0,
        (Entry::File(file), None) => file.read(buf)?,
        (Entry::File(file), Some(at)) => file.read_at(buf, at)?,
        (Entry::Dir { .. }, _) => return Err(Errno(errno::ISDIR)),
        (Entry::Stdout | Entry::Stderr, _) => return Err(Errno(errno::BADF)),
        (Entry::Null, Some(_)) => return Err(Errno(errno::SPIPE)),
        (Entry::Stdin, Some(_)) => return Err(Errno(errno::SPIPE)),
    })
}

/// One iovec's transfer: (entry, memory, buffer, length, file offset) to
/// bytes moved.
type Transfer =
    fn(&mut Entry, &mut MemoryView<'_>, GuestAddr, u32, Option<u64>) -> SysResult<usize>;

/// fd_read, fd_pread, fd_write and fd_pwrite: moves bytes iovec by iovec
/// until one comes up short or [`MAX_TRANSFER`] bytes have moved, and
/// stores the total at argument `out`.
fn vectored(
    c: &mut WasiCtx,
    m: &mut MemoryView<'_>,
    a: &[Val],
    offset: Option<u64>,
    out: usize,
    transfer: Transfer,
) -> SysResult {
    let iovs = iovecs(m, addr(a, 1), arg_u32(a, 2))?;
    let entry = c.fds.get(arg_u32(a, 0))?;
    let mut total: u64 = 0;
    for (buf, len) in iovs {
        let len = len.min((MAX_TRANSFER - total) as u32);
        let n = transfer(entry, m, buf, len, offset.map(|o| o + total))?;
        total += n as u64;
        if n < len as usize || total >= MAX_TRANSFER {
            break;
        }
    }
    m.write_u32(addr(a, out), total as u32)?;
    Ok(())
}

fn write_iovec(
    e: &mut Entry,
    m: &mut MemoryView<'_>,
    buf: GuestAddr,
    len: u32,
    at: Option<u64>,
) -> SysResult<usize> {
    write_to(e, m.slice(buf, u64::from(len))?, at)
}

fn read_iovec(
    e: &mut Entry,
    m: &mut MemoryView<'_>,
    buf: GuestAddr,
    len: u32,
    at: Option<u64>,
) -> SysResult<usize> {
    read_from(e, m.slice_mut(buf, u64::from(len))?, at)
}

/// The entries of a directory, with `.` and `..`, as (name, inode, type).
fn list_dir(dir: RawFd) -> SysResult<Vec<(Vec<u8>, u64, u8)>> {
    // SAFETY: we duplicate the descriptor so closedir closes only the copy,
    // rewind it, and read entries until readdir returns null.
    unsafe {
        let copy = libc::fcntl(dir, libc::F_DUPFD_CLOEXEC, 0);
        if copy < 0 {
            return Err(last_error());
        }
        let stream = libc::fdopendir(copy);
        if stream.is_null() {
            let e = last_error();
            libc::close(copy);
            return Err(e);
        }
        libc::rewinddir(stream);
        let mut entries = Vec::new();
        loop {
            let entry = libc::readdir64(stream);
            if entry.is_null() {
                break;
            }
            let entry = &*entry;
            let name = std::ffi::CStr::from_ptr(entry.d_name.as_ptr())
                .to_bytes()
                .to_vec();
            let kind = match entry.d_type {
                libc::DT_DIR => FILETYPE_DIRECTORY,
                libc::DT_REG => FILETYPE_REGULAR_FILE,
                libc::DT_LNK => FILETYPE_SYMBOLIC_LINK,
                libc::DT_CHR => FILETYPE_CHARACTER_DEVICE,
                libc::DT_BLK => FILETYPE_BLOCK_DEVICE,
                libc::DT_SOCK => FILETYPE_SOCKET_STREAM,
                _ => FILETYPE_UNKNOWN,
            };
            entries.push((name, entry.d_ino, kind));
        }
        libc::closedir(stream);
        entries.sort();
        Ok(entries)
    }
}

fn fd_readdir(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let (buf, buf_len, cookie, used) = (addr(a, 1), arg_u32(a, 2), arg_u64(a, 3), addr(a, 4));
    let dir = c.fds.dir(arg_u32(a, 0))?;
    let mut out = Vec::new();
    for (i, (name, ino, kind)) in list_dir(dir)?.into_iter().enumerate().skip(cookie as usize) {
        let mut header = [0u8; 24];
        header[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        header[8..16].copy_from_slice(&ino.to_le_bytes());
        header[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
        header[20] = kind;
        out.extend_from_slice(&header);
        out.extend_from_slice(&name);
        if out.len() >= buf_len as usize {
            break;
        }
    }
    // A full buffer (cut mid-entry if need be) tells the caller to go on.
    out.truncate(buf_len as usize);
    m.write_bytes(buf, &out)?;
    m.write_u32(used, out.len() as u32)?;
    Ok(())
}

fn path_open(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    // Where the new descriptor goes must be writable before anything is
    // opened: a descriptor the guest cannot learn would stay open unseen.
    m.range(addr(a, 8), 4)?;
    let dir = c.fds.dir(arg_u32(a, 0))?;
    let lookup = arg_u32(a, 1);
    let path = guest_path(m, addr(a, 2), arg_u32(a, 3))?;
    let oflags = arg_u32(a, 4) as u16;
    let rights = arg_u64(a, 5);
    let fdflags = arg_u32(a, 7) as u16;
    let wants_write = rights & (RIGHT_FD_WRITE | RIGHT_FD_ALLOCATE | RIGHT_FD_FILESTAT_SET_SIZE)
        != 0
        || oflags & OFLAGS_TRUNC != 0;
    let wants_read = rights & RIGHT_FD_READ != 0;
    let mut flags = match (wants_read, wants_write) {
        (_, false) => libc::O_RDONLY,
        (false, true) => libc::O_WRONLY,
        (true, true) => libc::O_RDWR,
    };
    if oflags & OFLAGS_DIRECTORY != 0 {
        flags = libc::O_RDONLY | libc::O_DIRECTORY;
    }
    if oflags & OFLAGS_CREAT != 0 {
        flags |= libc::O_CREAT;
    }
    if oflags & OFLAGS_EXCL != 0 {
        flags |= libc::O_EXCL;
    }
    if oflags & OFLAGS_TRUNC != 0 {
        flags |= libc::O_TRUNC;
    }
    if fdflags & FDFLAGS_APPEND != 0 {
        flags |= libc::O_APPEND;
    }
    if fdflags & FDFLAGS_NONBLOCK != 0 {
        flags |= libc::O_NONBLOCK;
    }
    if lookup & LOOKUP_SYMLINK_FOLLOW == 0 {
        flags |= libc::O_NOFOLLOW;
    }
    let fd = match open_beneath(dir, &path, flags, 0o666) {
        // A directory opened for writing: open it for reading instead, as
        // wasi-libc opens directories without O_DIRECTORY.
        Err(Errno(errno::ISDIR)) if oflags & OFLAGS_CREAT == 0 => {
            open_beneath(dir, &path, libc::O_RDONLY | (flags & libc::O_NOFOLLOW), 0)?
        }
        other => other?,
    };
    let file = File::from(fd);
    let is_dir = filetype(fstat(file.as_raw_fd())?.st_mode) == FILETYPE_DIRECTORY;
    let entry = if is_dir {
        Entry::Dir {
            dir: file,
            preopen: None,
        }
    } else {
        Entry::File(file)
    };
    let new = c.fds.insert(entry)?;
    if let Err(e) = m.write_u32(addr(a, 8), new) {
        c.fds.remove(new);
        return Err(e.into());
    }
    Ok(())
}

fn path_filestat_get(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let dir = c.fds.dir(arg_u32(a, 0))?;
    let path = guest_path(m, addr(a, 2), arg_u32(a, 3))?;
    let follow = arg_u32(a, 1) & LOOKUP_SYMLINK_FOLLOW != 0;
    let flags = libc::O_PATH | if follow { 0 } else { libc::O_NOFOLLOW };
    let fd = open_beneath(dir, &path, flags, 0)?;
    let st = fstat(fd.as_raw_fd())?;
    write_filestat(m, addr(a, 4), &st)
}

fn path_filestat_set_times(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let times = timespecs(arg_u64(a, 4), arg_u64(a, 5), arg_u32(a, 6) as u16)?;
    if arg_u32(a, 1) & LOOKUP_SYMLINK_FOLLOW != 0 {
        // Following must stay beneath the preopen: resolve the target first.
        let dir = c.fds.dir(arg_u32(a, 0))?;
        let path = guest_path(m, addr(a, 2), arg_u32(a, 3))?;
        let fd = open_beneath(dir, &path, libc::O_RDONLY, 0)?;
        // SAFETY: futimens on a descriptor we own with two timespecs.
        if unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) } != 0 {
            return Err(last_error());
        }
        return Ok(());
    }
    at_parent(c, m, a, 0, 2, |parent, name| {
        // SAFETY: utimensat on a parent we opened, a NUL-terminated name and
        // two timespecs.
        unsafe {
            libc::utimensat(
                parent,
                name.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        }
    })
}

/// Runs `f(parent, name)` on the parent and last component of a path.
fn at_parent(
    c: &mut WasiCtx,
    m: &MemoryView<'_>,
    a: &[Val],
    fd: usize,
    path: usize,
    f: impl FnOnce(RawFd, &CString) -> i32,
) -> SysResult {
    let (parent, name) = parent_of_arg(c, m, a, fd, path)?;
    if f(parent.as_raw_fd(), &name) != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// The parent and last name of a path given as (descriptor, address,
/// length) in the arguments starting at `fd`.
fn parent_of_arg(
    c: &mut WasiCtx,
    m: &MemoryView<'_>,
    a: &[Val],
    fd: usize,
    path: usize,
) -> SysResult<(OwnedFd, CString)> {
    let dir = c.fds.dir(arg_u32(a, fd))?;
    let path = guest_path(m, addr(a, path), arg_u32(a, path + 1))?;
    parent_and_name(dir, &path)
}

/// Runs a two-path call (rename, link) on both parents and last names.
fn two_paths(
    c: &mut WasiCtx,
    m: &MemoryView<'_>,
    a: &[Val],
    from: (usize, usize),
    to: (usize, usize),
    f: impl FnOnce(RawFd, &CString, RawFd, &CString) -> i32,
) -> SysResult {
    let (from_parent, from_name) = parent_of_arg(c, m, a, from.0, from.1)?;
    let (to_parent, to_name) = parent_of_arg(c, m, a, to.0, to.1)?;
    if f(
        from_parent.as_raw_fd(),
        &from_name,
        to_parent.as_raw_fd(),
        &to_name,
    ) != 0
    {
        return Err(last_error());
    }
    Ok(())
}

fn path_rename(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    two_paths(c, m, a, (0, 1), (3, 4), |from_dir, from, to_dir, to| {
        // SAFETY: renameat on parents we opened and NUL-terminated names.
        unsafe { libc::renameat(from_dir, from.as_ptr(), to_dir, to.as_ptr()) }
    })
}

/// path_link. With the follow flag, a symlink source is resolved first,
/// beneath its directory like every lookup (so it cannot reach outside
/// the preopen), and the file it names is linked through its descriptor;
/// without it, the symlink itself is linked.
fn path_link(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    if arg_u32(a, 1) & LOOKUP_SYMLINK_FOLLOW == 0 {
        return two_paths(c, m, a, (0, 2), (4, 5), |from_dir, from, to_dir, to| {
            // SAFETY: linkat on parents we opened and NUL-terminated names;
            // no AT_SYMLINK_FOLLOW, so a symlink is linked, not its target.
            unsafe { libc::linkat(from_dir, from.as_ptr(), to_dir, to.as_ptr(), 0) }
        });
    }
    let dir = c.fds.dir(arg_u32(a, 0))?;
    let path = guest_path(m, addr(a, 2), arg_u32(a, 3))?;
    let source = open_beneath(dir, &path, libc::O_PATH, 0)?;
    let (to_parent, to_name) = parent_of_arg(c, m, a, 4, 5)?;
    // The unprivileged way to link a file by descriptor: its /proc link,
    // followed (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
    let by_descriptor = cstring(&format!("/proc/self/fd/{}", source.as_raw_fd()))?;
    // SAFETY: linkat on a NUL-terminated /proc path, a parent we opened and
    // a NUL-terminated name.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            by_descriptor.as_ptr(),
            to_parent.as_raw_fd(),
            to_name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if linked != 0 {
        return Err(last_error());
    }
    Ok(())
}

fn path_readlink(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let (buf, buf_len, used) = (addr(a, 3), arg_u32(a, 4), addr(a, 5));
    let dir = c.fds.dir(arg_u32(a, 0))?;
    let path = guest_path(m, addr(a, 1), arg_u32(a, 2))?;
    let (parent, name) = parent_and_name(dir, &path)?;
    let mut target = vec![0u8; 4096];
    // SAFETY: readlinkat writes at most target.len() bytes.
    let n = unsafe {
        libc::readlinkat(
            parent.as_raw_fd(),
            name.as_ptr(),
            target.as_mut_ptr().cast(),
            target.len(),
        )
    };
    if n < 0 {
        return Err(last_error());
    }
    let n = (n as usize).min(buf_len as usize);
    m.write_bytes(buf, &target[..n])?;
    m.write_u32(used, n as u32)?;
    Ok(())
}

fn path_symlink(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let target = guest_path(m, addr(a, 0), arg_u32(a, 1)).map_err(|e| match e.0 {
        // An absolute target could never resolve inside the sandbox.
        errno::NOTCAPABLE => Errno(errno::PERM),
        other => Errno(other),
    })?;
    let target = cstring(&target)?;
    at_parent(c, m, a, 2, 3, |parent, name| {
        // SAFETY: symlinkat with NUL-terminated strings and a parent we opened.
        unsafe { libc::symlinkat(target.as_ptr(), parent, name.as_ptr()) }
    })
}

fn fd_fdstat_get(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let (kind, flags) = match c.fds.get(arg_u32(a, 0))? {
        Entry::Stdin | Entry::Stdout | Entry::Stderr | Entry::Null => {
            (FILETYPE_CHARACTER_DEVICE, 0)
        }
        Entry::Dir { .. } => (FILETYPE_DIRECTORY, 0),
        Entry::File(file) => {
            let kind = filetype(fstat(file.as_raw_fd())?.st_mode);
            // SAFETY: F_GETFL on a descriptor we hold.
            let host = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
            let mut flags = 0;
            if host & libc::O_APPEND != 0 {
                flags |= FDFLAGS_APPEND;
            }
            if host & libc::O_NONBLOCK != 0 {
                flags |= FDFLAGS_NONBLOCK;
            }
            (kind, flags)
        }
    };
    let mut buf = [0u8; 24];
    buf[0] = kind;
    buf[2..4].copy_from_slice(&flags.to_le_bytes());
    buf[8..16].copy_from_slice(&ALL_RIGHTS.to_le_bytes());
    buf[16..24].copy_from_slice(&ALL_RIGHTS.to_le_bytes());
    Ok(m.write_bytes(addr(a, 1), &buf)?)
}

fn fd_fdstat_set_flags(c: &mut WasiCtx, _: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let flags = arg_u32(a, 1) as u16;
    let file = c.fds.file(arg_u32(a, 0))?;
    let mut host = 0;
    if flags & FDFLAGS_APPEND != 0 {
        host |= libc::O_APPEND;
    }
    if flags & FDFLAGS_NONBLOCK != 0 {
        host |= libc::O_NONBLOCK;
    }
    if flags & !(FDFLAGS_APPEND | FDFLAGS_NONBLOCK) != 0 {
        return Err(Errno(errno::NOTSUP));
    }
    // SAFETY: F_SETFL on a descriptor we hold.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, host) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

fn fd_filestat_get(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let st = match c.fds.get(arg_u32(a, 0))? {
        Entry::Stdin => fstat(0)?,
        Entry::Stdout => fstat(1)?,
        Entry::Stderr => fstat(2)?,
        Entry::Null => stat_dev_null()?,
        Entry::File(file) | Entry::Dir { dir: file, .. } => fstat(file.as_raw_fd())?,
    };
    write_filestat(m, addr(a, 1), &st)
}

fn fd_seek(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let offset = arg_u64(a, 1) as i64;
    let position = match arg_u32(a, 2) {
        0 => SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno(errno::INVAL))?),
        1 => SeekFrom::Current(offset),
        2 => SeekFrom::End(offset),
        _ => return Err(Errno(errno::INVAL)),
    };
    let new = c.fds.file(arg_u32(a, 0))?.seek(position)?;
    Ok(m.write_u64(addr(a, 3), new)?)
}

fn fd_prestat_get(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    match c.fds.get(arg_u32(a, 0))? {
        Entry::Dir {
            preopen: Some(name),
            ..
        } => {
            let mut buf = [0u8; 8];
            buf[4..8].copy_from_slice(&(name.len() as u32).to_le_bytes());
            Ok(m.write_bytes(addr(a, 1), &buf)?)
        }
        _ => Err(Errno(errno::BADF)),
    }
}

fn fd_prestat_dir_name(c: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    match c.fds.get(arg_u32(a, 0))? {
        Entry::Dir {
            preopen: Some(name),
            ..
        } => {
            let len = (arg_u32(a, 2) as usize).min(name.len());
            Ok(m.write_bytes(addr(a, 1), &name.as_bytes()[..len])?)
        }
        _ => Err(Errno(errno::BADF)),
    }
}

fn fd_renumber(c: &mut WasiCtx, _: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let (from, to) = (arg_u32(a, 0), arg_u32(a, 1));
    c.fds.get(from)?;
    c.fds.get(to)?;
    let entry = c.fds.entries[from as usize].take();
    c.fds.entries[to as usize] = entry;
    Ok(())
}

pub(super) fn syscalls() -> Vec<Syscall> {
    use ValType::{I32, I64};
    vec![
        syscall("fd_write", &[I32, I32, I32, I32], |c, m, a| {
            vectored(c, m, a, None, 3, write_iovec)
        }),
        syscall("fd_pwrite", &[I32, I32, I32, I64, I32], |c, m, a| {
            vectored(c, m, a, Some(arg_u64(a, 3)), 4, write_iovec)
        }),
        syscall("fd_read", &[I32, I32, I32, I32], |c, m, a| {
            if matches!(c.fds.get(arg_u32(a, 0))?, Entry::Stdin) {
                super::park_until_stdin_readable(c, None)?;
            }
            vectored(c, m, a, None, 3, read_iovec)
        }),
        syscall("fd_pread", &[I32, I32, I32, I64, I32], |c, m, a| {
            vectored(c, m, a, Some(arg_u64(a, 3)), 4, read_iovec)
        }),
        syscall("fd_close", &[I32], |c, _, a| {
            c.fds.get(arg_u32(a, 0))?;
            c.fds.entries[arg_u32(a, 0) as usize] = None;
            Ok(())
        }),
        syscall("fd_seek", &[I32, I64, I32, I32], fd_seek),
        syscall("fd_tell", &[I32, I32], |c, m, a| {
            let at = c.fds.file(arg_u32(a, 0))?.stream_position()?;
            Ok(m.write_u64(addr(a, 1), at)?)
        }),
        syscall("fd_sync", &[I32], |c, _, a| {
            Ok(c.fds.file(arg_u32(a, 0))?.sync_all()?)
        }),
        syscall("fd_datasync", &[I32], |c, _, a| {
            Ok(c.fds.file(arg_u32(a, 0))?.sync_data()?)
        }),
        syscall("fd_advise", &[I32, I64, I64, I32], |c, _, a| {
            c.fds.file(arg_u32(a, 0))?;
            Ok(())
        }),
        syscall("fd_allocate", &[I32, I64, I64], |c, _, a| {
            let file = c.fds.file(arg_u32(a, 0))?;
            let end = arg_u64(a, 1)
                .checked_add(arg_u64(a, 2))
                .ok_or(Errno(errno::FBIG))?;
            if file.metadata()?.len() < end {
                file.set_len(end)?;
            }
            Ok(())
        }),
        syscall("fd_fdstat_get", &[I32, I32], fd_fdstat_get),
        syscall("fd_fdstat_set_flags", &[I32, I32], fd_fdstat_set_flags),
        syscall("fd_fdstat_set_rights", &[I32, I64, I64], |c, _, a| {
            c.fds.get(arg_u32(a, 0)).map(|_| ())
        }),
        syscall("fd_filestat_get", &[I32, I32], fd_filestat_get),
        syscall("fd_filestat_set_size", &[I32, I64], |c, _, a| {
            Ok(c.fds.file(arg_u32(a, 0))?.set_len(arg_u64(a, 1))?)
        }),
        syscall("fd_filestat_set_times", &[I32, I64, I64, I32], |c, _, a| {
            let times = timespecs(arg_u64(a, 1), arg_u64(a, 2), arg_u32(a, 3) as u16)?;
            let fd = match c.fds.get(arg_u32(a, 0))? {
                Entry::File(f) | Entry::Dir { dir: f, .. } => f.as_raw_fd(),
                _ => return Err(Errno(errno::BADF)),
            };
            // SAFETY: futimens on a descriptor we hold with two timespecs.
            if unsafe { libc::futimens(fd, times.as_ptr()) } != 0 {
                return Err(last_error());
            }
            Ok(())
        }),
        syscall("fd_prestat_get", &[I32, I32], fd_prestat_get),
        syscall("fd_prestat_dir_name", &[I32, I32, I32], fd_prestat_dir_name),
        syscall("fd_readdir", &[I32, I32, I32, I64, I32], fd_readdir),
        syscall("fd_renumber", &[I32, I32], fd_renumber),
        syscall(
            "path_open",
            &[I32, I32, I32, I32, I32, I64, I64, I32, I32],
            path_open,
        ),
        syscall(
            "path_filestat_get",
            &[I32, I32, I32, I32, I32],
            path_filestat_get,
        ),
        syscall(
            "path_filestat_set_times",
            &[I32, I32, I32, I32, I64, I64, I32],
            path_filestat_set_times,
        ),
        syscall("path_create_directory", &[I32, I32, I32], |c, m, a| {
            at_parent(c, m, a, 0, 1, |parent, name| {
                // SAFETY: mkdirat on a parent we opened and a NUL-terminated name.
                unsafe { libc::mkdirat(parent, name.as_ptr(), 0o777) }
            })
        }),
        syscall("path_remove_directory", &[I32, I32, I32], |c, m, a| {
            at_parent(c, m, a, 0, 1, |parent, name| {
                // SAFETY: unlinkat on a parent we opened and a NUL-terminated name.
                unsafe { libc::unlinkat(parent, name.as_ptr(), libc::AT_REMOVEDIR) }
            })
        }),
        syscall("path_unlink_file", &[I32, I32, I32], |c, m, a| {
            at_parent(c, m, a, 0, 1, |parent, name| {
                // SAFETY: unlinkat on a parent we opened and a NUL-terminated name.
                unsafe { libc::unlinkat(parent, name.as_ptr(), 0) }
            })
        }),
        syscall("path_rename", &[I32, I32, I32, I32, I32, I32], path_rename),
        syscall("path_link", &[I32, I32, I32, I32, I32, I32, I32], path_link),
        syscall(
            "path_readlink",
            &[I32, I32, I32, I32, I32, I32],
            path_readlink,
        ),
        syscall("path_symlink", &[I32, I32, I32, I32, I32], path_symlink),
    ]
}
