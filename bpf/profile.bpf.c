// perftop's sampler: a BPF_PROG_TYPE_PERF_EVENT program attached to one perf event per CPU.
//
// Each sample is counted in the kernel, keyed by process, thread, comm, cgroup and stack ids (and, in a
// CPython process, the key of the thread's Python frames); user space
// drains the counts once per interval. Sizes come in as -D cflags; perftop/sampling/bcc/abi.py
// mirrors every layout and slot number here (tests/unit/test_abi.py checks that the two agree).
// Only uapi types are used (no task_struct): the headers this is compiled against may be older
// than the running kernel.

#include <uapi/linux/ptrace.h>
#include <uapi/linux/bpf_perf_event.h>
#include <linux/sched.h>

#ifndef PERFTOP_COUNTS_ENTRIES
#define PERFTOP_COUNTS_ENTRIES 40960
#endif
#ifndef PERFTOP_STACK_ENTRIES
#define PERFTOP_STACK_ENTRIES 16384
#endif
#ifndef PERFTOP_MAX_PIDS
#define PERFTOP_MAX_PIDS 64
#endif
#ifndef PERFTOP_MAX_CGROUPS
#define PERFTOP_MAX_CGROUPS 16  // cgroups the filter holds (--cgroup, the screen's `c`)
#endif

// A stack id that was not asked for (stacks of that kind switched off). Real errors are -errno.
#define PERFTOP_STACK_SKIPPED (-65536)

#define STACKS_KERNEL 1
#define STACKS_USER 2

// settings[] slots
#define SETTING_PID_FILTER 0  // 1: only count thread groups present in pid_filter
#define SETTING_STACKS 1      // STACKS_KERNEL | STACKS_USER
#define SETTING_GENERATION 2  // which half of the double-buffered counters samples go to: 0 or 1
#define SETTING_PYTHON 3      // 1: walk the Python frames of processes in python_procs
#define SETTING_UNWIND 4      // 1: walk user stacks with unwind tables where a process has them
#define SETTING_CGROUP_FILTER 5  // n > 0: only count tasks under one of cgroup_filter[0..n)
#define SETTINGS_COUNT 6

// Every counter of an interval exists twice: counts_0 and counts_1, and one slot per generation
// in cpu_totals and lost. A sample reads the generation once and writes only to that half, so
// user space can flip the generation, wait until no program can still be running with the old
// one (an RCU grace period), and then read the old half's counts, per-CPU totals and lost
// counters as they stood at one instant.
#define GENERATIONS 2

// lost[] slots of one generation (the map holds GENERATIONS * LOST_COUNT): samples that could
// not be counted fully.
#define LOST_COUNTS_FULL 0    // counts map full: the sample is gone
#define LOST_KERNEL_EEXIST 1  // stack map bucket taken by another stack (hash collision)
#define LOST_USER_EEXIST 2
#define LOST_KERNEL_ENOMEM 3  // stack map full
#define LOST_USER_ENOMEM 4
#define LOST_KERNEL_OTHER 5
#define LOST_USER_OTHER 6
#define LOST_PYTHON_FULL 7       // python_stacks full: the sample is counted without Python frames
#define LOST_PYTHON_TRUNCATED 8  // more than PERFTOP_PYTHON_FRAMES frames: the outermost are cut
#define LOST_PYTHON_MISSING 9    // a Python process's thread with no frames to walk (informational)
#define LOST_UNWIND_FULL 10      // native_stacks full: the sample is counted without a user stack
#define LOST_UNWIND_TRUNCATED 11 // more than PERFTOP_UNWIND_FRAMES frames: the outermost are cut
#define LOST_UNWIND_FAILED 12    // the walk stopped short of the outermost frame (informational)
#define LOST_COUNT 13

#ifndef PERFTOP_PYTHON_FRAMES
#define PERFTOP_PYTHON_FRAMES 64  // a power of two: frames are indexed with & (N - 1)
#endif
#ifndef PERFTOP_PYTHON_THREADS
#define PERFTOP_PYTHON_THREADS 32  // PyThreadStates searched for the sampled thread's own
#endif
#ifndef PERFTOP_PYTHON_STACK_ENTRIES
#define PERFTOP_PYTHON_STACK_ENTRIES 4096
#endif
#define PYTHON_HEADER_BYTES 256  // a power of two: header offsets are masked with & (N - 1)
#define PYTHON_HEADER_BUFFER 264  // PYTHON_HEADER_BYTES + 8
#ifndef PERFTOP_PYTHON_PROCS
#define PERFTOP_PYTHON_PROCS 1024
#endif
#ifndef PERFTOP_PYTHON_THREAD_ENTRIES
#define PERFTOP_PYTHON_THREAD_ENTRIES 4096  // threads of walked processes whose tstate is remembered
#endif
// A thread whose PyThreadState was searched for and not found (a native thread of a Python
// process, or one CPython has not registered yet) is searched again only after this long.
#define PYTHON_THREAD_RETRY_NS 100000000  // 100 ms

#ifndef PERFTOP_UNWIND_ROWS
#define PERFTOP_UNWIND_ROWS 524288  // 16-byte rows: 8 MiB of tables
#endif
#ifndef PERFTOP_UNWIND_MAPPINGS
#define PERFTOP_UNWIND_MAPPINGS 65536  // prefixes of executable mappings, all processes
#endif
#ifndef PERFTOP_NATIVE_STACK_ENTRIES
#define PERFTOP_NATIVE_STACK_ENTRIES 16384
#endif
#ifndef PERFTOP_UNWIND_FRAMES
#define PERFTOP_UNWIND_FRAMES 64  // a power of two: frames are indexed with & (N - 1)
#endif
#ifndef UNWIND_SEARCH_STEPS
#define UNWIND_SEARCH_STEPS 24  // binary search steps: tables of up to 2^24 rows
#endif

// native_stack.truncated: how the walk ended
#define UNWIND_WHOLE 0      // at the outermost frame (_start, clone: return address undefined)
#define UNWIND_TRUNCATED 1  // at the frame limit
#define UNWIND_STOPPED 2    // short of the outermost frame: no rule, unreadable stack, ...

// unwind_row.cfa_rule (perftop/unwind/table.py CfaRuleKind)
#define CFA_UNDEFINED 0
#define CFA_RSP 1
#define CFA_RBP 2
#define CFA_PLT 3
#define CFA_SIGNAL 4
#define CFA_END 5
// unwind_row.rbp_rule (RbpRuleKind)
#define RBP_UNCHANGED 0
#define RBP_AT_CFA_OFFSET 1
#define RBP_UNDEFINED 2

#define PYTHON_NO_OFFSET 0xffff
#define PYTHON_NO_OWNER 0xff

struct count_key {
    u32 tgid;
    u32 tid;
    s32 kernel_stack_id;
    s32 user_stack_id;
    char comm[TASK_COMM_LEN];
    u64 python_stack;  // key of the thread's Python frames in python_stacks; 0: none
    u64 native_stack;  // key of the table-unwound user stack in native_stacks; 0: none
    u64 cgroup_id;     // the task's cgroup v2 id: its directory's inode on the cgroup2 mount
};

struct count_value {
    u64 samples;
    u64 period;  // summed sample_period: with a frequency, the kernel's running event estimate
};

struct cpu_totals {
    u64 samples;  // non-idle samples counted into counts: the CPU's share of the interval's samples
    u64 period;
    u64 idle_samples;
    u64 idle_period;
    u64 filtered_samples;  // non-idle samples dropped by the pid or the cgroup filter
};

// A CPython process user space found (perftop.python): where its runtime is and the offsets
// of the few struct fields the walk reads. Every address comes from the target's memory and is
// read with bpf_probe_read_user: a lying process gets nonsense frames, never a fault.
struct python_proc {
    u64 runtime;  // run-time address of _PyRuntime
    u16 interpreters_head;
    u16 threads_head;
    u16 thread_next;
    u16 native_thread_id;
    u16 current_frame;  // tstate -> frame (3.13+), or -> cframe (3.11, 3.12)
    u16 cframe_current_frame;  // PYTHON_NO_OFFSET from 3.13
    u16 frame_code;
    u16 frame_previous;
    u16 frame_instruction;
    u16 frame_owner;
    u8 owner_cstack;  // the owner of C-stack shim frames, skipped; PYTHON_NO_OWNER in 3.11
    // Bytes read at once from a PyThreadState and from a _PyInterpreterFrame: every field
    // above lies in them (user space checks), so one probe read serves a thread or a frame.
    u8 thread_header_size;
    u8 frame_header_size;
    u8 pad;
};

// One PyThreadState's or _PyInterpreterFrame's first bytes, read with one probe read (each
// read costs ~100-200 ns here: the walk used to take three or four per frame). The 8 bytes
// past PYTHON_HEADER_BYTES let a u64 be read at any masked offset.
struct python_header {
    u8 bytes[PYTHON_HEADER_BUFFER];
};
_Static_assert(PYTHON_HEADER_BUFFER == PYTHON_HEADER_BYTES + 8, "a u64 past the last offset");

// Where a thread's PyThreadState was found, so that a sample reads it at once instead of
// walking the interpreter's thread list (two pointer reads and a header read per thread). A
// hint, checked on every use: the remembered tstate still has the sampled thread's
// native_thread_id, or the list is searched again (the thread's state was freed, moved or
// reused).
struct python_thread {
    u64 tstate;     // 0: searched, none found
    u64 missed_ns;  // when the search that found none ran (bpf_ktime_get_ns)
};

// One thread's Python frames, innermost first: the code object and instruction of each.
struct python_stack {
    u32 depth;
    u32 truncated;  // 1: the chain went on past PERFTOP_PYTHON_FRAMES
    u32 tgid;  // whose frames: user space names them while the process lives
    u32 pad;
    u64 code[PERFTOP_PYTHON_FRAMES];
    u64 instruction[PERFTOP_PYTHON_FRAMES];
};

// One row of a binary's unwind table (perftop/unwind/table.py: 16 bytes, sorted by pc within
// the table). A table is a run of rows in unwind_rows, shared by every process mapping it.
struct unwind_row {
    u64 pc;  // in the ELF's own addresses
    s32 cfa_offset;
    s16 rbp_offset;
    u8 cfa_rule;
    u8 rbp_rule;
};

// unwind_mappings is a longest-prefix-match trie over (tgid, address): each executable mapping
// is split into aligned power-of-two blocks, one entry each. Address big-endian: the trie
// compares bytes from the first.
struct mapping_key {
    u32 prefixlen;  // bits of (tgid, address) that must match: 32 + the block's prefix
    u32 tgid;
    u64 address;
};

struct mapping_value {
    u64 load_bias;  // process address - ELF address
    u64 start;      // the mapping's range: the walk looks it up again only when it leaves it
    u64 end;
    u32 row_start;  // the mapping's table in unwind_rows; row_count 0: no table (frame pointers)
    u32 row_count;
};

// An address of a registered process that no table covers yet: user space loads the table of
// the mapping holding it, so only binaries that are on sampled stacks get tables.
struct unwind_miss {
    u32 tgid;
    u32 pad;
    u64 address;  // rounded down to 64 KiB: one entry for the many pcs of one function
};
// The value is one exact address of that block: the mapping that holds it is the one to load.

// A table-unwound user stack, innermost first.
struct native_stack {
    u32 depth;
    u32 truncated;  // UNWIND_WHOLE, UNWIND_TRUNCATED (past PERFTOP_UNWIND_FRAMES), UNWIND_STOPPED
    u32 tgid;
    u32 pad;
    u64 ip[PERFTOP_UNWIND_FRAMES];
};

BPF_HASH(counts_0, struct count_key, struct count_value, PERFTOP_COUNTS_ENTRIES);
BPF_HASH(counts_1, struct count_key, struct count_value, PERFTOP_COUNTS_ENTRIES);
BPF_STACK_TRACE(stacks, PERFTOP_STACK_ENTRIES);
BPF_HASH(pid_filter, u32, u8, PERFTOP_MAX_PIDS);
// The filtered cgroups as directory fds (user space stores them): bpf_current_task_under_cgroup
// answers "this cgroup or a descendant" in the kernel, so a nested cgroup counts under its
// parent's filter with no id bookkeeping, and a filter change is a map update, not a compile.
BPF_CGROUP_ARRAY(cgroup_filter, PERFTOP_MAX_CGROUPS);
BPF_ARRAY(settings, u32, SETTINGS_COUNT);
BPF_PERCPU_ARRAY(cpu_totals, struct cpu_totals, GENERATIONS);
BPF_PERCPU_ARRAY(lost, u64, GENERATIONS * LOST_COUNT);
// Never read here: user space updates its one slot after a flip because the kernel answers an
// update of a map-in-map only after synchronize_rcu(), and every BPF perf-event program runs
// inside an RCU read-side section, so no sample can still be writing the old generation.
BPF_ARRAY_OF_MAPS(grace, "settings", 1);
BPF_HASH(python_procs, u32, struct python_proc, PERFTOP_PYTHON_PROCS);
// Keyed by bpf_get_current_pid_tgid() (tgid << 32 | tid); least recently used entries go first,
// so threads that exited leave on their own.
BPF_TABLE("lru_hash", u64, struct python_thread, python_threads, PERFTOP_PYTHON_THREAD_ENTRIES);
BPF_PERCPU_ARRAY(python_scratch, struct python_stack, 1);
BPF_PERCPU_ARRAY(python_headers, struct python_header, 1);
// Keyed by a hash of the frames: a stack is stored once, however many samples share it, and
// user space deletes what it has read (a later sample of the same stack stores it again).
BPF_HASH(python_stacks, u64, struct python_stack, PERFTOP_PYTHON_STACK_ENTRIES);
BPF_ARRAY(unwind_rows, struct unwind_row, PERFTOP_UNWIND_ROWS);
BPF_LPM_TRIE(unwind_mappings, struct mapping_key, struct mapping_value, PERFTOP_UNWIND_MAPPINGS);
BPF_PERCPU_ARRAY(native_scratch, struct native_stack, 1);
BPF_HASH(unwind_misses, struct unwind_miss, u64, 1024);
BPF_HASH(native_stacks, u64, struct native_stack, PERFTOP_NATIVE_STACK_ENTRIES);

static __always_inline void count_lost(u32 generation, u32 slot)
{
    u32 index = generation * LOST_COUNT + slot;
    u64 *counter = lost.lookup(&index);
    if (counter)
        (*counter)++;  // per-CPU slot, and a perf event never nests with itself on one CPU
}

static __always_inline void count_stack_error(u32 generation, int stack_id, u32 eexist,
                                              u32 enomem, u32 other)
{
    // -EFAULT is not an error: it means "no stack of this kind" (a user-mode sample has no
    // kernel stack, a kernel thread has no user stack); user space tells those apart.
    if (stack_id >= 0 || stack_id == -EFAULT || stack_id == PERFTOP_STACK_SKIPPED)
        return;
    if (stack_id == -EEXIST)
        count_lost(generation, eexist);
    else if (stack_id == -ENOMEM)
        count_lost(generation, enomem);
    else
        count_lost(generation, other);
}

// Counts one sample under `key`: 0, or -1 when the counts map is full. The key holds the tid, and
// a thread is current on one CPU at a time (a perf event never nests with itself on one CPU,
// and user space only reads the other generation), so no other program writes this entry
// while this one does: plain adds, and a new key is inserted with the sample already in it
// (one hash operation, where lookup_or_try_init and then adding took three on a new key).
static __always_inline int count_sample(u32 generation, struct count_key *key, u64 period)
{
    struct count_value *value = generation ? counts_1.lookup(key) : counts_0.lookup(key);
    if (value) {
        value->samples++;
        value->period += period;
        return 0;
    }
    struct count_value first = {.samples = 1, .period = period};
    int error = generation ? counts_1.insert(key, &first) : counts_0.insert(key, &first);
    return error ? -1 : 0;
}

static __always_inline u64 read_pointer(u64 address)
{
    u64 value = 0;
    if (bpf_probe_read_user(&value, sizeof(value), (void *)address) != 0)
        return 0;
    return value;
}

// The u64 at `offset` of a header read with one probe read.
static __always_inline u64 header_word(struct python_header *header, u32 offset)
{
    return *(u64 *)&header->bytes[offset & (PYTHON_HEADER_BYTES - 1)];
}

// For a sample in a process registered in python_procs: find the sampled thread's own
// PyThreadState (matched by native_thread_id, never the GIL holder's) and walk its
// _PyInterpreterFrame chain into python_stacks. Returns the stack's key, or 0 (not a Python
// process, or no frames for this thread).
static __always_inline u64 python_stack_of(u32 generation, u64 pid_tgid)
{
    u32 tgid = pid_tgid >> 32;
    u32 tid = (u32)pid_tgid;
    struct python_proc *proc = python_procs.lookup(&tgid);
    if (!proc)
        return 0;
    u32 zero = 0;
    struct python_header *header = python_headers.lookup(&zero);
    struct python_stack *stack = python_scratch.lookup(&zero);
    if (!header || !stack)
        return 0;
    u32 thread_size = proc->thread_header_size;
    u32 native_thread_id = proc->native_thread_id;
    // The remembered tstate first: one probe read when it is still this thread's.
    struct python_thread *known = python_threads.lookup(&pid_tgid);
    int found = 0;
    u64 thread = known ? known->tstate : 0;
    if (thread && bpf_probe_read_user(header->bytes, thread_size, (void *)thread) == 0)
        found = header_word(header, native_thread_id) == tid;
    if (!found && known && !known->tstate &&
        bpf_ktime_get_ns() - known->missed_ns < PYTHON_THREAD_RETRY_NS) {
        // Searched a moment ago and not there: a native thread, most likely.
        count_lost(generation, LOST_PYTHON_MISSING);
        return 0;
    }
    if (!found) {
        u64 interpreter = read_pointer(proc->runtime + proc->interpreters_head);
        thread = interpreter ? read_pointer(interpreter + proc->threads_head) : 0;
        for (int i = 0; i < PERFTOP_PYTHON_THREADS; i++) {
            if (!thread || bpf_probe_read_user(header->bytes, thread_size, (void *)thread) != 0)
                break;
            if (header_word(header, native_thread_id) == tid) {
                found = 1;
                break;
            }
            thread = header_word(header, proc->thread_next);
        }
        struct python_thread remembered = {};
        if (found)
            remembered.tstate = thread;
        else
            remembered.missed_ns = bpf_ktime_get_ns();
        python_threads.update(&pid_tgid, &remembered);
    }
    if (!found) {
        count_lost(generation, LOST_PYTHON_MISSING);  // not a thread CPython knows (yet)
        return 0;
    }
    u64 frame = header_word(header, proc->current_frame);  // the found thread's header
    if (proc->cframe_current_frame != PYTHON_NO_OFFSET && frame)
        frame = read_pointer(frame + proc->cframe_current_frame);
    // The depth lives in the map value, not in a register: a register the verifier knows
    // exactly (0, 1, 2, ... along each path) keeps every path's state apart, and 64 frames of
    // "kept or skipped" exhausted its budget (E2BIG). Read back from memory it is unknown,
    // and the states prune.
    stack->depth = 0;
    stack->tgid = tgid;
    // FNV-1a over the tgid and the (code, instruction) pairs: forked workers share addresses,
    // and each keeps stacks of its own.
    u64 hash = (14695981039346656037ULL ^ tgid) * 1099511628211ULL;
    u32 frame_size = proc->frame_header_size;
    for (int i = 0; i < PERFTOP_PYTHON_FRAMES; i++) {
        if (!frame)
            break;
        if (bpf_probe_read_user(header->bytes, frame_size, (void *)frame) != 0) {
            frame = 0;  // unreadable: the chain ends here
            break;
        }
        u64 code = header_word(header, proc->frame_code);
        u64 instruction = header_word(header, proc->frame_instruction);
        u8 owner = header->bytes[proc->frame_owner & (PYTHON_HEADER_BYTES - 1)];
        if (code && (proc->owner_cstack == PYTHON_NO_OWNER || owner != proc->owner_cstack)) {
            u32 depth = stack->depth;
            stack->code[depth & (PERFTOP_PYTHON_FRAMES - 1)] = code;
            stack->instruction[depth & (PERFTOP_PYTHON_FRAMES - 1)] = instruction;
            stack->depth = depth + 1;
            hash = (hash ^ code) * 1099511628211ULL;
            hash = (hash ^ instruction) * 1099511628211ULL;
        }
        frame = header_word(header, proc->frame_previous);
    }
    u32 depth = stack->depth;
    if (!depth || depth > PERFTOP_PYTHON_FRAMES) {
        // A thread between frames, or a remembered tstate that was freed: free() leaves most
        // of a block as it was, native_thread_id included, so the check above can pass on a
        // dead one. Forgotten here, the next sample searches the thread list again (what a
        // thread with a state and no frames costs on every sample, as before the memo).
        python_threads.delete(&pid_tgid);
        count_lost(generation, LOST_PYTHON_MISSING);
        return 0;
    }
    stack->truncated = frame != 0;
    if (frame)
        count_lost(generation, LOST_PYTHON_TRUNCATED);
    hash |= 1;  // never 0, which means "none"
    // Stored only when new: insert answers -EEXIST before copying anything.
    int error = python_stacks.insert(&hash, stack);
    if (error && error != -EEXIST) {
        count_lost(generation, LOST_PYTHON_FULL);
        return 0;
    }
    return hash;
}

// The user registers of the sampled thread: the sample's own when it interrupted user mode,
// else the ones saved on kernel entry (task_pt_regs, through the kernel's BTF: no header offset).
static __always_inline int user_registers(struct bpf_perf_event_data *ctx, u64 *ip, u64 *sp,
                                          u64 *bp)
{
    if (ctx->regs.cs & 3) {
        *ip = ctx->regs.ip;
        *sp = ctx->regs.sp;
        *bp = ctx->regs.bp;
        return 0;
    }
    struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
    if (!regs)
        return -1;
    struct pt_regs saved = {};
    if (bpf_probe_read_kernel(&saved, sizeof(saved), regs) != 0 || !(saved.cs & 3))
        return -1;  // a kernel thread, or no user context saved
    *ip = saved.ip;
    *sp = saved.sp;
    *bp = saved.bp;
    return 0;
}

// The last row of [start, start + count) whose pc <= pc, or NULL. The bounds come from a map,
// so the verifier sees unknown scalars and prunes (known ones exhausted it: E2BIG).
static __always_inline struct unwind_row *find_row(u32 start, u32 count, u64 pc)
{
    u32 low = start, high = start + count;
#pragma clang loop unroll(disable)
    for (int step = 0; step < UNWIND_SEARCH_STEPS; step++) {
        if (low >= high)
            break;
        u32 middle = low + (high - low) / 2;
        struct unwind_row *row = unwind_rows.lookup(&middle);
        if (!row)
            return NULL;
        if (row->pc <= pc)
            low = middle + 1;
        else
            high = middle;
    }
    if (low <= start)
        return NULL;
    u32 found = low - 1;
    return unwind_rows.lookup(&found);
}

// Walks the user stack with the unwind tables of the process's mappings (frame pointers where
// a mapping has none) into native_stacks. Returns the stack's key, 0 when it has no tables.
static __always_inline u64 native_stack_of(struct bpf_perf_event_data *ctx, u32 generation,
                                           u32 tgid)
{
#ifdef PERFTOP_NO_UNWIND
    return 0;  // built without the walker: the verifier refused it here
#endif
    struct mapping_key key = {.prefixlen = 96, .tgid = tgid};
    u64 ip = 0, sp = 0, bp = 0;
    if (user_registers(ctx, &ip, &sp, &bp) != 0)
        return 0;
    key.address = __builtin_bswap64(ip);
    struct mapping_value *first = unwind_mappings.lookup(&key);
    if (!first)
        return 0;  // not a process with tables (yet): frame pointers, as get_stackid walks
    u32 zero = 0;
    struct native_stack *stack = native_scratch.lookup(&zero);
    if (!stack)
        return 0;
    stack->depth = 0;
    stack->tgid = tgid;
    stack->truncated = 0;
    u64 hash = (14695981039346656037ULL ^ tgid) * 1099511628211ULL;
    int exact = 1;  // frame 0's ip, and one a signal interrupted, are not return addresses
    int complete = 0;
    int used_table = 0;  // a walk of frame-pointer steps only claims no more than get_stackid's
    // The mapping of the last frame: callers are often in the same binary, and a trie lookup
    // costs more than the rest of a frame. Frame 0's is the lookup above.
    u64 map_start = first->start, map_end = first->end, map_bias = first->load_bias;
    u32 map_rows_start = first->row_start, map_rows = first->row_count;
    if (!map_rows) {
        // The process is registered, this address has no table (yet): ask for it.
        struct unwind_miss miss = {.tgid = tgid, .address = ip & ~0xffffULL};
        unwind_misses.insert(&miss, &ip);
    }
    int looked_up = 1;  // frame 0's mapping is `first`, even where its range is the process's
    u64 pair[2];        // (saved rbp, return address): one probe read for both
#pragma clang loop unroll(disable)
    for (int i = 0; i < PERFTOP_UNWIND_FRAMES; i++) {
        u32 depth = stack->depth;
        stack->ip[depth & (PERFTOP_UNWIND_FRAMES - 1)] = ip;
        stack->depth = depth + 1;
        hash = (hash ^ ip) * 1099511628211ULL;

        if (!looked_up && (ip < map_start || ip >= map_end)) {
            key.address = __builtin_bswap64(ip);
            struct mapping_value *found = unwind_mappings.lookup(&key);
            map_start = found ? found->start : 0;
            map_end = found ? found->end : 0;
            map_bias = found ? found->load_bias : 0;
            map_rows_start = found ? found->row_start : 0;
            map_rows = found ? found->row_count : 0;
            if (found && !map_rows) {
                // The process is registered, this address has no table (yet): ask for it.
                struct unwind_miss miss = {.tgid = tgid, .address = ip & ~0xffffULL};
                unwind_misses.insert(&miss, &ip);
            }
        }
        looked_up = 0;
        if (!map_rows || ip < map_start || ip >= map_end) {
            // No table here (JIT code, a binary built with frame pointers): one frame-pointer
            // step, as get_stackid would take. A zero rbp ends a frame-pointer chain (_start
            // clears it), as it ends get_stackid's walk.
            if (!bp) {
                complete = 1;
                break;
            }
            if (bpf_probe_read_user(pair, sizeof(pair), (void *)bp) != 0 || !pair[1] ||
                bp + 16 <= sp)
                break;
            sp = bp + 16;
            bp = pair[0];
            ip = pair[1];
            exact = 0;
            continue;
        }
        used_table = 1;
        u64 pc = ip - map_bias - (exact ? 0 : 1);
        struct unwind_row *row = find_row(map_rows_start, map_rows, pc);
        if (!row)
            break;
        u8 rule = row->cfa_rule;
        if (rule == CFA_END) {
            complete = 1;
            break;
        }
        if (rule == CFA_SIGNAL) {
            // sp points at the kernel's ucontext: the interrupted registers are in it.
            u64 frame = sp;
            sp = read_pointer(frame + row->cfa_offset);
            ip = read_pointer(frame + row->cfa_offset + 8);
            bp = read_pointer(frame + row->rbp_offset);
            exact = 1;
            if (!ip)
                break;
            continue;
        }
        u64 cfa;
        if (rule == CFA_RSP)
            cfa = sp + row->cfa_offset;
        else if (rule == CFA_RBP && bp)
            cfa = bp + row->cfa_offset;
        else if (rule == CFA_PLT)
            cfa = sp + row->cfa_offset + ((ip & 15) >= (u64)row->rbp_offset ? 8 : 0);
        else
            break;  // no rule for this address, or rbp unknown
        if (cfa <= sp)
            break;  // the stack must grow towards callers
        // An unreadable return address stops the walk short (a table that points outside the
        // stack); only one read as zero ends it whole.
        u64 return_address;
        if (row->rbp_rule == RBP_AT_CFA_OFFSET && row->rbp_offset == -16) {
            // rbp saved just below the return address (push %rbp on entry): both in one read.
            if (bpf_probe_read_user(pair, sizeof(pair), (void *)(cfa - 16)) != 0)
                break;
            bp = pair[0];
            return_address = pair[1];
        } else {
            if (bpf_probe_read_user(&return_address, sizeof(return_address),
                                    (void *)(cfa - 8)) != 0)
                break;
            if (row->rbp_rule == RBP_AT_CFA_OFFSET)
                bp = read_pointer(cfa + row->rbp_offset);
            else if (row->rbp_rule == RBP_UNDEFINED)
                bp = 0;
        }
        sp = cfa;
        ip = return_address;
        exact = 0;
        if (!ip) {
            complete = 1;  // a zero return address ends the chain (thread start)
            break;
        }
    }
    if (complete || !used_table) {
        stack->truncated = UNWIND_WHOLE;
    } else if (stack->depth >= PERFTOP_UNWIND_FRAMES) {
        stack->truncated = UNWIND_TRUNCATED;
        count_lost(generation, LOST_UNWIND_TRUNCATED);
    } else {
        stack->truncated = UNWIND_STOPPED;
        count_lost(generation, LOST_UNWIND_FAILED);
    }
    // How the walk ended is part of the key: the same addresses walked before the table was
    // in (frame-pointer steps, "whole") and with it (stopped short) are two stacks, or the
    // first one stored would answer for both.
    hash = (hash ^ (0x100 | stack->truncated)) * 1099511628211ULL;
    hash |= 1;
    int error = native_stacks.insert(&hash, stack);
    if (error && error != -EEXIST) {
        count_lost(generation, LOST_UNWIND_FULL);
        return 0;
    }
    return hash;
}

int on_sample(struct bpf_perf_event_data *ctx)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    u32 tid = (u32)pid_tgid;
    u64 period = ctx->sample_period;

    // Read once: everything this sample counts goes to one generation.
    u32 slot = SETTING_GENERATION;
    u32 *generation_now = settings.lookup(&slot);  // not "current": a kernel macro
    u32 generation = generation_now ? (*generation_now & 1) : 0;

    struct cpu_totals *totals = cpu_totals.lookup(&generation);
    if (!totals)
        return 0;
    // Idle (the per-CPU swapper, pid 0) is counted apart, per CPU, and never keyed.
    if (tid == 0) {
        totals->idle_samples++;
        totals->idle_period += period;
        return 0;
    }

    slot = SETTING_PID_FILTER;
    u32 *filter_on = settings.lookup(&slot);
    if (filter_on && *filter_on && !pid_filter.lookup(&tgid)) {
        totals->filtered_samples++;
        return 0;
    }

    // Off (the default) this is one array lookup; on, one helper call per filtered cgroup.
    slot = SETTING_CGROUP_FILTER;
    u32 *cgroups_filtered = settings.lookup(&slot);
    if (cgroups_filtered && *cgroups_filtered) {
        u32 filtered = *cgroups_filtered;
        int under = 0;
#pragma unroll
        for (int i = 0; i < PERFTOP_MAX_CGROUPS; i++) {
            if (i >= filtered)
                break;
            if (cgroup_filter.check_current_task(i) == 1) {
                under = 1;
                break;
            }
        }
        if (!under) {
            totals->filtered_samples++;
            return 0;
        }
    }

    slot = SETTING_STACKS;
    u32 *stacks_wanted = settings.lookup(&slot);
    u32 wanted = stacks_wanted ? *stacks_wanted : (STACKS_KERNEL | STACKS_USER);

    struct count_key key = {};
    key.tgid = tgid;
    key.tid = tid;
    key.cgroup_id = bpf_get_current_cgroup_id();
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    key.kernel_stack_id = PERFTOP_STACK_SKIPPED;
    key.user_stack_id = PERFTOP_STACK_SKIPPED;
    // A sample that interrupted user mode has no kernel stack: get_stackid would find an
    // empty chain and answer -EFAULT, after taking and giving back a callchain buffer.
    if (wanted & STACKS_KERNEL)
        key.kernel_stack_id = (ctx->regs.cs & 3) ? -EFAULT : stacks.get_stackid(ctx, 0);
    slot = SETTING_UNWIND;
    u32 *unwind_on = settings.lookup(&slot);
    if ((wanted & STACKS_USER) && unwind_on && *unwind_on)
        key.native_stack = native_stack_of(ctx, generation, tgid);
    if ((wanted & STACKS_USER) && !key.native_stack)
        key.user_stack_id = stacks.get_stackid(ctx, BPF_F_USER_STACK);
    count_stack_error(generation, key.kernel_stack_id, LOST_KERNEL_EEXIST, LOST_KERNEL_ENOMEM,
                      LOST_KERNEL_OTHER);
    count_stack_error(generation, key.user_stack_id, LOST_USER_EEXIST, LOST_USER_ENOMEM,
                      LOST_USER_OTHER);
    slot = SETTING_PYTHON;
    u32 *python_on = settings.lookup(&slot);
    if ((wanted & STACKS_USER) && python_on && *python_on)
        key.python_stack = python_stack_of(generation, pid_tgid);

    if (count_sample(generation, &key, period) != 0) {
        count_lost(generation, LOST_COUNTS_FULL);
        return 0;
    }
    // Counted with the sample, in the same generation: the per-CPU samples of an interval sum
    // to its counts exactly.
    totals->samples++;
    totals->period += period;
    return 0;
}
