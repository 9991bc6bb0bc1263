"""The `kaito` command: thin, parses arguments and calls the rooms."""
