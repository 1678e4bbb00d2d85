;; Static proof over an index's range (jit/src/translate/ranges.rs): an
;; index bounded by how it is computed, whose largest value plus offset
;; plus size lies within the declared minimum, needs no guard and no mask.
;; Table lookups made this way are what byte-oriented crypto, checksums
;; and decoders do in their inner loops.
(module
  (memory 1)
  ;; No guard: a byte loaded with zero extension indexes a 256-byte table
  ;; at 1024 (largest address 1279).
  (func (export "sbox") (param $p i32) (result i32)
    (i32.load8_u offset=1024 (i32.load8_u (local.get $p))))
  ;; No guard: table[(crc ^ b) & 0xff] of 4-byte entries at 2048.
  (func (export "crc_step") (param $crc i32) (param $b i32) (result i32)
    (i32.load offset=2048
      (i32.shl (i32.and (i32.xor (local.get $crc) (local.get $b)) (i32.const 255))
               (i32.const 2))))
  ;; One guard: a 16-bit index into 4-byte entries reaches 262,140, past
  ;; the 65,536-byte minimum.
  (func (export "too_wide") (param $p i32) (result i32)
    (i32.load (i32.shl (i32.load16_u (local.get $p)) (i32.const 2))))
  ;; One guard: an unbounded index.
  (func (export "unbounded") (param $i i32) (result i32)
    (i32.load (local.get $i)))
)
