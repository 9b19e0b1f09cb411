"""The explorer: server-rendered pages of the ledger for logged-in users, kept live by /ws/dashboard/.

views.py is thin (fetch, check, call one selector, render); selectors.py holds
every query and says in each docstring which index serves it; search.py
resolves the header's search box; dashboard.py is the browser's live
socket, fed by this process's livefeed.local with the typed events the
engine publishes (livefeed.events); routing.py mounts it.
"""
