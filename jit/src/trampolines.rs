//! Trampolines between the host's calling convention and wasm's.
//!
//! Every signature of a module gets two small functions:
//!
//! - an *entry trampoline*, `extern "C" fn(callee_vmctx, caller_vmctx,
//!   func_ptr, values: *mut u64)`, which the host calls to run a wasm
//!   function: it loads the arguments from `values`, calls `func_ptr` with
//!   the wasm convention and stores the results back into `values`;
//! - a *host trampoline* with the wasm signature, which wasm code calls
//!   for an imported host function: it spills the arguments into a stack
//!   array, calls the `VMHostFuncContext`'s host entry, traps if the host
//!   says so, and loads the results.
//!
//! Values travel in 8-byte slots, so one array layout serves every type.
//!
//! Every module also gets one *libcall trampoline* per runtime function.
//! Host and libcall trampolines record their frame pointer in the store
//! context before leaving wasm: that is where a frame walk starts.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{
    AbiParam, Function, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind,
    UserFuncName, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use crate::abi::{self, Libcall, VALUE_SLOT_SIZE};
use crate::module_info::FuncType;
use crate::translate::{
    clif_type, libcall_call_signature, result_spill_area, spill_results, unspill_results,
    wasm_signature,
};
use crate::trap::Trap;

/// Opens the function's only block; returns the function's parameters.
fn enter(b: &mut FunctionBuilder<'_>) -> Vec<cranelift_codegen::ir::Value> {
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    b.block_params(block).to_vec()
}

/// Stores the current frame pointer as the store's last exit, so that the
/// runtime can walk the wasm frames below while the guest is out. Returns
/// what a call out needs: the libcall table and the running fiber's
/// switch record (both stay where they are while the guest is out, unlike
/// the vmctx and the store context).
fn record_exit(b: &mut FunctionBuilder<'_>, vmctx: Value) -> Exit {
    let flags = MemFlagsData::trusted();
    let store_ctx = b.ins().load(I64, flags, vmctx, abi::vmctx::STORE_CONTEXT);
    let fp = b.ins().get_frame_pointer(I64);
    b.ins()
        .store(flags, fp, store_ctx, abi::store_context::LAST_EXIT_FP);
    Exit {
        store_ctx,
        table: b.ins().load(I64, flags, vmctx, abi::vmctx::LIBCALLS),
        record: b
            .ins()
            .load(I64, flags, store_ctx, abi::store_context::FIBER),
    }
}

/// What a trampoline needs to leave wasm (see `record_exit`).
struct Exit {
    /// Valid only until the call out.
    store_ctx: Value,
    table: Value,
    record: Value,
}

/// Calls runtime function `target` with `args` through the host bridge,
/// so that it runs on the fiber's host stack (see `stack_switch` in
/// guest-runtime); returns its result as an `I64`.
fn call_on_host_stack(
    b: &mut FunctionBuilder<'_>,
    exit: &Exit,
    target: Value,
    args: &[Value],
) -> Value {
    assert!(
        args.len() <= abi::HOST_BRIDGE_ARGS,
        "the bridge passes at most six"
    );
    let mut sig = Signature::new(b.func.signature.call_conv);
    if sig.call_conv == CallConv::PreserveAll {
        sig.call_conv = CallConv::SystemV;
    }
    sig.params
        .extend([AbiParam::new(I64); abi::HOST_BRIDGE_ARGS + 2]);
    sig.returns.push(AbiParam::new(I64));
    let sig = b.import_signature(sig);
    let mut all: Vec<Value> = args
        .iter()
        .map(|arg| match b.func.dfg.value_type(*arg) {
            I64 => *arg,
            _ => b.ins().uextend(I64, *arg),
        })
        .collect();
    while all.len() < abi::HOST_BRIDGE_ARGS {
        all.push(b.ins().iconst(I64, 0));
    }
    all.extend([target, exit.record]);
    let bridge = b.ins().load(
        I64,
        MemFlagsData::trusted(),
        exit.table,
        abi::HOST_BRIDGE_TABLE_OFFSET,
    );
    let call = b.ins().call_indirect(sig, bridge, &all);
    b.inst_results(call)[0]
}

/// Parks the guest: switches from its stack to its resumer's, to come back
/// here when it is resumed.
fn park(b: &mut FunctionBuilder<'_>, exit: &Exit) {
    let flags = MemFlagsData::trusted();
    let mut sig = Signature::new(CallConv::SystemV);
    sig.params.extend([AbiParam::new(I64); 3]);
    sig.returns.push(AbiParam::new(I64));
    let sig = b.import_signature(sig);
    let switch = b
        .ins()
        .load(I64, flags, exit.table, abi::STACK_SWITCH_TABLE_OFFSET);
    const { assert!(abi::fiber_record::FIBER_SP == 0) };
    let save = exit.record;
    let to = b
        .ins()
        .load(I64, flags, exit.record, abi::fiber_record::RESUMER_SP);
    let suspended = b.ins().iconst(I64, abi::switch_status::SUSPENDED as i64);
    b.ins().call_indirect(sig, switch, &[save, to, suspended]);
}

/// Builds the trampoline through which wasm code calls libcall `call`: it
/// records the exit and calls the runtime function from the vmctx's table.
///
/// The trampoline of a libcall that [preserves
/// registers](Libcall::preserves_registers) has the preserve-all
/// convention, so Cranelift saves and restores every register it or the
/// runtime may clobber; it traps on the runtime's status (the poll's: 2 for
/// fuel used up, any other non-zero for an interrupt) and returns nothing.
pub fn libcall_trampoline(
    call: Libcall,
    call_conv: CallConv,
    frontend: cranelift_codegen::isa::TargetFrontendConfig,
    ctx: &mut FunctionBuilderContext,
) -> Function {
    let signature = libcall_call_signature(call, call_conv);
    let mut func = Function::with_name_signature(UserFuncName::default(), signature);
    let mut b = FunctionBuilder::new(&mut func, ctx);
    let params = enter(&mut b);
    let vmctx = params[0];
    let exit = record_exit(&mut b, vmctx);
    let flags = MemFlagsData::trusted();
    let callee = b.ins().load(I64, flags, exit.table, call.table_offset());
    let result = call_on_host_stack(&mut b, &exit, callee, &params);
    if call.preserves_registers() {
        use abi::poll_status;
        let status = b.ins().ireduce(I32, result);
        let park_block = b.create_block();
        let check_block = b.create_block();
        let wants_yield = b
            .ins()
            .icmp_imm_u(IntCC::Equal, status, i64::from(poll_status::YIELD));
        b.ins().brif(wants_yield, park_block, &[], check_block, &[]);
        b.switch_to_block(park_block);
        b.seal_block(park_block);
        park(&mut b, &exit);
        b.ins().return_(&[]);
        b.switch_to_block(check_block);
        b.seal_block(check_block);
        let out_of_fuel =
            b.ins()
                .icmp_imm_u(IntCC::Equal, status, i64::from(poll_status::OUT_OF_FUEL));
        b.ins().trapnz(out_of_fuel, Trap::OutOfFuel.to_cranelift());
        let exhausted = b.ins().icmp_imm_u(
            IntCC::Equal,
            status,
            i64::from(poll_status::STACK_EXHAUSTED),
        );
        b.ins()
            .trapnz(exhausted, Trap::StackOverflow.to_cranelift());
        b.ins().trapnz(status, Trap::Interrupted.to_cranelift());
        b.ins().return_(&[]);
    } else {
        let results = match call.result() {
            None => vec![],
            Some(abi::LibcallType::U32) => vec![b.ins().ireduce(I32, result)],
            Some(_) => vec![result],
        };
        b.ins().return_(&results);
    }
    b.finalize(frontend);
    func
}

/// Builds the entry trampoline for `ty`.
pub fn entry_trampoline(
    ty: &FuncType,
    call_conv: CallConv,
    frontend: cranelift_codegen::isa::TargetFrontendConfig,
    ctx: &mut FunctionBuilderContext,
) -> Function {
    let mut sig = Signature::new(call_conv);
    sig.params.extend([AbiParam::new(I64); 4]);
    let mut func = Function::with_name_signature(UserFuncName::default(), sig);
    let mut b = FunctionBuilder::new(&mut func, ctx);
    let [callee_vmctx, caller_vmctx, func_ptr, values] = enter(&mut b)[..] else {
        unreachable!("four parameters declared above");
    };
    let flags = MemFlagsData::trusted();
    let mut args = vec![callee_vmctx, caller_vmctx];
    for (i, param) in ty.params.iter().enumerate() {
        let offset = (i as u32 * VALUE_SLOT_SIZE) as i32;
        args.push(b.ins().load(clif_type(*param), flags, values, offset));
    }
    // The spill area never moves, so it is read before the call (the
    // callee's vmctx may move while it runs).
    let spill_area = abi::results::spills(&ty.results).then(|| {
        let store_ctx = b
            .ins()
            .load(I64, flags, callee_vmctx, abi::vmctx::STORE_CONTEXT);
        result_spill_area(&mut b, store_ctx)
    });
    let wasm_sig = b.import_signature(wasm_signature(ty, call_conv));
    let call = b.ins().call_indirect(wasm_sig, func_ptr, &args);
    let registers = b.inst_results(call).to_vec();
    let results = unspill_results(&mut b, spill_area, &ty.results, &registers);
    for (i, result) in results.into_iter().enumerate() {
        let offset = (i as u32 * VALUE_SLOT_SIZE) as i32;
        b.ins().store(flags, result, values, offset);
    }
    b.ins().return_(&[]);
    b.finalize(frontend);
    func
}

/// Builds the host trampoline for `ty`.
pub fn host_trampoline(
    ty: &FuncType,
    call_conv: CallConv,
    frontend: cranelift_codegen::isa::TargetFrontendConfig,
    ctx: &mut FunctionBuilderContext,
) -> Function {
    let mut func =
        Function::with_name_signature(UserFuncName::default(), wasm_signature(ty, call_conv));
    let mut b = FunctionBuilder::new(&mut func, ctx);
    let params = enter(&mut b);
    let (host_ctx, caller_vmctx) = (params[0], params[1]);
    let exit = record_exit(&mut b, caller_vmctx);
    let slots = ty.params.len().max(ty.results.len()).max(1) as u32;
    let array = b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        slots * VALUE_SLOT_SIZE,
        3,
    ));
    // The array is written and read by stack slot, and only the call takes
    // its address: no stack address lives across the call, which may park
    // the guest while its stack moves (see `abi::results`).
    let values = b.ins().stack_addr(I64, array, 0);
    let flags = MemFlagsData::trusted();
    for (i, param) in params[2..].iter().enumerate() {
        b.ins()
            .stack_store(I64, *param, array, (i as u32 * VALUE_SLOT_SIZE) as i32);
    }
    let spill_area =
        abi::results::spills(&ty.results).then(|| result_spill_area(&mut b, exit.store_ctx));
    let host_call = b
        .ins()
        .load(I64, flags, host_ctx, abi::host_func::HOST_CALL);
    let status = call_on_host_stack(&mut b, &exit, host_call, &[host_ctx, caller_vmctx, values]);
    let status = b.ins().ireduce(I32, status);
    let failed = b
        .ins()
        .icmp_imm_u(IntCC::Equal, status, i64::from(abi::host_status::TRAP));
    b.ins().trapnz(failed, Trap::HostCall.to_cranelift());
    // Results written; park first if the host asks.
    let park_block = b.create_block();
    let done_block = b.create_block();
    let wants_park = b
        .ins()
        .icmp_imm_u(IntCC::Equal, status, i64::from(abi::host_status::PARK));
    b.ins().brif(wants_park, park_block, &[], done_block, &[]);
    b.switch_to_block(park_block);
    b.seal_block(park_block);
    park(&mut b, &exit);
    b.ins().jump(done_block, &[]);
    b.switch_to_block(done_block);
    b.seal_block(done_block);
    let results: Vec<_> = ty
        .results
        .iter()
        .enumerate()
        .map(|(i, result)| {
            b.ins().stack_load(
                I64,
                clif_type(*result),
                array,
                (i as u32 * VALUE_SLOT_SIZE) as i32,
            )
        })
        .collect();
    let registers = spill_results(&mut b, spill_area, &ty.results, &results);
    b.ins().return_(&registers);
    b.finalize(frontend);
    func
}
