"""Large model: a large LLM (causal chat or seq2seq) summarizes the jobs the gate escalated."""
