"""The model side: engines behind one interface, margins, chunking, long-form summaries (torch behind them).

Only the model workers and the CLI load models; `stats` (the per-token statistics the gate scores) and
`backends.bundled` are plain Python that others may import without pulling in torch.
"""
