"""Model backends: one per kind of engine (transformers, llama.cpp, an OpenAI-compatible server), one interface.

`kinds` and `bundled` are pure Python (settings and the gate read them without torch); the engines themselves
(`hf`, `llamacpp`, `openai_api`) are imported only by the model workers, through `load.load`.
"""
