"""The caller's journey (IVR): sans-I/O call flow, menus, prompts. Arrives with issue 4."""
