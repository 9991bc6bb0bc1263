"""Model presets and GPU SKU facts, and the pure sizing rules that join them."""
