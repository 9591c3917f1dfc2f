"""The inventory: accounts, clusters, role configs, access keys and their sources."""
