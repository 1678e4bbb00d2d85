;; Syscalls given bad pointers and lengths: each returns an errno (EFAULT
;; is 21, EBADF 8, NOTCAPABLE 76) instead of trapping or touching host
;; memory.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "/etc/passwd")
  ;; iovec pointing past the end of memory
  (func (export "iovec_out_of_bounds") (result i32)
    (i32.store (i32.const 0) (i32.const 65530))
    (i32.store (i32.const 4) (i32.const 100))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
  ;; the iovec array itself out of bounds
  (func (export "iovecs_out_of_bounds") (result i32)
    (call $fd_write (i32.const 1) (i32.const 65535) (i32.const 2) (i32.const 8)))
  ;; the result pointer out of bounds
  (func (export "result_out_of_bounds") (result i32)
    (call $args_sizes_get (i32.const 0) (i32.const -4)))
  ;; a length that wraps around 4 GiB
  (func (export "length_wraps") (result i32)
    (call $random_get (i32.const 100) (i32.const -1)))
  (func (export "bad_descriptor") (result i32)
    (call $fd_write (i32.const 99) (i32.const 0) (i32.const 0) (i32.const 8)))
  ;; an absolute path from the stdout descriptor: not a directory at all
  (func (export "open_absolute") (result i32)
    (call $path_open (i32.const 1) (i32.const 0) (i32.const 16) (i32.const 11)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 40)))
  (func (export "exit") (param i32) (call $proc_exit (local.get 0)))
)
