"""The runtime (seeds/neurotiny.md, seeds/tinyllm.md): a query is routed (fast or slow path, one or
several skills), answered by tiny experts that call tools, checked by a judge, retried or decomposed
when it fails, and remembered. Graphs are YAML files in data/graphs/.

Shared types: types.py. Layering (DESIGN.md): runtime may import rag, structured, infer, train,
models, tokenizers, tools and data; nothing below it imports the runtime.
"""
