"""The executor: turns a Plan into outputs, one small module per stage.

`runner.execute()` is the entry point; nothing here reads a recipe.
"""
