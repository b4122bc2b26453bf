"""Experiment drivers the chapters call: each runs a measured experiment of the
book (several seeds, several methods) and returns plain tables, so the
chapters stay thin and the experiments are tested."""
