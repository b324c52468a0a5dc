"""Reading calls and campaigns back: resources, lists, search, stuck calls, reporting."""
