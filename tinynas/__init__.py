"""TinyNAS: search-space optimisation and evolutionary architecture search under MCU budgets."""
