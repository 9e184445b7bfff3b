"""End-to-end tests: the demo project served by real uvicorn processes."""
