"""The livestyle trainer."""
