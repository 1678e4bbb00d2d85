;; Imports a WASI function that preview1 does not have.
(module (import "wasi_snapshot_preview1" "fd_teleport" (func (param i32) (result i32))))
