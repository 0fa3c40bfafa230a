"""Objects: the gazed, in-view and outside objects of every dwell episode, through labeller plugins."""
