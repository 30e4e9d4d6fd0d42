"""neuro_lib: a research workbook for small language models."""
