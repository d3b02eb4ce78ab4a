"""Model backends: one per kind of engine (transformers, llama.cpp, an OpenAI-compatible server), one interface.

`bundled` is pure Python (the CLI installs models without torch; which engine serves a model is
`shared/model_kinds.py`, which the settings read); the engines themselves (`hf`, `llamacpp`, `openai_api`) are
imported only by the model workers, through `load.load`.
"""
