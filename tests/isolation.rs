//! Isolation: hostile guests beside a well-behaved neighbour, in one VM.
//!
//! `tests/programs/hostile.wat` reads, writes, fills and copies at every
//! power-of-two distance past its region (up into where its neighbours'
//! regions lie in the shared arena), forges indirect calls and grows its
//! memory without bound. Every attempt must be stopped, and the neighbour
//! (`tests/programs/neighbour.wat`, spawned before and after the hostile
//! one, so on both sides of it in the arena) must see exactly what it saw
//! alone.

use carat_vm::{Mode, Trap, Val, Vm, VmConfig};

/// Addresses past a one-page memory, up to the end of the 32-bit space.
fn distances() -> Vec<u32> {
    let mut out: Vec<u32> = (16..32).map(|bit| 1u32 << bit).collect();
    out.extend([131_071, u32::MAX - 7, u32::MAX]);
    out
}

#[test]
fn hostile_guests_are_stopped_and_neighbours_undisturbed() {
    for mode in Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            max_memory: Some(64 << 20),
            ..VmConfig::default()
        })
        .unwrap();
        let hostile = vm
            .compile_file("tests/programs/hostile.wat".as_ref())
            .unwrap();
        let neighbour = vm
            .compile_file("tests/programs/neighbour.wat".as_ref())
            .unwrap();

        let alone = {
            let mut p = vm.new_process().unwrap();
            let i = p.instantiate(&neighbour).unwrap();
            p.invoke(i, "fill", &[]).unwrap();
            p.invoke(i, "checksum", &[]).unwrap()
        };

        let mut before = vm.new_process().unwrap();
        let nb = before.instantiate(&neighbour).unwrap();
        before.invoke(nb, "fill", &[]).unwrap();
        let mut attacker = vm.new_process().unwrap();
        let h = attacker.instantiate(&hostile).unwrap();
        let mut after = vm.new_process().unwrap();
        let na = after.instantiate(&neighbour).unwrap();
        after.invoke(na, "fill", &[]).unwrap();

        for addr in distances() {
            let a = Val::I32(addr as i32);
            for (export, args) in [
                ("read", vec![a]),
                ("read_byte", vec![a]),
                ("write", vec![a]),
                ("fill", vec![a, Val::I32(16)]),
                ("copy_out", vec![a]),
            ] {
                let e = attacker.invoke(h, export, &args).unwrap_err();
                assert_eq!(
                    e.trap(),
                    Some(Trap::MemoryOutOfBounds),
                    "{mode}: {export}({addr:#x})"
                );
            }
            // A range that starts inside and runs out is refused whole.
            let e = attacker
                .invoke(h, "fill", &[Val::I32(65000), a])
                .unwrap_err();
            assert_eq!(
                e.trap(),
                Some(Trap::MemoryOutOfBounds),
                "{mode}: fill(65000, {addr:#x})"
            );
        }
        // Accesses that straddle the end of the region trap; the last byte
        // inside is readable.
        for (export, addr) in [("read", 65529), ("write", 65530)] {
            let e = attacker.invoke(h, export, &[Val::I32(addr)]).unwrap_err();
            assert_eq!(
                e.trap(),
                Some(Trap::MemoryOutOfBounds),
                "{mode}: {export}({addr})"
            );
        }
        assert_eq!(
            attacker.invoke(h, "read_byte", &[Val::I32(65535)]).unwrap(),
            vec![Val::I32(0)]
        );
        for (export, slot, trap) in [
            ("call_slot", 1, Trap::IndirectCallToNull),
            ("call_slot", 4, Trap::UndefinedElement),
            ("call_slot", -1, Trap::UndefinedElement),
            ("call_forged", 0, Trap::IndirectCallTypeMismatch),
        ] {
            let e = attacker.invoke(h, export, &[Val::I32(slot)]).unwrap_err();
            assert_eq!(e.trap(), Some(trap), "{mode}: {export}({slot})");
        }
        // Growth stops at the limit: 64 MiB is 1024 pages, 1 to start with.
        assert_eq!(
            attacker.invoke(h, "grow_forever", &[]).unwrap(),
            vec![Val::I32(1008)]
        );
        // The attacker itself is still usable, and its neighbours untouched.
        assert_eq!(
            attacker.invoke(h, "read", &[Val::I32(0)]).unwrap(),
            vec![Val::I64(0)]
        );
        assert_eq!(before.invoke(nb, "checksum", &[]).unwrap(), alone, "{mode}");
        assert_eq!(after.invoke(na, "checksum", &[]).unwrap(), alone, "{mode}");
    }
}
