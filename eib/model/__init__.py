"""Typed models: the recipe a user writes and the plan the executor runs."""
