"""The benchmarks: each module measures one thing and writes its JSON under bench/results/."""
