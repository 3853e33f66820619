"""No computing: text, JSON, rich tables, terminal pictures, animation."""
