"""The admission and conversion webhooks for Workspaces (HTTPS, self-managed certificate)."""
