"""Tasks: the engine every task shares (timeline, names, seeding, generation), specs, templates and suites."""
