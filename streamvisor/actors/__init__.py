"""pykka actors: the only package that imports pykka (plus the scheduler thread)."""
