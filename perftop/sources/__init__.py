"""Where snapshots come from: the live BPF sampler, or a recorded session."""
