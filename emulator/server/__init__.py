"""The reference DM server (aiohttp): DM 2.0 and DM 1.2/1.3 endpoints, demo default and test peer."""
