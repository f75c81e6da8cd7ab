"""The HTML pages: the public pages (home, profiles, post permalinks, about) and the pages of
local users (login, timelines, compose, follow, notifications, post buttons)."""
