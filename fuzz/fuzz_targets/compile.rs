//! Module bytes, as they come: validation and compilation must end in a
//! module or an error, never a panic, in every configuration. Valid
//! modules are also instantiated (without imports) and their exports
//! called, which must end in results, a trap or an error.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    for (_, vm) in common::vms() {
        let Ok(module) = vm.compile_any(bytes) else {
            continue;
        };
        let Ok(mut process) = vm.new_process() else {
            continue;
        };
        let Ok(instance) = process.instantiate(&module) else {
            continue;
        };
        common::call_exports(&mut process, instance, &module.info().exports);
    }
});
