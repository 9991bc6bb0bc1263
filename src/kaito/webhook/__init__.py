"""The validating admission webhook for Workspaces."""
