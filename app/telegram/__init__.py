"""Telegram itself: the kinds of update the Bot API sends and how to tell them apart. Below both
the gateways, which take updates in, and the plugins, which turn them into events."""
