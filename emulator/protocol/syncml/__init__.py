"""SyncML DM 1.2/1.3: message model and codec (XML, WBXML), credentials, package 0 notification."""
