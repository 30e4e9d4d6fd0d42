"""Plots and architecture graphs for the notebooks (matplotlib, plotly, networkx)."""
