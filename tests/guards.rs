//! Guards against their definition: whatever the compiler did to a guard
//! (a cmov to null that faults, a guard shared by the accesses it covers,
//! in its block or in constructs nested in it, a static proof over a
//! constant or a bounded index), an access traps exactly when `index + offset + size`
//! exceeds the memory's size, at that access, with every earlier store
//! done. Swept over every access width, offsets on both sides of the
//! null-trap distance and of a page, indices on both sides of the bound,
//! before and after `memory.grow`, in both modes and under relocation
//! (poisoned).

use carat_vm::{Mode, Process, Val, Vm, VmConfig};

/// (load, store, size) of each access width.
const WIDTHS: [(&str, &str, u64); 4] = [
    ("i64.load8_u", "i64.store8", 1),
    ("i64.load16_u", "i64.store16", 2),
    ("i64.load32_u", "i64.store32", 4),
    ("i64.load", "i64.store", 8),
];

/// Offsets around the places the guard changes form: the null-trap
/// distance (4,096), a page, and the largest offset.
const OFFSETS: [u64; 10] = [0, 1, 7, 4088, 4095, 4096, 4097, 65535, 65536, 0xffff_ffff];

const PAGE: u64 = 65536;

/// Functions per (width, offset): `single` loads once; `shared` loads 8
/// bytes and then the width at the same offset (the second shares the
/// first's guard); `ascending` stores one byte, then the width 8 bytes
/// further on (the second needs its own guard, and the first byte must
/// land when the second traps); `across_call` loads, calls, and loads
/// again (a call may move the memory, so the guard is not shared);
/// `nested` loads one byte, then the width inside an `if` (the outer
/// guard dominates the inner access but covers only one byte, so the
/// inner one needs its own); `masked` loads through `index & 0xffff`
/// (bounded by its computation: within the 64 KiB minimum the static
/// proof drops the guard, past it the guard stays); `plus` loads 8
/// bytes at the index, then the width at `index + 4` (an `i32.add`: the
/// first guard covers it when the width is at most 4); `walk` loads at
/// `index + i` for i in 0..4 in a loop and `invariant` at `index` three
/// times in one (loop versioning: a range check before the loop, none in
/// it; under relocation at every poll, each iteration's header poll moves
/// the memory under the fast copy).
fn module() -> String {
    let mut wat = String::from(
        "(module
  (memory (export \"mem\") 1 2)
  (func $nothing)
  (func (export \"grow\") (result i32) (memory.grow (i32.const 1)))
  (func (export \"byte\") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export \"clear\") (param i32) (i32.store8 (local.get 0) (i32.const 0)))
",
    );
    for (w, (load, store, _)) in WIDTHS.iter().enumerate() {
        for (o, offset) in OFFSETS.iter().enumerate() {
            let next = offset + 8;
            wat.push_str(&format!(
                "  (func (export \"single_{w}_{o}\") (param i32) (result i64)
    ({load} offset={offset} (local.get 0)))
  (func (export \"shared_{w}_{o}\") (param i32) (result i64)
    (i64.add (i64.load offset={offset} (local.get 0)) ({load} offset={offset} (local.get 0))))
  (func (export \"across_call_{w}_{o}\") (param i32) (result i64)
    (i64.load8_u offset={offset} (local.get 0))
    (call $nothing)
    ({load} offset={offset} (local.get 0))
    (i64.add))
  (func (export \"nested_{w}_{o}\") (param i32) (result i64)
    (i64.load8_u offset={offset} (local.get 0))
    (if (result i64) (i32.const 1)
      (then ({load} offset={offset} (local.get 0)))
      (else (i64.const 0)))
    (i64.add))
  (func (export \"plus_{w}_{o}\") (param i32) (result i64)
    (i64.load offset={offset} (local.get 0))
    ({load} offset={offset} (i32.add (local.get 0) (i32.const 4)))
    (i64.add))
  (func (export \"masked_{w}_{o}\") (param i32) (result i64)
    ({load} offset={offset} (i32.and (local.get 0) (i32.const 0xffff))))
  (func (export \"walk_{w}_{o}\") (param i32) (result i64)
    (local $i i32) (local $s i64)
    (loop $L
      (local.set $s (i64.or (local.get $s)
        ({load} offset={offset} (i32.add (local.get 0) (local.get $i)))))
      (br_if $L (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 4))))
    (local.get $s))
  (func (export \"invariant_{w}_{o}\") (param i32) (result i64)
    (local $i i32) (local $s i64)
    (loop $L
      (local.set $s (i64.or (local.get $s) ({load} offset={offset} (local.get 0))))
      (br_if $L (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 3))))
    (local.get $s))
"
            ));
            if next <= u64::from(u32::MAX) {
                wat.push_str(&format!(
                    "  (func (export \"ascending_{w}_{o}\") (param i32)
    (i64.store8 offset={offset} (local.get 0) (i64.const 0xaa))
    ({store} offset={next} (local.get 0) (i64.const 0)))
  (func (export \"merged_{w}_{o}\") (param i32) (result i64)
    (i64.add ({load} offset={offset} (local.get 0)) (i64.load offset={next} (local.get 0))))
  (func (export \"store_between_{w}_{o}\") (param i32) (result i64)
    ({load} offset={offset} (local.get 0))
    (i64.store8 offset={offset} (local.get 0) (i64.const 0xaa))
    (i64.load offset={next} (local.get 0))
    (i64.add)
    (i64.const 0xaa)
    (i64.sub))
"
                ));
            }
        }
    }
    wat.push(')');
    wat
}

/// Indices on both sides of where an access of `end` bytes past the
/// index stops fitting in `size` bytes, and the extremes.
fn indices(end: u64, size: u64) -> Vec<u32> {
    let mut all = vec![0, u32::MAX, 1 << 31];
    if let Some(last_fit) = size.checked_sub(end) {
        for i in last_fit.saturating_sub(2)..=last_fit + 2 {
            all.extend(u32::try_from(i).ok());
        }
    }
    all
}

/// Calls `name(index)`: whether it trapped. Memory is all zeros (the
/// tests clear what they write), so every load that does not trap must
/// read zeros: a stale address (say, into a moved-from range, poisoned)
/// reads something else.
fn call(process: &mut Process, instance: carat_vm::InstanceId, name: &str, index: u32) -> bool {
    match process.invoke(instance, name, &[Val::I32(index as i32)]) {
        Ok(results) => {
            assert!(
                results.iter().all(|r| *r == Val::I64(0)),
                "{name}({index}) read {results:?}, not zeros"
            );
            false
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains("out of bounds memory access"),
                "{name}({index}): {message}"
            );
            true
        }
    }
}

/// Asserts that a store left its 0xaa marker at `address`, and clears it
/// (the sweep's loads expect memory to be all zeros).
fn take_marker(process: &mut Process, instance: carat_vm::InstanceId, address: u64, what: &str) {
    let address = Val::I32(address as i32);
    let byte = process.invoke(instance, "byte", &[address]).unwrap();
    assert_eq!(byte, vec![Val::I32(0xaa)], "{what}");
    process.invoke(instance, "clear", &[address]).unwrap();
}

fn sweep(vm: &Vm, label: &str) {
    let wasm = wat::parse_str(module()).unwrap();
    let module = vm.compile(&wasm).unwrap();
    let mut process = vm.new_process().unwrap();
    let instance = process.instantiate(&module).unwrap();
    let mut checked = 0;
    for size in [PAGE, 2 * PAGE] {
        if size > PAGE {
            let grown = process.invoke(instance, "grow", &[]).unwrap();
            assert_eq!(grown, vec![Val::I32(1)]);
        }
        for (w, (_, _, width)) in WIDTHS.iter().enumerate() {
            for (o, offset) in OFFSETS.iter().enumerate() {
                let at = |kind: &str| format!("{kind}_{w}_{o}");
                for index in indices(offset + width, size) {
                    let end = u64::from(index) + offset;
                    let what = format!("{label}, memory of {size} bytes, index {index}");
                    let single = call(&mut process, instance, &at("single"), index);
                    assert_eq!(single, end + width > size, "{what}: {}", at("single"));
                    let shared = call(&mut process, instance, &at("shared"), index);
                    assert_eq!(shared, end + 8 > size, "{what}: {}", at("shared"));
                    let across = call(&mut process, instance, &at("across_call"), index);
                    assert_eq!(across, end + width > size, "{what}: {}", at("across_call"));
                    let nested = call(&mut process, instance, &at("nested"), index);
                    assert_eq!(nested, end + width > size, "{what}: {}", at("nested"));
                    let plus = call(&mut process, instance, &at("plus"), index);
                    let second = u64::from(index.wrapping_add(4)) + offset + width;
                    assert_eq!(
                        plus,
                        end + 8 > size || second > size,
                        "{what}: {}",
                        at("plus")
                    );
                    let masked = call(&mut process, instance, &at("masked"), index);
                    let masked_end = u64::from(index & 0xffff) + offset + width;
                    assert_eq!(masked, masked_end > size, "{what}: {}", at("masked"));
                    let walk = call(&mut process, instance, &at("walk"), index);
                    let walk_traps =
                        (0..4).any(|i| u64::from(index.wrapping_add(i)) + offset + width > size);
                    assert_eq!(walk, walk_traps, "{what}: {}", at("walk"));
                    let invariant = call(&mut process, instance, &at("invariant"), index);
                    assert_eq!(invariant, end + width > size, "{what}: {}", at("invariant"));
                    checked += 8;
                    if offset + 8 > u64::from(u32::MAX) {
                        continue;
                    }
                    // Loads off one local merge their guards: the first
                    // checks both ends, and traps when the second would.
                    let merged = call(&mut process, instance, &at("merged"), index);
                    assert_eq!(merged, end + 16 > size, "{what}: {}", at("merged"));
                    // A store between them splits the window: it lands
                    // before the second load traps.
                    if end + width <= size && end + 16 > size {
                        let _ = call(&mut process, instance, &at("store_between"), index);
                        take_marker(
                            &mut process,
                            instance,
                            end,
                            &format!("{what}: store between"),
                        );
                    }
                    checked += 2;
                    let ascending = call(&mut process, instance, &at("ascending"), index);
                    assert_eq!(
                        ascending,
                        end + 8 + width > size || end + 1 > size,
                        "{what}: {}",
                        at("ascending")
                    );
                    if end < size {
                        // The first store lands whether or not the second
                        // traps.
                        take_marker(&mut process, instance, end, &format!("{what}: first store"));
                    }
                }
            }
        }
    }
    assert!(checked > 2000, "{label}: only {checked} checks");
}

#[test]
fn every_access_traps_exactly_when_out_of_bounds() {
    for mode in Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            ..VmConfig::default()
        })
        .unwrap();
        sweep(&vm, &mode.to_string());
    }
    let relocating = Vm::new(VmConfig {
        relocate_every: Some(1),
        poison_moves: true,
        ..VmConfig::default()
    })
    .unwrap();
    sweep(&relocating, "carat, relocating every poll");
}
