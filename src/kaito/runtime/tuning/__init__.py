"""The LoRA / QLoRA trainer that turns a dataset into an adapter the model server loads."""
