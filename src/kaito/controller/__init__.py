"""The Workspace controller: observe, plan, execute, compute status; level-triggered."""
