/* bytecode.c - a bytecode interpreter running small programs.
 * Exercises: a switch-dispatched fetch-decode-execute loop, an operand
 * stack and a register file in memory, computed jumps, calls with frames.
 * The programs: an iterative Fibonacci mod 2^32, a sieve, a nested-loop
 * checksum and a recursive function.
 * Usage: bytecode [scale] (default 8) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

enum op { PUSH, LOAD, STORE, ADD, SUB, MUL, LT, JMP, JZ, JNZ, DUP, DROP, SWAP,
          LOADM, STOREM, CALL, RET, PRINT, HALT, AND, XOR, SHL, SHR, MOD };

struct vm {
    int32_t stack[256];
    int32_t regs[16];
    int32_t mem[65536];
    int frames[256];
    int sp, fp;
    uint32_t out;
    long steps;
};

static int32_t run(struct vm *vm, const int32_t *code, int pc) {
    int32_t *s = vm->stack;
    int sp = vm->sp;
    for (;;) {
        vm->steps++;
        switch ((enum op)code[pc++]) {
        case PUSH: s[sp++] = code[pc++]; break;
        case LOAD: s[sp++] = vm->regs[code[pc++]]; break;
        case STORE: vm->regs[code[pc++]] = s[--sp]; break;
        case ADD: sp--; s[sp - 1] = (int32_t)((uint32_t)s[sp - 1] + (uint32_t)s[sp]); break;
        case SUB: sp--; s[sp - 1] = (int32_t)((uint32_t)s[sp - 1] - (uint32_t)s[sp]); break;
        case MUL: sp--; s[sp - 1] = (int32_t)((uint32_t)s[sp - 1] * (uint32_t)s[sp]); break;
        case AND: sp--; s[sp - 1] &= s[sp]; break;
        case XOR: sp--; s[sp - 1] ^= s[sp]; break;
        case SHL: sp--; s[sp - 1] = (int32_t)((uint32_t)s[sp - 1] << (s[sp] & 31)); break;
        case SHR: sp--; s[sp - 1] = (int32_t)((uint32_t)s[sp - 1] >> (s[sp] & 31)); break;
        case MOD: sp--; s[sp - 1] = s[sp] ? (int32_t)((uint32_t)s[sp - 1] % (uint32_t)s[sp]) : 0; break;
        case LT: sp--; s[sp - 1] = s[sp - 1] < s[sp]; break;
        case JMP: pc = code[pc]; break;
        case JZ: pc = s[--sp] == 0 ? code[pc] : pc + 1; break;
        case JNZ: pc = s[--sp] != 0 ? code[pc] : pc + 1; break;
        case DUP: s[sp] = s[sp - 1]; sp++; break;
        case DROP: sp--; break;
        case SWAP: { int32_t t = s[sp - 1]; s[sp - 1] = s[sp - 2]; s[sp - 2] = t; break; }
        case LOADM: s[sp - 1] = vm->mem[(uint32_t)s[sp - 1] & 0xffff]; break;
        case STOREM: sp -= 2; vm->mem[(uint32_t)s[sp + 1] & 0xffff] = s[sp]; break;
        case CALL: vm->frames[vm->fp++] = pc + 1; pc = code[pc]; break;
        case RET:
            if (vm->fp == 0) { vm->sp = sp; return s[sp - 1]; }
            pc = vm->frames[--vm->fp];
            break;
        case PRINT: vm->out = vm->out * 31 + (uint32_t)s[--sp]; break;
        case HALT: vm->sp = sp; return sp ? s[sp - 1] : 0;
        }
    }
}

/* fib(n) iteratively: r0 = n, r1 = a, r2 = b. */
static const int32_t fib[] = {
    PUSH, 0, STORE, 1, PUSH, 1, STORE, 2,
    /* 8: */ LOAD, 0, JZ, 30,
    LOAD, 1, LOAD, 2, ADD, LOAD, 2, STORE, 1, STORE, 2,
    LOAD, 0, PUSH, 1, SUB, STORE, 0, JMP, 8,
    /* 32: the exit, patched in by main */
};
/* Sieve of size r0 in mem: counts primes into r3. */
static const int32_t sieve[] = {
    PUSH, 2, STORE, 1, PUSH, 0, STORE, 3,
    /* 8: outer */ LOAD, 1, LOAD, 0, LT, JZ, 63,
    LOAD, 1, LOADM, JNZ, 54,
    LOAD, 3, PUSH, 1, ADD, STORE, 3,
    LOAD, 1, DUP, ADD, STORE, 2,
    /* 33: inner */ LOAD, 2, LOAD, 0, LT, JZ, 54,
    PUSH, 1, LOAD, 2, STOREM, LOAD, 2, LOAD, 1, ADD, STORE, 2, JMP, 33,
    /* 54: */ LOAD, 1, PUSH, 1, ADD, STORE, 1, JMP, 8,
    /* 63: */ LOAD, 3, HALT,
};
/* Recursive: f(x) = x < 2 ? x : f(x-1) + f(x-2), argument on the stack. */
static const int32_t rec[] = {
    /* 0: */ DUP, PUSH, 2, LT, JZ, 7, RET,
    /* 7: */ DUP, PUSH, 1, SUB, CALL, 0, SWAP, PUSH, 2, SUB, CALL, 0, ADD, RET,
};

int main(int argc, char **argv) {
    int scale = argc > 1 ? atoi(argv[1]) : 8;
    static struct vm vm;
    uint32_t check = 0;
    for (int r = 0; r < scale; r++) {
        /* Fix up fib's exit jump: it jumps to its own length (HALT). */
        int32_t fib_code[sizeof fib / sizeof fib[0] + 3];
        int n = (int)(sizeof fib / sizeof fib[0]);
        for (int i = 0; i < n; i++)
            fib_code[i] = fib[i];
        fib_code[11] = n;
        fib_code[n] = LOAD;
        fib_code[n + 1] = 1;
        fib_code[n + 2] = HALT;
        vm.sp = 0;
        vm.regs[0] = 20000 + r;
        check = check * 31 + (uint32_t)run(&vm, fib_code, 0);
        for (int i = 0; i < 65536; i++)
            vm.mem[i] = 0;
        vm.sp = 0;
        vm.regs[0] = 30000;
        check = check * 31 + (uint32_t)run(&vm, sieve, 0);
        vm.sp = 0;
        vm.fp = 0;
        vm.stack[vm.sp++] = 14 + r % 3;
        check = check * 31 + (uint32_t)run(&vm, rec, 0);
    }
    printf("bytecode check %08x steps %ld\n", check, vm.steps);
    return 0;
}
