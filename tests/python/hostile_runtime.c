/* A process that pretends to be CPython: it exports a `_PyRuntime` (or only a `.PyRuntime`
 * section) full of pointers back into itself, so every struct perftop follows is the same block:
 * the thread list and the frame chain loop, string lengths are addresses (huge), kinds are
 * whatever the address bits say. Variants are chosen with -D:
 *   CLAIM_VERSION=0x030b02f0  export Py_Version claiming that version
 *   DEBUG_COOKIE_VERSION=...  start the runtime with the "xdebugpy" cookie and that version,
 *                             followed by offsets that are all 0xffffffff (garbage)
 *   LONG_CHAIN                point the current frame at a chain of 4096 distinct frames
 *   HIDDEN                    make _PyRuntime static (strip the binary to leave only the section)
 *   SPIN                      spin on the CPU instead of sleeping, to be sampled
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WORDS 8192
#define CHAIN_FRAMES 4096
#define FRAME_WORDS 16

#ifdef HIDDEN
static
#endif
__attribute__((section(".PyRuntime"), used)) uint64_t _PyRuntime[WORDS];

#ifdef CLAIM_VERSION
const unsigned long Py_Version = CLAIM_VERSION;
#endif

static uint64_t chain[CHAIN_FRAMES][FRAME_WORDS];
static uint64_t chain_cframe[4];

int main(void) {
    uint64_t self = (uint64_t)(uintptr_t)_PyRuntime;
    for (int i = 0; i < WORDS; i++)
        _PyRuntime[i] = self;
    /* The 3.11 and 3.12 native_thread_id slots hold the real tid, so the fake thread matches. */
    _PyRuntime[160 / 8] = (uint64_t)syscall(SYS_gettid);
    _PyRuntime[144 / 8] = (uint64_t)syscall(SYS_gettid);
#ifdef LONG_CHAIN
    /* 3.11 layout: tstate->cframe (56) -> current_frame (8) -> frame; previous at 48. */
    _PyRuntime[56 / 8] = (uint64_t)(uintptr_t)chain_cframe;
    chain_cframe[1] = (uint64_t)(uintptr_t)chain[0];
    for (int i = 0; i < CHAIN_FRAMES; i++) {
        for (int w = 0; w < FRAME_WORDS; w++)
            chain[i][w] = self;
        chain[i][48 / 8] = i + 1 < CHAIN_FRAMES ? (uint64_t)(uintptr_t)chain[i + 1] : 0;
    }
#endif
#ifdef DEBUG_COOKIE_VERSION
    memcpy(_PyRuntime, "xdebugpy", 8);
    _PyRuntime[1] = DEBUG_COOKIE_VERSION;
    for (int i = 2; i < 80; i++)
        _PyRuntime[i] = 0xffffffffu;
#endif
    printf("ready\n");
    fflush(stdout);
#ifdef SPIN
    /* Busy, so that the sampler walks it (SPIN: the kernel walker's tests). */
    for (volatile uint64_t spins = 0;; spins++)
        ;
#else
    for (;;)
        pause();
#endif
}
