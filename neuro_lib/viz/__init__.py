"""Plots for the notebooks: matplotlib for static figures, plotly for interactive ones."""
