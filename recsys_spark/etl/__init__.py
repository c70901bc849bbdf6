"""Spark jobs from raw logs to lake tables: cleaning, id vocabularies, interactions and splits, features."""
