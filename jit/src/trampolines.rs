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
    UserFuncName,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use crate::abi::{self, Libcall, VALUE_SLOT_SIZE};
use crate::module_info::FuncType;
use crate::translate::{
    clif_type, libcall_call_signature, libcall_signature, result_spill_area, spill_results,
    unspill_results, wasm_signature,
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
/// runtime can walk the wasm frames below while the guest is out.
fn record_exit(b: &mut FunctionBuilder<'_>, vmctx: cranelift_codegen::ir::Value) {
    let flags = MemFlagsData::trusted();
    let store_ctx = b.ins().load(I64, flags, vmctx, abi::vmctx::STORE_CONTEXT);
    let fp = b.ins().get_frame_pointer(I64);
    b.ins()
        .store(flags, fp, store_ctx, abi::store_context::LAST_EXIT_FP);
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
    record_exit(&mut b, vmctx);
    let flags = MemFlagsData::trusted();
    let table = b.ins().load(I64, flags, vmctx, abi::vmctx::LIBCALLS);
    let callee = b.ins().load(I64, flags, table, call.table_offset());
    let sig = b.import_signature(libcall_signature(call, call_conv));
    let inst = b.ins().call_indirect(sig, callee, &params);
    let results = b.inst_results(inst).to_vec();
    if call.preserves_registers() {
        let status = results[0];
        let out_of_fuel = b.ins().icmp_imm_u(IntCC::Equal, status, 2);
        b.ins().trapnz(out_of_fuel, Trap::OutOfFuel.to_cranelift());
        b.ins().trapnz(status, Trap::Interrupted.to_cranelift());
        b.ins().return_(&[]);
    } else {
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
    record_exit(&mut b, caller_vmctx);
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
    let spill_area = abi::results::spills(&ty.results).then(|| {
        let store_ctx = b
            .ins()
            .load(I64, flags, caller_vmctx, abi::vmctx::STORE_CONTEXT);
        result_spill_area(&mut b, store_ctx)
    });
    let mut host_sig = Signature::new(call_conv);
    host_sig.params.extend([AbiParam::new(I64); 3]);
    host_sig.returns.push(AbiParam::new(I32));
    let host_sig = b.import_signature(host_sig);
    let host_call = b
        .ins()
        .load(I64, flags, host_ctx, abi::host_func::HOST_CALL);
    let call = b
        .ins()
        .call_indirect(host_sig, host_call, &[host_ctx, caller_vmctx, values]);
    let status = b.inst_results(call)[0];
    b.ins().trapnz(status, Trap::HostCall.to_cranelift());
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
