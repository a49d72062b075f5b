"""The paper's tables and the public code's numbers (``reference``), and our models against its rows (``rows``)."""
