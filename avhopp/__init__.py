"""avhopp: case management for exit work with people leaving extremism, and their relatives."""
