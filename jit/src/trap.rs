//! Trap codes: the reasons a guest stops abnormally.
//!
//! A trap code is one byte, the same byte Cranelift records in its trap
//! table, so the signal handler turns a faulting PC into a [`Trap`] with one
//! table lookup and no translation. Cranelift reserves 251..=255 for its
//! own codes; ours are user codes below that.

use cranelift_codegen::ir::TrapCode;

/// Why a guest stopped. The `Display` text is the spec's wording, which
/// `.wast` scripts match against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum Trap {
    /// `unreachable` executed.
    Unreachable = 1,
    /// `call_indirect` found a signature other than the expected one.
    IndirectCallTypeMismatch = 2,
    /// `call_indirect` found a null entry.
    IndirectCallToNull = 3,
    /// `call_indirect` indexed past the end of its table.
    UndefinedElement = 4,
    /// A table access, or a table bulk operation, out of bounds.
    TableOutOfBounds = 5,
    /// A host function asked the guest to stop (an error or `proc_exit`);
    /// the runtime keeps the details on the side.
    HostCall = 6,
    /// The guest was interrupted at a poll (killed or timed out).
    Interrupted = 7,
    /// The guest used up its fuel.
    OutOfFuel = 8,
    /// Stack exhaustion, caught by the prologue's stack-limit check.
    StackOverflow = 251,
    /// Signed division overflow, or a float too large for its integer type.
    IntegerOverflow = 252,
    /// A linear memory access, or a memory bulk operation, out of bounds.
    MemoryOutOfBounds = 253,
    /// Integer division or remainder by zero.
    IntegerDivideByZero = 254,
    /// A NaN converted to an integer.
    BadConversionToInteger = 255,
}

impl Trap {
    /// Every trap, for exhaustive tests.
    pub const ALL: [Trap; 13] = [
        Trap::Unreachable,
        Trap::IndirectCallTypeMismatch,
        Trap::IndirectCallToNull,
        Trap::UndefinedElement,
        Trap::TableOutOfBounds,
        Trap::HostCall,
        Trap::Interrupted,
        Trap::OutOfFuel,
        Trap::StackOverflow,
        Trap::IntegerOverflow,
        Trap::MemoryOutOfBounds,
        Trap::IntegerDivideByZero,
        Trap::BadConversionToInteger,
    ];

    /// The spec's wording for this trap.
    pub fn message(self) -> &'static str {
        match self {
            Trap::Unreachable => "unreachable",
            Trap::IndirectCallTypeMismatch => "indirect call type mismatch",
            Trap::IndirectCallToNull => "uninitialized element",
            Trap::UndefinedElement => "undefined element",
            Trap::TableOutOfBounds => "out of bounds table access",
            Trap::HostCall => "host function failed",
            Trap::Interrupted => "interrupted",
            Trap::OutOfFuel => "all fuel consumed",
            Trap::StackOverflow => "call stack exhausted",
            Trap::IntegerOverflow => "integer overflow",
            Trap::MemoryOutOfBounds => "out of bounds memory access",
            Trap::IntegerDivideByZero => "integer divide by zero",
            Trap::BadConversionToInteger => "invalid conversion to integer",
        }
    }

    /// The trap for a code byte, if it is one of ours.
    pub fn from_code(code: u8) -> Option<Trap> {
        Trap::ALL.into_iter().find(|t| *t as u8 == code)
    }

    /// The Cranelift trap code that JIT code raises for this trap.
    pub fn to_cranelift(self) -> TrapCode {
        match self {
            Trap::StackOverflow => TrapCode::STACK_OVERFLOW,
            Trap::IntegerOverflow => TrapCode::INTEGER_OVERFLOW,
            Trap::MemoryOutOfBounds => TrapCode::HEAP_OUT_OF_BOUNDS,
            Trap::IntegerDivideByZero => TrapCode::INTEGER_DIVISION_BY_ZERO,
            Trap::BadConversionToInteger => TrapCode::BAD_CONVERSION_TO_INTEGER,
            user => TrapCode::user(user as u8).expect("user trap codes are below 251"),
        }
    }

    /// The trap for a Cranelift trap code found in a trap table.
    pub fn from_cranelift(code: TrapCode) -> Option<Trap> {
        Trap::from_code(code.as_raw().get())
    }
}

impl std::fmt::Display for Trap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Trap {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_cranelift() {
        for trap in Trap::ALL {
            assert_eq!(Trap::from_cranelift(trap.to_cranelift()), Some(trap));
            assert_eq!(Trap::from_code(trap as u8), Some(trap));
        }
    }
}
