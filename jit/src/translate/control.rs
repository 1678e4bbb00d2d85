//! Control flow, calls, locals, globals and parametric operators.
//!
//! Merge points (a block's end, a loop header) take the values that flow
//! into them as block parameters. The arms of an `if` need none: the values
//! the `if` received are defined in its head, which dominates both arms.

use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{
    BlockArg, ExtFuncData, ExternalName, InstBuilder, JumpTableData, UserExternalName, Value,
};
use wasmparser::{BlockType, Operator};

use super::{Frame, FrameKind, FuncTranslator, clif_type, wasm_signature};
use crate::CompileError;
use crate::abi;
use crate::module_info::ValType;
use crate::trap::Trap;

fn block_args(values: &[Value]) -> Vec<BlockArg> {
    values.iter().map(|v| BlockArg::Value(*v)).collect()
}

impl FuncTranslator<'_, '_> {
    /// The parameter and result types of a block type.
    fn block_signature(&self, ty: BlockType) -> Result<(Vec<ValType>, Vec<ValType>), CompileError> {
        Ok(match ty {
            BlockType::Empty => (vec![], vec![]),
            BlockType::Type(t) => (vec![], vec![crate::module_info::val_type_of(t)?]),
            BlockType::FuncType(index) => {
                let ty = &self.env.info.types[index as usize];
                (ty.params.clone(), ty.results.clone())
            }
        })
    }

    fn new_block_with_params(&mut self, types: &[ValType]) -> cranelift_codegen::ir::Block {
        let block = self.b.create_block();
        for ty in types {
            let param = self.b.append_block_param(block, clif_type(*ty));
            self.mark_arena_pointer(param, *ty);
        }
        block
    }

    fn jump_with(&mut self, target: cranelift_codegen::ir::Block, values: &[Value]) {
        let args = block_args(values);
        self.b.ins().jump(target, &args);
    }

    /// Handles control operators; returns false for any other operator.
    pub(super) fn control_operator(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        match *op {
            Operator::Nop => {}
            Operator::Unreachable => {
                self.b.ins().trap(Trap::Unreachable.to_cranelift());
                self.reachable = false;
            }
            Operator::Block { blockty } => {
                let (params, results) = self.block_signature(blockty)?;
                let destination = self.new_block_with_params(&results);
                self.frames.push(Frame {
                    kind: FrameKind::Block,
                    destination,
                    num_params: params.len(),
                    num_results: results.len(),
                    stack_height: self.stack.len() - params.len(),
                    exit_reachable: false,
                    guards_mark: self.checked_guards.mark(),
                });
            }
            Operator::Loop { blockty } => {
                let (params, results) = self.block_signature(blockty)?;
                let versioned = self.pending_plan.is_some();
                let header = match self.pending_plan.take() {
                    // `scan` accepts only loops without parameters.
                    Some(plan) => self.open_fast_loop(plan),
                    None => {
                        let header = self.new_block_with_params(&params);
                        let args = self.pop_n(params.len());
                        self.jump_with(header, &args);
                        self.b.switch_to_block(header);
                        header
                    }
                };
                let destination = self.new_block_with_params(&results);
                self.stack.extend_from_slice(self.b.block_params(header));
                self.frames.push(Frame {
                    kind: FrameKind::Loop { header },
                    destination,
                    num_params: params.len(),
                    num_results: results.len(),
                    stack_height: self.stack.len() - params.len(),
                    exit_reachable: false,
                    guards_mark: self.checked_guards.mark(),
                });
                if versioned {
                    self.emit_fast_header_poll();
                } else {
                    self.emit_poll();
                }
            }
            Operator::If { blockty } => {
                let (params, results) = self.block_signature(blockty)?;
                let condition = self.pop();
                let then_block = self.b.create_block();
                let else_block = self.b.create_block();
                let destination = self.new_block_with_params(&results);
                self.b
                    .ins()
                    .brif(condition, then_block, &[], else_block, &[]);
                self.b.seal_block(then_block);
                self.b.seal_block(else_block);
                self.b.switch_to_block(then_block);
                self.frames.push(Frame {
                    kind: FrameKind::If {
                        else_block,
                        params: self.peek_n(params.len()).to_vec(),
                        has_else: false,
                    },
                    destination,
                    num_params: params.len(),
                    num_results: results.len(),
                    stack_height: self.stack.len() - params.len(),
                    exit_reachable: false,
                    guards_mark: self.checked_guards.mark(),
                });
            }
            Operator::Else => self.else_arm(),
            Operator::End => self.end_frame(),
            Operator::Br { relative_depth } => {
                self.branch(relative_depth);
                self.reachable = false;
            }
            Operator::BrIf { relative_depth } if self.is_fast_latch(relative_depth) => {
                let condition = self.pop();
                self.fast_loop_latch(condition);
            }
            Operator::BrIf { relative_depth } => {
                let condition = self.pop();
                let (target, arity) = self.branch_target(relative_depth);
                let args = block_args(self.peek_n(arity));
                let fallthrough = self.b.create_block();
                self.b
                    .ins()
                    .brif(condition, target, &args, fallthrough, &[]);
                self.b.seal_block(fallthrough);
                self.b.switch_to_block(fallthrough);
            }
            Operator::BrTable { ref targets } => {
                let index = self.pop();
                let default_depth = targets.default();
                let (_, arity) = self.branch_target(default_depth);
                let values = self.peek_n(arity).to_vec();
                let args = block_args(&values);
                let mut calls = Vec::with_capacity(targets.len() as usize);
                for depth in targets.targets() {
                    let (target, _) = self.branch_target(depth?);
                    calls.push(self.b.func.dfg.block_call(target, &args));
                }
                let (default_target, _) = self.branch_target(default_depth);
                let default_call = self.b.func.dfg.block_call(default_target, &args);
                let table = self
                    .b
                    .create_jump_table(JumpTableData::new(default_call, &calls));
                self.b.ins().br_table(index, table);
                self.reachable = false;
            }
            Operator::Return => {
                let arity = self.frames[0].num_results;
                let results = self.pop_n(arity);
                self.return_(&results);
                self.reachable = false;
            }
            Operator::Call { function_index } => self.call(function_index),
            Operator::CallIndirect {
                type_index,
                table_index,
            } => self.call_indirect(type_index, table_index),
            Operator::Drop => {
                self.pop();
            }
            Operator::Select => {
                let (a, b, condition) = self.pop3();
                let v = self.b.ins().select(condition, a, b);
                self.push(v);
            }
            Operator::TypedSelect { ty } => {
                let (a, b, condition) = self.pop3();
                let v = self.b.ins().select(condition, a, b);
                self.mark_arena_pointer(v, crate::module_info::val_type_of(ty)?);
                self.push(v);
            }
            Operator::LocalGet { local_index } => {
                let v = self.b.use_var(self.locals[local_index as usize]);
                self.push(v);
            }
            Operator::LocalSet { local_index } => {
                let v = self.pop();
                self.set_local(local_index, v);
            }
            Operator::LocalTee { local_index } => {
                let v = *self.stack.last().expect("validated");
                self.set_local(local_index, v);
            }
            Operator::GlobalGet { global_index } => {
                let content = self.env.info.globals[global_index as usize].content;
                let (base, offset) = self.global_slot(global_index);
                let v = self.load_field(clif_type(content), self.regions.globals, base, offset);
                self.mark_arena_pointer(v, content);
                self.push(v);
            }
            Operator::GlobalSet { global_index } => {
                let v = self.pop();
                let (base, offset) = self.global_slot(global_index);
                let flags = self.flags(self.regions.globals);
                self.b.ins().store(flags, v, base, offset);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Skips an operator in unreachable code, keeping track of nesting so
    /// that the `else` or `end` that makes code reachable again is found.
    pub(super) fn unreachable_operator(&mut self, op: Operator<'_>) -> Result<(), CompileError> {
        match op {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                self.dead_depth += 1;
            }
            Operator::Else if self.dead_depth == 0 => self.else_arm(),
            Operator::End if self.dead_depth == 0 => self.end_frame(),
            Operator::End => self.dead_depth -= 1,
            _ => {}
        }
        Ok(())
    }

    fn branch_target(&mut self, depth: u32) -> (cranelift_codegen::ir::Block, usize) {
        let index = self.frames.len() - 1 - depth as usize;
        let frame = &mut self.frames[index];
        if !matches!(frame.kind, FrameKind::Loop { .. }) {
            frame.exit_reachable = true;
        }
        frame.branch_target()
    }

    fn branch(&mut self, depth: u32) {
        let (target, arity) = self.branch_target(depth);
        let args = self.peek_n(arity).to_vec();
        self.jump_with(target, &args);
    }

    fn else_arm(&mut self) {
        let reachable = self.reachable;
        let frame = self.frames.last_mut().expect("validated: else inside if");
        let FrameKind::If {
            else_block,
            ref params,
            ref mut has_else,
        } = frame.kind
        else {
            unreachable!("validated: else only follows if");
        };
        *has_else = true;
        let params = params.clone();
        let (destination, num_results, stack_height) =
            (frame.destination, frame.num_results, frame.stack_height);
        let guards_mark = frame.guards_mark;
        self.checked_guards.rollback(guards_mark);
        if reachable {
            frame.exit_reachable = true;
            let results = self.pop_n(num_results);
            self.jump_with(destination, &results);
        }
        self.stack.truncate(stack_height);
        self.stack.extend_from_slice(&params);
        self.b.switch_to_block(else_block);
        self.reachable = true;
    }

    fn end_frame(&mut self) {
        let closes_fast_loop = self.closes_fast_loop();
        let mut frame = self.frames.pop().expect("validated: end closes a frame");
        self.checked_guards.rollback(frame.guards_mark);
        if self.reachable {
            frame.exit_reachable = true;
            let results = self.pop_n(frame.num_results);
            self.jump_with(frame.destination, &results);
        }
        if closes_fast_loop && let Some(slow) = self.close_fast_loop() {
            // The slow copy: the same loop from its start, guarded, ending
            // in the same destination.
            self.stack.truncate(frame.stack_height);
            self.b.switch_to_block(slow);
            self.reachable = true;
            self.frames.push(Frame {
                kind: FrameKind::Loop { header: slow },
                guards_mark: self.checked_guards.mark(),
                ..frame
            });
            self.emit_poll();
            self.rewind_to_loop = true;
            return;
        }
        match frame.kind {
            FrameKind::Loop { header } => self.b.seal_block(header),
            FrameKind::If {
                else_block,
                params,
                has_else: false,
            } => {
                // No else arm: the values the `if` received are its results.
                frame.exit_reachable = true;
                self.b.switch_to_block(else_block);
                self.jump_with(frame.destination, &params);
            }
            _ => {}
        }
        self.stack.truncate(frame.stack_height);
        self.b.seal_block(frame.destination);
        if frame.exit_reachable {
            self.b.switch_to_block(frame.destination);
            let results = self.b.block_params(frame.destination).to_vec();
            self.stack.extend_from_slice(&results);
        }
        self.reachable = frame.exit_reachable;
    }

    fn signature_ref(&mut self, type_index: u32) -> cranelift_codegen::ir::SigRef {
        if let Some(sig) = self.sig_refs.get(&type_index) {
            return *sig;
        }
        let ty = &self.env.info.types[type_index as usize];
        let sig = self
            .b
            .import_signature(wasm_signature(ty, self.env.call_conv));
        self.sig_refs.insert(type_index, sig);
        sig
    }

    /// Pushes the results of a call of type `type_index`; the callee may
    /// have grown or moved memory.
    fn push_results(&mut self, inst: cranelift_codegen::ir::Inst, type_index: u32) {
        let registers = self.b.inst_results(inst).to_vec();
        self.after_call(inst);
        let types = &self.env.info.types[type_index as usize].results;
        let spill_area = abi::results::spills(types).then(|| {
            let store_ctx = self.b.use_var(self.store_context);
            super::result_spill_area(&mut self.b, store_ctx)
        });
        let results = super::unspill_results(&mut self.b, spill_area, types, &registers);
        for (value, ty) in results.iter().zip(types) {
            self.mark_arena_pointer(*value, *ty);
        }
        self.stack.extend_from_slice(&results);
        self.reload_memory_cache();
    }

    fn call(&mut self, function_index: u32) {
        let info = self.env.info;
        let type_index = info.functions[function_index as usize];
        let num_params = info.types[type_index as usize].params.len();
        let args = self.pop_n(num_params);
        let sig = self.signature_ref(type_index);
        let vmctx = self.vmctx();
        let inst = if info.is_imported_function(function_index) {
            let record = self.env.layout.funcref(function_index);
            let callee = self.load_vmctx(I64, record + abi::funcref::FUNC_PTR as u32);
            let callee_vmctx = self.load_vmctx(I64, record + abi::funcref::VMCTX as u32);
            let mut all = vec![callee_vmctx, vmctx];
            all.extend_from_slice(&args);
            self.b.ins().call_indirect(sig, callee, &all)
        } else {
            let func_ref = match self.func_refs.get(&function_index) {
                Some(f) => *f,
                None => {
                    let name = self
                        .b
                        .func
                        .declare_imported_user_function(UserExternalName::new(
                            super::FUNCTION_NAMESPACE,
                            function_index,
                        ));
                    let f = self.b.import_function(ExtFuncData {
                        name: ExternalName::user(name),
                        signature: sig,
                        colocated: true,
                        patchable: false,
                    });
                    self.func_refs.insert(function_index, f);
                    f
                }
            };
            let mut all = vec![vmctx, vmctx];
            all.extend_from_slice(&args);
            self.b.ins().call(func_ref, &all)
        };
        self.push_results(inst, type_index);
    }

    fn call_indirect(&mut self, type_index: u32, table_index: u32) {
        let index = self.pop();
        let num_params = self.env.info.types[type_index as usize].params.len();
        let args = self.pop_n(num_params);
        let funcref = self.table_element_address(table_index, index, Trap::UndefinedElement);
        let funcref = self.load_field(I64, self.regions.table_elements, funcref, 0);
        self.b
            .ins()
            .trapz(funcref, Trap::IndirectCallToNull.to_cranelift());
        let type_id = self.load_field(
            cranelift_codegen::ir::types::I32,
            self.regions.vmctx,
            funcref,
            abi::funcref::TYPE_ID,
        );
        // The engine's id of the expected type, from this instance's vmctx
        // (see `abi`): code does not depend on which VM compiled it.
        let expected = self.load_vmctx(
            cranelift_codegen::ir::types::I32,
            self.env.layout.type_id(type_index),
        );
        let mismatch = self.b.ins().icmp(
            cranelift_codegen::ir::condcodes::IntCC::NotEqual,
            type_id,
            expected,
        );
        self.b
            .ins()
            .trapnz(mismatch, Trap::IndirectCallTypeMismatch.to_cranelift());
        let callee = self.load_field(I64, self.regions.vmctx, funcref, abi::funcref::FUNC_PTR);
        let callee_vmctx = self.load_field(I64, self.regions.vmctx, funcref, abi::funcref::VMCTX);
        let sig = self.signature_ref(type_index);
        let vmctx = self.vmctx();
        let mut all = vec![callee_vmctx, vmctx];
        all.extend_from_slice(&args);
        let inst = self.b.ins().call_indirect(sig, callee, &all);
        self.push_results(inst, type_index);
    }
}
