/* statechart.c - a large state machine over globals, in one function.
 * Exercises: one big function whose every transition loads and stores
 * global variables at constant addresses (as generated statechart code,
 * e.g. Embench's statemate, does), nested switches, many live flags.
 * A power-window controller with four windows, a central lock, an alarm
 * and a comfort-close feature steps through input events from a PRNG.
 * Usage: statechart [steps]   (default 200000) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

/* Globals, deliberately not static: the step function must keep them in
 * memory, as generated code over a shared blackboard does. */
uint32_t rng_state = 0x2545F491u;
int win_state[4], win_pos[4], win_motor[4], win_block[4], win_timer[4];
int lock_state, lock_timer, alarm_state, alarm_timer, alarm_count;
int comfort_state, comfort_timer, ignition, speed, door_open[4];
int ev_up[4], ev_down[4], ev_auto[4], ev_lock, ev_unlock, ev_ign, ev_door[4];
int ev_crash, crash_state, crash_timer, battery, battery_low, diag_state;
uint32_t trace_hash, transitions, motor_ticks;

enum { W_IDLE, W_UP, W_DOWN, W_AUTO_UP, W_AUTO_DOWN, W_BLOCKED, W_CLOSED, W_OPEN };
enum { L_UNLOCKED, L_LOCKING, L_LOCKED, L_UNLOCKING };
enum { A_OFF, A_ARMED, A_TRIGGERED, A_SOUNDING, A_SILENCED };

static uint32_t next_random(void) {
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

__attribute__((noinline)) void read_inputs(void) {
    uint32_t r = next_random();
    for (int i = 0; i < 4; i++) {
        ev_up[i] = (r >> i) & 1 && (r & 0x300) == 0x100;
        ev_down[i] = (r >> (i + 4)) & 1 && (r & 0x300) == 0x200;
        ev_auto[i] = (r >> (i + 12)) & 1 && (r & 0x30000) == 0x30000;
        ev_door[i] = (r >> (i + 20)) & 1 && (r & 0x7000000) == 0x1000000;
    }
    ev_lock = (r & 0xff) == 0x17;
    ev_unlock = (r & 0xff) == 0x71;
    ev_ign = (r & 0x3ff) == 0x155;
    ev_crash = (r & 0xfffff) == 0x12345;
    speed = (int)(r >> 25);
}

__attribute__((noinline)) void note(int what) {
    trace_hash = (trace_hash ^ (uint32_t)what) * 16777619u;
    transitions++;
}

__attribute__((noinline)) void step(void) {
    /* Crash handling overrides everything. */
    switch (crash_state) {
    case 0:
        if (ev_crash && speed > 20) {
            crash_state = 1;
            crash_timer = 50;
            note(1000);
        }
        break;
    case 1:
        if (--crash_timer == 0) {
            crash_state = 2;
            note(1001);
        }
        for (int i = 0; i < 4; i++) {
            win_motor[i] = 0;
            door_open[i] = 0;
        }
        lock_state = L_UNLOCKED;
        return;
    default:
        if (ev_ign) {
            crash_state = 0;
            note(1002);
        }
        break;
    }

    /* Ignition. */
    if (ev_ign) {
        ignition = !ignition;
        note(ignition ? 10 : 11);
        if (!ignition && comfort_state == 0) {
            comfort_state = 1;
            comfort_timer = 300;
        }
    }

    /* Central lock. */
    switch (lock_state) {
    case L_UNLOCKED:
        if (ev_lock && !door_open[0] && !door_open[1] && !door_open[2] && !door_open[3]) {
            lock_state = L_LOCKING;
            lock_timer = 5;
            note(20);
        }
        break;
    case L_LOCKING:
        if (--lock_timer == 0) {
            lock_state = L_LOCKED;
            if (!ignition) {
                alarm_state = A_ARMED;
                note(21);
            }
        }
        break;
    case L_LOCKED:
        if (ev_unlock) {
            lock_state = L_UNLOCKING;
            lock_timer = 3;
            note(22);
        } else if (speed > 100 && ignition) {
            lock_timer = 0;
        }
        break;
    case L_UNLOCKING:
        if (--lock_timer == 0) {
            lock_state = L_UNLOCKED;
            alarm_state = A_OFF;
            alarm_count = 0;
            note(23);
        }
        break;
    }

    /* Alarm. */
    switch (alarm_state) {
    case A_OFF:
        break;
    case A_ARMED:
        if (ev_door[0] || ev_door[1] || ev_door[2] || ev_door[3]) {
            alarm_state = A_TRIGGERED;
            alarm_timer = 20;
            note(30);
        }
        break;
    case A_TRIGGERED:
        if (ev_unlock) {
            alarm_state = A_OFF;
            note(31);
        } else if (--alarm_timer == 0) {
            alarm_state = A_SOUNDING;
            alarm_timer = 200;
            alarm_count++;
            note(32);
        }
        break;
    case A_SOUNDING:
        if (ev_unlock || --alarm_timer == 0) {
            alarm_state = alarm_count > 3 ? A_SILENCED : A_ARMED;
            note(33);
        }
        break;
    case A_SILENCED:
        if (ev_unlock) {
            alarm_state = A_OFF;
            alarm_count = 0;
            note(34);
        }
        break;
    }

    /* Comfort close: after ignition off, a long lock press closes all. */
    switch (comfort_state) {
    case 0:
        break;
    case 1:
        if (ev_lock) {
            comfort_state = 2;
            note(40);
        } else if (--comfort_timer == 0) {
            comfort_state = 0;
        }
        break;
    case 2:
        for (int i = 0; i < 4; i++)
            if (win_state[i] != W_CLOSED && win_state[i] != W_BLOCKED)
                win_state[i] = W_AUTO_UP;
        comfort_state = 0;
        break;
    }

    /* Battery model. */
    battery += ignition ? 3 : -1;
    for (int i = 0; i < 4; i++)
        battery -= win_motor[i] != 0;
    if (battery < 0)
        battery = 0;
    if (battery > 10000)
        battery = 10000;
    battery_low = battery < 500;

    /* Doors. */
    for (int i = 0; i < 4; i++)
        if (ev_door[i] && lock_state == L_UNLOCKED) {
            door_open[i] = !door_open[i];
            note(50 + i);
        }

    /* Windows. */
    for (int i = 0; i < 4; i++) {
        int allowed = (ignition || comfort_state != 0) && !battery_low;
        switch (win_state[i]) {
        case W_IDLE:
        case W_OPEN:
        case W_CLOSED:
            win_motor[i] = 0;
            if (!allowed)
                break;
            if (ev_auto[i] && ev_up[i]) {
                win_state[i] = W_AUTO_UP;
                note(60 + i);
            } else if (ev_auto[i] && ev_down[i]) {
                win_state[i] = W_AUTO_DOWN;
                note(64 + i);
            } else if (ev_up[i] && win_pos[i] < 1000) {
                win_state[i] = W_UP;
            } else if (ev_down[i] && win_pos[i] > 0) {
                win_state[i] = W_DOWN;
            }
            break;
        case W_UP:
        case W_AUTO_UP:
            win_motor[i] = 1;
            motor_ticks++;
            win_pos[i] += 7;
            if (win_pos[i] > 900 && (next_random() & 63) == 0) {
                win_state[i] = W_BLOCKED;
                win_block[i]++;
                win_timer[i] = 40;
                note(70 + i);
            } else if (win_pos[i] >= 1000) {
                win_pos[i] = 1000;
                win_state[i] = W_CLOSED;
                note(74 + i);
            } else if (win_state[i] == W_UP && !ev_up[i] && (next_random() & 3) == 0) {
                win_state[i] = W_IDLE;
            }
            break;
        case W_DOWN:
        case W_AUTO_DOWN:
            win_motor[i] = -1;
            motor_ticks++;
            win_pos[i] -= 9;
            if (win_pos[i] <= 0) {
                win_pos[i] = 0;
                win_state[i] = W_OPEN;
                note(78 + i);
            } else if (win_state[i] == W_DOWN && !ev_down[i] && (next_random() & 3) == 0) {
                win_state[i] = W_IDLE;
            }
            break;
        case W_BLOCKED:
            win_motor[i] = -1;
            win_pos[i] -= 2;
            if (--win_timer[i] == 0) {
                win_state[i] = W_IDLE;
                note(82 + i);
            }
            break;
        }
    }

    /* Diagnostics. */
    switch (diag_state) {
    case 0:
        if (battery_low && ignition)
            diag_state = 1;
        break;
    case 1:
        if (!battery_low)
            diag_state = 2;
        break;
    default:
        if (ev_lock && ev_unlock)
            diag_state = 0;
        break;
    }
}

int main(int argc, char **argv) {
    long steps = argc > 1 ? atol(argv[1]) : 200000;
    battery = 5000;
    for (long s = 0; s < steps; s++) {
        read_inputs();
        step();
    }
    uint32_t pos = 0;
    for (int i = 0; i < 4; i++)
        pos = pos * 31 + (uint32_t)win_pos[i] + (uint32_t)win_block[i] * 7u;
    printf("transitions %u trace %08x motor %u pos %u battery %d alarm %d lock %d\n",
           transitions, trace_hash, motor_ticks, pos, battery, alarm_count, lock_state);
    return 0;
}
