"""Datasets: the synthetic generator and loaders of public benchmark datasets."""
