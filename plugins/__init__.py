"""Built-in plugins: Formwork's own field types and expression functions, on the public hook API."""
