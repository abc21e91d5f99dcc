"""Many devices on one loop: the fleet, the session drivers, engines per account, headless answers."""
