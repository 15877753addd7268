"""Loading recipes: YAML with origins, layering, list add/del, interpolation."""
