"""One module per CLI command: the glue between typer and the library."""
