"""Test factories shared by the test layers (tiny models, workspaces, servers)."""
