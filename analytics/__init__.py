"""ClickHouse analytics: versioned migrations, the sink that lands events, analysts' queries."""
