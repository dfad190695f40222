// perftop's sampler: a BPF_PROG_TYPE_PERF_EVENT program attached to one perf event per CPU.
//
// Each sample is counted in the kernel, keyed by process, thread, comm and stack ids; user space
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

// A stack id that was not asked for (stacks of that kind switched off). Real errors are -errno.
#define PERFTOP_STACK_SKIPPED (-65536)

#define STACKS_KERNEL 1
#define STACKS_USER 2

// settings[] slots
#define SETTING_PID_FILTER 0  // 1: only count thread groups present in pid_filter
#define SETTING_STACKS 1      // STACKS_KERNEL | STACKS_USER
#define SETTINGS_COUNT 2

// lost[] slots: samples that could not be counted fully.
#define LOST_COUNTS_FULL 0    // counts map full: the sample is gone
#define LOST_KERNEL_EEXIST 1  // stack map bucket taken by another stack (hash collision)
#define LOST_USER_EEXIST 2
#define LOST_KERNEL_ENOMEM 3  // stack map full
#define LOST_USER_ENOMEM 4
#define LOST_KERNEL_OTHER 5
#define LOST_USER_OTHER 6
#define LOST_COUNT 7

struct count_key {
    u32 tgid;
    u32 tid;
    s32 kernel_stack_id;
    s32 user_stack_id;
    char comm[TASK_COMM_LEN];
};

struct count_value {
    u64 samples;
    u64 period;  // summed sample_period: with a frequency, the kernel's running event estimate
};

struct cpu_totals {
    u64 samples;  // non-idle, counted or filtered out
    u64 period;
    u64 idle_samples;
    u64 idle_period;
    u64 filtered_samples;  // non-idle samples dropped by the pid filter
};

BPF_HASH(counts, struct count_key, struct count_value, PERFTOP_COUNTS_ENTRIES);
BPF_STACK_TRACE(stacks, PERFTOP_STACK_ENTRIES);
BPF_HASH(pid_filter, u32, u8, PERFTOP_MAX_PIDS);
BPF_ARRAY(settings, u32, SETTINGS_COUNT);
BPF_PERCPU_ARRAY(cpu_totals, struct cpu_totals, 1);
BPF_PERCPU_ARRAY(lost, u64, LOST_COUNT);

static __always_inline void count_lost(u32 slot)
{
    u64 *counter = lost.lookup(&slot);
    if (counter)
        (*counter)++;  // per-CPU slot, and a perf event never nests with itself on one CPU
}

static __always_inline void count_stack_error(int stack_id, u32 eexist, u32 enomem, u32 other)
{
    // -EFAULT is not an error: it means "no stack of this kind" (a user-mode sample has no
    // kernel stack, a kernel thread has no user stack); user space tells those apart.
    if (stack_id >= 0 || stack_id == -EFAULT || stack_id == PERFTOP_STACK_SKIPPED)
        return;
    if (stack_id == -EEXIST)
        count_lost(eexist);
    else if (stack_id == -ENOMEM)
        count_lost(enomem);
    else
        count_lost(other);
}

int on_sample(struct bpf_perf_event_data *ctx)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    u32 tid = (u32)pid_tgid;
    u64 period = ctx->sample_period;
    u32 zero = 0;

    struct cpu_totals *totals = cpu_totals.lookup(&zero);
    if (!totals)
        return 0;
    // Idle (the per-CPU swapper, pid 0) is counted apart, per CPU, and never keyed.
    if (tid == 0) {
        totals->idle_samples++;
        totals->idle_period += period;
        return 0;
    }
    totals->samples++;
    totals->period += period;

    u32 slot = SETTING_PID_FILTER;
    u32 *filter_on = settings.lookup(&slot);
    if (filter_on && *filter_on && !pid_filter.lookup(&tgid)) {
        totals->filtered_samples++;
        return 0;
    }

    slot = SETTING_STACKS;
    u32 *stacks_wanted = settings.lookup(&slot);
    u32 wanted = stacks_wanted ? *stacks_wanted : (STACKS_KERNEL | STACKS_USER);

    struct count_key key = {};
    key.tgid = tgid;
    key.tid = tid;
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    key.kernel_stack_id = PERFTOP_STACK_SKIPPED;
    key.user_stack_id = PERFTOP_STACK_SKIPPED;
    if (wanted & STACKS_KERNEL)
        key.kernel_stack_id = stacks.get_stackid(ctx, 0);
    if (wanted & STACKS_USER)
        key.user_stack_id = stacks.get_stackid(ctx, BPF_F_USER_STACK);
    count_stack_error(key.kernel_stack_id, LOST_KERNEL_EEXIST, LOST_KERNEL_ENOMEM,
                      LOST_KERNEL_OTHER);
    count_stack_error(key.user_stack_id, LOST_USER_EEXIST, LOST_USER_ENOMEM, LOST_USER_OTHER);

    struct count_value initial = {};
    struct count_value *value = counts.lookup_or_try_init(&key, &initial);
    if (!value) {
        count_lost(LOST_COUNTS_FULL);
        return 0;
    }
    // Two CPUs can hit the same key at once: plain increments would lose samples.
    __sync_fetch_and_add(&value->samples, 1);
    __sync_fetch_and_add(&value->period, period);
    return 0;
}
