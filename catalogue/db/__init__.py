"""The catalogue database: engine and embedded server, schema, writers, queries."""
