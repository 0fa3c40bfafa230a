"""Plugins: the hook specifications, the manager that loads entry points, and the API plugins import."""
