;; WASI calls that try to make the host hold or copy without bound, and
;; path_link's follow flag (tests/wasi.rs runs each export with the
;; preopen "." as descriptor 3). Each returns a number the test checks.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link"
    (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "target.txt")
  (data (i32.const 32) "link")
  (data (i32.const 48) "followed")
  (data (i32.const 64) "unfollowed")
  (data (i32.const 80) "big.out")
  ;; Half a billion iovecs, all pointing at untouched memory: refused
  ;; before the host reads a single one (EINVAL, 28).
  (func (export "many_iovecs") (result i32)
    (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 500000000) (i32.const 8)))
  ;; Opens a file 3,000 times with a result pointer outside memory (each
  ;; is EFAULT), then once properly: the descriptor it gets shows whether
  ;; the failed opens left descriptors behind.
  (func (export "open_with_bad_result") (result i32) (local $i i32)
    (loop $again
      (if (i32.ne (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 10)
                    (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const -4))
                  (i32.const 21))
        (then unreachable))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 3000))))
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 10)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 200))
      (then unreachable))
    (i32.load (i32.const 200)))
  ;; Opens the same file until the process's descriptor limit: the count
  ;; of descriptors it got, then EMFILE (33) as the last result.
  (func (export "open_until_refused") (result i32) (local $opened i32) (local $result i32)
    (loop $again
      (local.set $result
        (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 10)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 200)))
      (if (i32.eqz (local.get $result))
        (then (local.set $opened (i32.add (local.get $opened) (i32.const 1)))
              (br $again))))
    (if (i32.ne (local.get $result) (i32.const 33)) (then unreachable))
    (local.get $opened))
  ;; Links "link" (a symlink to target.txt) as "followed", following it,
  ;; and as "unfollowed", not following it.
  (func (export "link_both_ways") (result i32)
    (i32.add
      (i32.mul (i32.const 100)
        (call $path_link (i32.const 3) (i32.const 1) (i32.const 32) (i32.const 4)
          (i32.const 3) (i32.const 48) (i32.const 8)))
      (call $path_link (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 4)
        (i32.const 3) (i32.const 64) (i32.const 10))));; Writes 32 MiB in one fd_write: the call moves at most 16 MiB and
  ;; says so (the caller loops), so no syscall holds its worker for long.
  (func (export "big_write") (result i32)
    (drop (memory.grow (i32.const 512)))
    ;; O_CREAT, with the right to write.
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 80) (i32.const 7)
          (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 200))
      (then unreachable))
    (i32.store (i32.const 300) (i32.const 0))
    (i32.store (i32.const 304) (i32.const 0x2000000))
    (if (call $fd_write (i32.load (i32.const 200)) (i32.const 300) (i32.const 1) (i32.const 308))
      (then unreachable))
    (i32.load (i32.const 308))))
