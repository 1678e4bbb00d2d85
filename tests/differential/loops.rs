//! Loop programs for the differential tester: what wasm-smith rarely
//! writes and loop versioning (`jit/src/translate/versioning.rs`) must get
//! exactly right. Each module has a few exported functions, each one
//! innermost loop over memory in the shapes clang emits (a counter or a
//! pointer stepping by a constant, a rotated latch compared signed or
//! unsigned, `ne`, or the counter itself tested against zero), with its
//! accesses' ranges drawn to end just inside, at, or just past the
//! memory's bound, to wrap around 2^32, to run from negative starts, and
//! with early exits, accesses in conditional arms, calls that grow the
//! memory part-way, and column walks (`i * n` for a run-time stride). Each function
//! returns a checksum of what it loaded; stores land in memory, which the
//! tester hashes.

use std::fmt::Write;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A latch: the compare and whether the step must be positive.
const LATCHES: &[(&str, Option<bool>)] = &[
    ("i32.lt_u", Some(true)),
    ("i32.le_u", Some(true)),
    ("i32.lt_s", Some(true)),
    ("i32.le_s", Some(true)),
    ("i32.gt_u", Some(false)),
    ("i32.ge_u", Some(false)),
    ("i32.gt_s", Some(false)),
    ("i32.ge_s", Some(false)),
    ("i32.ne", None),
    ("i32.eq", None),
    ("", None),
];

/// One module of loop functions for `seed`.
pub fn generate_loops(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let pages = rng.pick(&[1u64, 1, 2, 3]);
    let bytes = pages * 65536;
    let mut text = format!("(module (memory (export \"mem\") {pages} {})\n", pages + 1);
    // Fill memory with a pattern so loads see something.
    writeln!(
        text,
        "(data (i32.const 0) \"{}\")",
        (0..64)
            .map(|i| format!("\\{:02x}", (i * 37 + seed as usize) & 0xff))
            .collect::<String>()
    )
    .unwrap();
    // A callee for loops that call: grows memory once, at a chosen
    // iteration (the bound then widens, and the memory may move, under a
    // running fast copy).
    text.push_str(
        "(func $maybe_grow (param $i i32) (param $at i32)
  (if (i32.eq (local.get $i) (local.get $at))
    (then (drop (memory.grow (i32.const 1))))))\n",
    );
    for f in 0..rng.pick(&[2usize, 3, 4]) {
        loop_function(&mut rng, &mut text, f, bytes);
    }
    if rng.below(3) == 0 {
        text.push_str("(func (export \"grow\") (result i32) (memory.grow (i32.const 1)))\n");
        for f in 4..6 {
            loop_function(&mut rng, &mut text, f, bytes);
        }
    }
    text.push(')');
    wat::parse_str(&text).unwrap_or_else(|e| panic!("generated loop module: {e}\n{text}"))
}

/// A value near one of the places where ranges go wrong.
fn interesting(rng: &mut Rng, bytes: u64) -> i64 {
    let anchor = rng.pick(&[0i64, bytes as i64, 1 << 31, 1 << 32, bytes as i64 / 2, 64]);
    let delta = rng.pick(&[
        0i64, 1, -1, 2, -2, 3, -4, 7, -8, 16, -16, 100, -100, 1000, -1000,
    ]);
    anchor + delta
}

fn loop_function(rng: &mut Rng, text: &mut String, f: usize, bytes: u64) {
    let (latch, direction) = rng.pick(LATCHES);
    let up = direction.unwrap_or(rng.below(2) == 0);
    let magnitude = rng.pick(&[1i64, 1, 2, 3, 4, 8, 16]);
    let step = if up { magnitude } else { -magnitude };
    let trips = rng.pick(&[1i64, 2, 5, 17, 100, 1000, 20000]);
    // Start and limit: either a modest trip count from an interesting
    // start, or both interesting.
    let start = if rng.below(2) == 0 {
        rng.pick(&[0i64, 0, 1, -1, -5, 1 << 31, (1 << 31) - 3])
    } else {
        interesting(rng, bytes) / magnitude.max(1)
    };
    let limit = if rng.below(3) == 0 {
        interesting(rng, bytes)
    } else {
        start + step * trips + rng.pick(&[0i64, 0, 0, 1, -1, magnitude - 1])
    };
    // The latch compares the incremented counter (rotated loop), or, for
    // the bare form, tests it against zero.
    let condition = if latch.is_empty() {
        "(local.get $i)".to_string()
    } else {
        format!("({latch} (local.get $i) (i32.const {}))", limit as i32)
    };
    let pointer_step = rng.pick(&[0i64, 4, 8, 16, -8]);
    let pointer_start = interesting(rng, bytes) - pointer_step.abs() * rng.pick(&[1i64, 10, 100]);
    let exit_after = rng.pick(&[0i64, 1, 3, 50]);
    let exit_at = rng.pick(&[None, None, None, Some(start + step * exit_after)]);

    writeln!(text, "(func (export \"loop{f}\") (result i32)").unwrap();
    writeln!(
        text,
        "  (local $i i32) (local $p i32) (local $s i32) (local $n i32)"
    )
    .unwrap();
    // A run-time stride for column walks (`i * n`).
    let stride = rng.pick(&[1i64, 8, 100, 1000, 65536, 1 << 29, -8]);
    writeln!(text, "  (local.set $n (i32.const {}))", stride as i32).unwrap();
    writeln!(text, "  (local.set $i (i32.const {}))", start as i32).unwrap();
    writeln!(
        text,
        "  (local.set $p (i32.const {}))",
        pointer_start as i32
    )
    .unwrap();
    writeln!(text, "  (block $exit (loop $L").unwrap();
    if let Some(at) = exit_at {
        writeln!(
            text,
            "    (br_if $exit (i32.eq (local.get $i) (i32.const {})))",
            at as i32
        )
        .unwrap();
    }
    // The counter's values over the trips, if the latch ends the loop
    // where `trips` says (accesses aim their ranges at the bound for it).
    let last = start + step * (trips - 1);
    let span = (start.min(last), start.max(last) + magnitude);
    for _ in 0..rng.pick(&[1usize, 2, 3]) {
        access(rng, text, bytes, span);
    }
    if rng.below(4) == 0 {
        let at = start + step * rng.pick(&[0i64, 1, 2, 7]);
        writeln!(
            text,
            "    (call $maybe_grow (local.get $i) (i32.const {}))",
            at as i32
        )
        .unwrap();
        access(rng, text, bytes, span);
    }
    if pointer_step != 0 {
        writeln!(
            text,
            "    (local.set $p (i32.add (local.get $p) (i32.const {pointer_step})))"
        )
        .unwrap();
    }
    writeln!(
        text,
        "    (local.set $i (i32.add (local.get $i) (i32.const {step})))"
    )
    .unwrap();
    if rng.below(4) == 0 {
        // An access after the increment: the next iteration's value.
        access(rng, text, bytes, span);
    }
    writeln!(text, "    (br_if $L {condition})))").unwrap();
    writeln!(text, "  (local.get $s))").unwrap();
}

/// One load or store whose index is affine in `$i` and `$p`; `span` is
/// the range `$i` is expected to cover.
fn access(rng: &mut Rng, text: &mut String, bytes: u64, span: (i64, i64)) {
    let scale = rng.pick(&[0i64, 1, 1, 2, 4, 8, -4]);
    let (low, high) = (scale * span.0, scale * span.1);
    let (low, high) = (low.min(high), low.max(high));
    let base = match rng.below(3) {
        // The range's top near the bound, or its bottom near 0.
        0 => bytes as i64 - high - rng.pick(&[8i64, 9, 12, 16, 20, 100]),
        1 => -low + rng.pick(&[0i64, 0, 1, -1, 8]),
        _ => interesting(rng, bytes) - scale.max(0) * rng.pick(&[0i64, 100, 1000]),
    };
    let with_pointer = rng.below(3) == 0;
    // The multiplier: a constant, or the run-time stride `$n`.
    let multiplier = if rng.below(4) == 0 {
        "(local.get $n)".to_string()
    } else {
        format!("(i32.const {scale})")
    };
    let mut index = format!(
        "(i32.add (i32.const {}) (i32.mul (local.get $i) {multiplier}))",
        base as i32
    );
    if with_pointer {
        index = format!("(i32.add {index} (local.get $p))");
    }
    if rng.below(4) == 0 {
        // A `p + 8`-style constant added after the multiply.
        index = format!("(i32.add {index} (i32.const {}))", rng.pick(&[4, 8, -8]));
    }
    let offset = rng.pick(&[0u32, 0, 1, 4, 8, 100, 65535]);
    let (load, store) = rng.pick(&[
        ("i32.load8_u", "i32.store8"),
        ("i32.load16_u", "i32.store16"),
        ("i32.load", "i32.store"),
        ("i64.load32_u", "i64.store32"),
    ]);
    let conditional = rng.below(5) == 0;
    let body = if rng.below(3) == 0 {
        if store.starts_with("i64") {
            format!("({store} offset={offset} {index} (i64.extend_i32_u (local.get $i)))")
        } else {
            format!("({store} offset={offset} {index} (local.get $i))")
        }
    } else {
        let value = if load.starts_with("i64") {
            format!("(i32.wrap_i64 ({load} offset={offset} {index}))")
        } else {
            format!("({load} offset={offset} {index})")
        };
        format!("(local.set $s (i32.add (i32.mul (local.get $s) (i32.const 31)) {value}))")
    };
    if conditional {
        writeln!(
            text,
            "    (if (i32.and (local.get $i) (i32.const 1)) (then {body}))"
        )
        .unwrap();
    } else {
        writeln!(text, "    {body}").unwrap();
    }
}
