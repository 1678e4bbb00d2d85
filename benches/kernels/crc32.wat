;; Table-driven CRC-32 (IEEE) over an n-byte buffer filled with a
;; pseudo-random pattern; returns the CRC.
(module
  (memory 32)
  (func (export "run") (param $n i32) (result i64)
    (local $i i32) (local $k i32) (local $c i32) (local $crc i32) (local $x i32)
    ;; the 256-entry table at 0..1024
    (loop $table
      (local.set $c (local.get $i))
      (local.set $k (i32.const 0))
      (loop $bits
        (local.set $c
          (if (result i32) (i32.and (local.get $c) (i32.const 1))
            (then (i32.xor (i32.const 0xedb88320) (i32.shr_u (local.get $c) (i32.const 1))))
            (else (i32.shr_u (local.get $c) (i32.const 1)))))
        (br_if $bits (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 1))) (i32.const 8))))
      (i32.store (i32.shl (local.get $i) (i32.const 2)) (local.get $c))
      (br_if $table (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 256))))
    ;; the data at 1024..1024+n
    (local.set $x (i32.const 12345))
    (local.set $i (i32.const 0))
    (loop $fill
      (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1103515245)) (i32.const 12345)))
      (i32.store8 (i32.add (i32.const 1024) (local.get $i)) (i32.shr_u (local.get $x) (i32.const 16)))
      (br_if $fill (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (local.set $crc (i32.const -1))
    (local.set $i (i32.const 0))
    (loop $bytes
      (local.set $crc
        (i32.xor
          (i32.load (i32.shl
            (i32.and (i32.xor (local.get $crc) (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))
              (i32.const 255))
            (i32.const 2)))
          (i32.shr_u (local.get $crc) (i32.const 8))))
      (br_if $bytes (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (i64.extend_i32_u (i32.xor (local.get $crc) (i32.const -1))))
)
