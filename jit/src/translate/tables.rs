//! Tables and reference values.
//!
//! A reference is one pointer-sized word: a funcref points at a VMFuncRef
//! record, an externref is an opaque host word, and null is 0. Element
//! accesses are bounds-checked inline against the table's current length
//! and the index is masked like a memory guard's; operations that touch
//! many elements go to the runtime.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{InstBuilder, Value};
use wasmparser::Operator;

use super::FuncTranslator;
use crate::abi::{self, Libcall};
use crate::module_info::ValType;
use crate::trap::Trap;

impl FuncTranslator<'_, '_> {
    /// The address of element `index` (an i32) of `table`, trapping with
    /// `trap` when the index is out of bounds.
    pub(super) fn table_element_address(&mut self, table: u32, index: Value, trap: Trap) -> Value {
        let (def, offset) = self.table_definition(table);
        let region = self.regions.table_defs;
        let base = self.load_field(I64, region, def, offset + abi::table::BASE);
        let len = self.load_field(I64, region, def, offset + abi::table::LEN);
        let index = self.b.ins().uextend(I64, index);
        let out_of_bounds = self
            .b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, len);
        self.b.ins().trapnz(out_of_bounds, trap.to_cranelift());
        let zero = self.b.ins().iconst(I64, 0);
        let index = self
            .b
            .ins()
            .select_spectre_guard(out_of_bounds, zero, index);
        let scaled = self
            .b
            .ins()
            .ishl_imm_u(index, i64::from(abi::table::ELEMENT_SIZE.trailing_zeros()));
        self.b.ins().iadd(base, scaled)
    }

    fn i32_const(&mut self, value: u32) -> Value {
        self.b.ins().iconst(I32, i64::from(value))
    }

    /// Handles table and reference operators; returns false for any other.
    pub(super) fn table_operator(&mut self, op: &Operator<'_>) -> bool {
        use Operator as O;
        match *op {
            O::RefNull { .. } => {
                let v = self.b.ins().iconst(I64, 0);
                self.push(v);
            }
            O::RefIsNull => {
                let r = self.pop();
                let flag = self.b.ins().icmp_imm_u(IntCC::Equal, r, 0);
                let v = self.bool_to_i32(flag);
                self.push(v);
            }
            O::RefFunc { function_index } => {
                let vmctx = self.vmctx();
                let record = self.env.layout.funcref(function_index);
                let v = self.b.ins().iadd_imm_u(vmctx, i64::from(record));
                self.mark_arena_pointer(v, ValType::FuncRef);
                self.push(v);
            }
            O::TableGet { table } => {
                let index = self.pop();
                let addr = self.table_element_address(table, index, Trap::TableOutOfBounds);
                let v = self.load_field(I64, self.regions.table_elements, addr, 0);
                let element = self.env.info.tables[table as usize].element;
                self.mark_arena_pointer(v, element);
                self.push(v);
            }
            O::TableSet { table } => {
                let (index, value) = self.pop2();
                let addr = self.table_element_address(table, index, Trap::TableOutOfBounds);
                let flags = self.flags(self.regions.table_elements);
                self.b.ins().store(flags, value, addr, 0);
            }
            O::TableSize { table } => {
                let (def, offset) = self.table_definition(table);
                let len =
                    self.load_field(I64, self.regions.table_defs, def, offset + abi::table::LEN);
                let v = self.b.ins().ireduce(I32, len);
                self.push(v);
            }
            O::TableGrow { table } => {
                let (init, delta) = self.pop2();
                let table = self.i32_const(table);
                let v = self.call_libcall(Libcall::TableGrow, &[table, init, delta])[0];
                self.push(v);
            }
            O::TableFill { table } => {
                let (dst, value, len) = self.pop3();
                let table = self.i32_const(table);
                self.call_checked_libcall(
                    Libcall::TableFill,
                    &[table, dst, value, len],
                    Trap::TableOutOfBounds,
                );
            }
            O::TableCopy {
                dst_table,
                src_table,
            } => {
                let (dst, src, len) = self.pop3();
                let dst_table = self.i32_const(dst_table);
                let src_table = self.i32_const(src_table);
                self.call_checked_libcall(
                    Libcall::TableCopy,
                    &[dst_table, src_table, dst, src, len],
                    Trap::TableOutOfBounds,
                );
            }
            O::TableInit { elem_index, table } => {
                let (dst, src, len) = self.pop3();
                let table = self.i32_const(table);
                let segment = self.i32_const(elem_index);
                self.call_checked_libcall(
                    Libcall::TableInit,
                    &[table, segment, dst, src, len],
                    Trap::TableOutOfBounds,
                );
            }
            O::ElemDrop { elem_index } => {
                let segment = self.i32_const(elem_index);
                self.call_libcall(Libcall::ElemDrop, &[segment]);
            }
            _ => return false,
        }
        true
    }
}
